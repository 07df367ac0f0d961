//! Header and body parsing of every webhook scheme must never panic, whatever the bytes.
//! Run: (cd edge && RUSTC_BOOTSTRAP=1 cargo fuzz run webhook_parsing -- -max_total_time=300)
#![no_main]

use libfuzzer_sys::fuzz_target;
use promo_shared::http::Request;
use promo_shared::payments::providers;
use promo_shared::payments::webhooks::standard;
use promo_shared::payments::webhooks::stripe;

fuzz_target!(|data: &[u8]| {
    // Layout: header values separated by 0x00, then the body after a 0x01.
    let (head, body) = match data.iter().position(|b| *b == 1) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut fields = head.split(|b| *b == 0).map(|f| String::from_utf8_lossy(f).into_owned());
    let mut req = Request::new("POST", "/v1/webhooks/x").body(body.to_vec());
    for name in [standard::HEADER_ID, standard::HEADER_TIMESTAMP, standard::HEADER_SIGNATURE, stripe::HEADER] {
        if let Some(v) = fields.next() {
            req = req.header(name, &v);
        }
    }
    let now = 1_795_000_000;
    let std_secrets = [standard::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()];
    let _ = standard::verify(&std_secrets, &req.headers, &req.body, now, 300);
    let _ = stripe::verify(&[stripe::Secret::parse("whsec_test_secret").unwrap()], &req.headers, &req.body, now, 300);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let _ = providers::standard(&v);
        let _ = providers::portone(&v);
        let _ = providers::stripe(&v);
        if let Ok(p) = serde_json::from_value::<providers::PortOnePayment>(v) {
            let _ = providers::portone_event(&p, chrono_now());
        }
    }
    let _ = promo_shared::domain::payment::PaymentEvent::from_json(body);
});

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}
