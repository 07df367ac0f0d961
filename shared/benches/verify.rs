//! Standard Webhooks verification: our verifier against the reference `standardwebhooks`
//! crate, on the same signed deliveries, in the same run.
//! Run: cargo bench -p promo-edge --bench verify

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use promo_shared::http::Request;
use promo_shared::payments::webhooks::standard;
use promo_shared::payments::webhooks::standard::Secret;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn body(size: usize) -> Vec<u8> {
    let mut b = br#"{"type":"paid","payment_id":"pay_1","pad":""#.to_vec();
    b.resize(size.saturating_sub(2), b'x');
    b.extend_from_slice(br#""}"#);
    b
}

fn bench(c: &mut Criterion) {
    let ours = vec![Secret::parse(SECRET).expect("secret")];
    let reference = standardwebhooks::Webhook::new(SECRET).expect("secret");
    let mut group = c.benchmark_group("standard_webhooks_verify");
    for size in [256usize, 4 * 1024, 64 * 1024] {
        let payload = body(size);
        // Timestamps are checked against the clock by both: sign with "now".
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let sig = ours[0].sign(id, now, &payload);
        let req = Request::new("POST", "/v1/webhooks/standard")
            .header(standard::HEADER_ID, id)
            .header(standard::HEADER_TIMESTAMP, &now.to_string())
            .header(standard::HEADER_SIGNATURE, &sig)
            .body(payload.clone());
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", id.parse().expect("header"));
        headers.insert("webhook-timestamp", now.to_string().parse().expect("header"));
        headers.insert("webhook-signature", sig.parse().expect("header"));
        assert!(standard::verify(&ours, &req.headers, &req.body, now, 300).is_ok());
        assert!(reference.verify(&payload, &headers).is_ok());

        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("promo_edge", size), &req, |b, req| {
            b.iter(|| {
                standard::verify(black_box(&ours), black_box(&req.headers), black_box(&req.body), black_box(now), 300)
            })
        });
        group.bench_with_input(BenchmarkId::new("standardwebhooks_crate", size), &payload, |b, payload| {
            b.iter(|| reference.verify(black_box(payload), black_box(&headers)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
