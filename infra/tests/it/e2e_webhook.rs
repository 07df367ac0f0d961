//! The first end-to-end slice, through the whole local platform: a campaign with a payment
//! reward rule is deployed from the example file, a Standard Webhooks-signed payment event
//! is POSTed to `/v1/webhooks/standard`, and exactly one coupon lands in the shopper's
//! wallet — also when the same payment arrives three times.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use promo_shared::campaigns;
use promo_shared::config::EdgeConfig;
use promo_shared::domain::coupon::CouponStatus;
use promo_shared::domain::ids::UserId;
use promo_shared::payments::webhooks::standard::Secret;
use promo_shared::wallet;
use promoctl::runtime::{Platform, Running};
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn edge_config() -> EdgeConfig {
    EdgeConfig::from_lookup(|k| (k == "PROMO_WEBHOOK_SECRET_STANDARD").then(|| SECRET.to_string())).unwrap()
}

async fn boot(dir: &Path, consumers: usize) -> (Arc<Platform>, Running) {
    let platform = Arc::new(Platform::open(dir, edge_config()).unwrap());
    let running = support::serve(platform.clone(), Duration::from_secs(1), consumers).await;
    (platform, running)
}

fn paid(payment: &str, user: &str, amount: i64) -> String {
    json!({
        "type": "paid", "payment_id": payment, "order_id": format!("order-{payment}"), "user_id": user,
        "amount": amount, "currency": "KRW",
        "items": [{"product_id": "p-1", "quantity": 1, "unit_price": amount}],
        "occurred_at": "2026-11-27T10:00:00Z"
    })
    .to_string()
}

/// Delivers a signed body; the status, the answer and whether it was a replay
/// (`Idempotent-Replayed: true`).
async fn deliver_replay(addr: std::net::SocketAddr, delivery_id: &str, body: &str, secret: &str) -> (u16, Value, bool) {
    let ts = chrono::Utc::now().timestamp();
    let sig = Secret::parse(secret).unwrap().sign(delivery_id, ts, body.as_bytes());
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/v1/webhooks/standard"))
        .header("content-type", "application/json")
        .header("webhook-id", delivery_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let replayed = resp.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (status, resp.json().await.unwrap_or(Value::Null), replayed)
}

async fn deliver(addr: std::net::SocketAddr, delivery_id: &str, body: &str, secret: &str) -> (u16, Value) {
    let (status, answer, _) = deliver_replay(addr, delivery_id, body, secret).await;
    (status, answer)
}

/// Waits (bounded) until the payment queue is drained; the assertion is on what is stored.
async fn drained(platform: &Platform) {
    for _ in 0..200 {
        if platform.queue.depth(promo_shared::payments::gateway::PAYMENT_EVENTS_QUEUE).await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the payment event queue was not drained within 10 s");
}

async fn deploy_example(platform: &Platform) {
    let campaign = support::example_campaign();
    campaigns::deploy(&*platform.store, &*platform.clock, &campaign).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_reported_three_times_yields_exactly_one_coupon() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, running) = boot(dir.path(), 2).await;
    deploy_example(&platform).await;
    let body = paid("pay-e2e-1", "shopper-1", 52_000);

    // The provider's delivery, its retry of the same delivery, and a re-send under a new id.
    let (s1, a1, r1) = deliver_replay(running.addr, "msg_1", &body, SECRET).await;
    let (s2, a2, r2) = deliver_replay(running.addr, "msg_1", &body, SECRET).await;
    let (s3, a3, r3) = deliver_replay(running.addr, "msg_2", &body, SECRET).await;
    assert_eq!((s1, s2, s3), (200, 200, 200));
    assert_eq!(a1["status"], "accepted");
    assert!(!r1);
    assert!(r2, "a replay of the same delivery is marked as one");
    assert_eq!(a2, a1, "a replay gets the first answer, exactly");
    assert!(!r3, "a new delivery id is a new delivery; the issuer dedupes the payment");
    assert_eq!(a3["delivery_id"], "msg_2");
    drained(&platform).await;

    let coupons = wallet::list(&*platform.store, &UserId::parse("shopper-1").unwrap()).await.unwrap();
    assert_eq!(coupons.len(), 1, "{coupons:#?}");
    let c = &coupons[0];
    assert_eq!(c.campaign_id.as_str(), "black-friday-2026");
    assert_eq!(c.template.id.as_str(), "thanks-5000");
    assert_eq!(c.status, CouponStatus::Issued);
    assert_eq!(c.ends_at - c.starts_at, chrono::Duration::days(30));

    // Below the reward's minimum: accepted, no coupon.
    let small = paid("pay-e2e-2", "shopper-2", 49_999);
    assert_eq!(deliver(running.addr, "msg_3", &small, SECRET).await.0, 200);
    drained(&platform).await;
    assert!(wallet::list(&*platform.store, &UserId::parse("shopper-2").unwrap()).await.unwrap().is_empty());
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_racing_reports_of_many_payments_yield_one_coupon_each() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, running) = boot(dir.path(), 2).await;
    deploy_example(&platform).await;
    let payments = 20;
    let mut tasks = Vec::new();
    for p in 0..payments {
        let body = paid(&format!("pay-race-{p}"), &format!("racer-{p}"), 60_000);
        // Each payment: two deliveries, each sent twice, all at once.
        for d in 0..4 {
            let body = body.clone();
            let addr = running.addr;
            tasks.push(tokio::spawn(async move { deliver(addr, &format!("msg-{p}-{}", d % 2), &body, SECRET).await }));
        }
    }
    for t in tasks {
        let (status, answer) = t.await.unwrap();
        // A racing replay may see the first delivery still in progress: 409, and the sender retries.
        assert!(status == 200 || (status == 409 && answer["error"]["code"] == "in_progress"), "{status} {answer}");
    }
    drained(&platform).await;
    for p in 0..payments {
        let coupons = wallet::list(&*platform.store, &UserId::parse(format!("racer-{p}")).unwrap()).await.unwrap();
        assert_eq!(coupons.len(), 1, "payment {p}: {coupons:#?}");
    }
    running.shutdown().await.unwrap();
}

