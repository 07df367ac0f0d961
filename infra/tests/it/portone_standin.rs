//! `promoctl dev` stands in for PortOne's payment API: a payment `promoctl webhook trigger
//! --provider portone` makes is recorded there first (as PortOne answers `GET
//! /payments/{id}`), so the PortOne webhook and the shop's client callback
//! (`POST /v1/payments/{id}/complete`) look it up over HTTP as in production; a payment
//! nobody made is not found, and the stand-in wants PortOne's `Authorization` header.

use crate::support;

use promoctl::portone_standin::{DEV_PORTONE_API_SECRET, PATH};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portone_payments_triggered_locally_are_looked_up_by_the_webhook_and_the_client_callback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".promo");
    let mut dev = support::promoctl_in(&data);
    dev.env("PROMO_WEBHOOK_SECRET_PORTONE", SECRET).stderr(std::process::Stdio::piped());
    let dev = support::DevProcess::start(dev);
    let base = dev.url();
    let http = reqwest::Client::new();

    // Before: the payment is unknown to the stand-in and to the callback.
    let unknown = http.post(format!("{base}/v1/payments/pay-po-1/complete")).send().await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404, "{}", unknown.text().await.unwrap());

    let trigger = support::promoctl_in(&data)
        .args(["webhook", "trigger", "paid", "--provider", "portone", "--payment-id", "pay-po-2", "--user", "u-7"])
        .args(["--amount", "52000", "--order-id", "o-7", "--reservation-id", "r-7", "--url", &base])
        .env("PROMO_WEBHOOK_SECRET_PORTONE", SECRET)
        .output()
        .unwrap();
    assert!(trigger.status.success(), "{}\n{}", text(&trigger.stdout), text(&trigger.stderr));
    // The webhook only names the payment: the platform found it at the stand-in.
    assert!(text(&trigger.stdout).contains("\"accepted\""), "{}", text(&trigger.stdout));

    // The stand-in answers as PortOne V2 does, and only with PortOne's Authorization.
    let url = format!("{base}{PATH}/payments/pay-po-2");
    let denied = http.get(&url).send().await.unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    let payment: serde_json::Value = http
        .get(&url)
        .header("authorization", format!("PortOne {DEV_PORTONE_API_SECRET}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "PAID", "{payment}");
    assert_eq!(payment["amount"]["total"], 52000);
    assert_eq!(payment["customer"]["id"], "u-7");
    let custom: serde_json::Value = serde_json::from_str(payment["customData"].as_str().unwrap()).unwrap();
    assert_eq!((custom["order_id"].as_str(), custom["reservation_id"].as_str()), (Some("o-7"), Some("r-7")));
    let missing = http
        .get(format!("{base}{PATH}/payments/pay-nobody"))
        .header("authorization", format!("PortOne {DEV_PORTONE_API_SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(missing.json::<serde_json::Value>().await.unwrap()["type"], "PAYMENT_NOT_FOUND");

    // The shop's client callback looks the same payment up, as in production.
    let callback = http.post(format!("{base}/v1/payments/pay-po-2/complete")).send().await.unwrap();
    let status = callback.status().as_u16();
    let answer: serde_json::Value = callback.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted", "{answer}");

    // A refund made the same way: the stand-in's payment becomes PARTIAL_CANCELLED.
    let refund = support::promoctl_in(&data)
        .args(["webhook", "trigger", "refunded", "--provider", "portone", "--payment-id", "pay-po-2", "--user", "u-7"])
        .args(["--amount", "52000", "--refunded", "2000", "--order-id", "o-7", "--url", &base])
        .env("PROMO_WEBHOOK_SECRET_PORTONE", SECRET)
        .output()
        .unwrap();
    assert!(refund.status.success(), "{}\n{}", text(&refund.stdout), text(&refund.stderr));
    let payment: serde_json::Value = http
        .get(&url)
        .header("authorization", format!("PortOne {DEV_PORTONE_API_SECRET}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (payment["status"].as_str(), payment["amount"]["cancelled"].as_i64()),
        (Some("PARTIAL_CANCELLED"), Some(2000))
    );
}