/// Sends like a provider: retries a 409 (in progress elsewhere) or 5xx with a short backoff.
async fn deliver_until_answered(addr: std::net::SocketAddr, delivery_id: &str, body: &str) -> (Value, bool) {
    for attempt in 0..50 {
        let (status, answer, replayed) = deliver_replay(addr, delivery_id, body, SECRET).await;
        match status {
            200 => return (answer, replayed),
            409 | 500..=599 => tokio::time::sleep(Duration::from_millis(20 + 10 * attempt)).await,
            _ => panic!("{delivery_id}: {status} {answer}"),
        }
    }
    panic!("{delivery_id}: no final answer after 50 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_deliveries_of_a_hundred_payments_yield_a_hundred_coupons() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, running) = boot(dir.path(), 2).await;
    deploy_example(&platform).await;
    let payments = 100;
    // Per payment: delivery `a` four times, `b` and `c` three times each — a provider's retries
    // and re-sends racing the same payment under three delivery ids. All 1,000 at once.
    let mut tasks = Vec::new();
    for p in 0..payments {
        let body = paid(&format!("pay-k-{p}"), &format!("kilo-{p}"), 55_000);
        for (delivery, copies) in [("a", 4), ("b", 3), ("c", 3)] {
            for _ in 0..copies {
                let (body, addr) = (body.clone(), running.addr);
                let id = format!("msg-k-{p}-{delivery}");
                tasks.push(tokio::spawn(async move { (id.clone(), deliver_until_answered(addr, &id, &body).await) }));
            }
        }
    }
    assert_eq!(tasks.len(), 1000);
    let mut first_answers = std::collections::HashMap::new();
    for t in tasks {
        let (id, (answer, replayed)) = t.await.unwrap();
        assert_eq!(answer["status"], "accepted", "{id}: {answer}");
        if !replayed {
            assert!(first_answers.insert(id.clone(), answer).is_none(), "{id} was accepted as new twice");
        }
    }
    assert_eq!(first_answers.len(), 300, "each delivery id is accepted as new exactly once");
    drained(&platform).await;
    let mut total = 0;
    for p in 0..payments {
        let coupons = wallet::list(&*platform.store, &UserId::parse(format!("kilo-{p}")).unwrap()).await.unwrap();
        assert_eq!(coupons.len(), 1, "payment {p}: {coupons:#?}");
        total += coupons.len();
    }
    assert_eq!(total, 100);
    // No duplicate downstream work: one reward marker per payment.
    use promo_shared::ports::store::Query;
    use promo_shared::ports::store::Store;
    for p in 0..payments {
        let markers = platform.store.query(&Query::partition(format!("PAYMENT#pay-k-{p}"))).await.unwrap();
        assert_eq!(markers.items.len(), 1, "payment {p}");
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_deliveries_are_rejected_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, running) = boot(dir.path(), 0).await;
    deploy_example(&platform).await;
    let body = paid("pay-bad-1", "shopper-1", 52_000);
    let wrong = "whsec_c2VjcmV0LW5vdC10aGUtcmlnaHQtb25l";
    let (status, answer) = deliver(running.addr, "msg_bad", &body, wrong).await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], "invalid_signature");
    let client = reqwest::Client::new();
    let r = client.get(format!("http://{}/v1/webhooks/acme", running.addr)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let r = client.post(format!("http://{}/v1/webhooks/acme", running.addr)).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = client
        .post(format!("http://{}/v1/webhooks/standard", running.addr))
        .body(vec![b'x'; 70 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
    let health = client.get(format!("http://{}/healthz", running.addr)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(platform.queue.depth(promo_shared::payments::gateway::PAYMENT_EVENTS_QUEUE).await.unwrap(), 0);
    // The same delivery id, correctly signed, is still fresh: the rejected attempt stored nothing.
    assert_eq!(deliver(running.addr, "msg_bad", &body, SECRET).await.0, 200);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accepted_work_survives_a_restart_and_is_processed_after_it() {
    let dir = tempfile::tempdir().unwrap();
    // First run: accepts and queues, but processes nothing (no consumers), then stops.
    let (platform, running) = boot(dir.path(), 0).await;
    deploy_example(&platform).await;
    for p in 0..5 {
        let body = paid(&format!("pay-restart-{p}"), "shopper-r", 70_000);
        assert_eq!(deliver(running.addr, &format!("msg-r-{p}"), &body, SECRET).await.0, 200);
    }
    running.shutdown().await.unwrap();
    drop(platform);

    // Second run on the same data directory picks the queued events up.
    let (platform, running) = boot(dir.path(), 2).await;
    drained(&platform).await;
    let coupons = wallet::list(&*platform.store, &UserId::parse("shopper-r").unwrap()).await.unwrap();
    assert_eq!(coupons.len(), 5);
    running.shutdown().await.unwrap();
}
