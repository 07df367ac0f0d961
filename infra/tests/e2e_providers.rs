//! PortOne, Stripe and the shop's client callback through the whole local platform, with a
//! stand-in PortOne API on loopback: whatever mix of webhooks and callbacks reports a
//! payment, exactly one coupon is issued, and only for a payment PortOne says is fully paid.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use promo_edge::EdgeConfig;
use promo_edge::webhook::{standard, stripe};
use promo_lambdas::{campaigns, wallet};
use promo_shared::ids::UserId;
use promoctl::runtime::{Platform, Running};
use serde_json::{Value, json};

const PORTONE_SECRET: &str = "whsec_cG9ydG9uZS13ZWJob29rLXNlY3JldC1mb3ItdGVzdHM=";
const STRIPE_SECRET: &str = "whsec_stripe_endpoint_secret_for_tests";
const API_SECRET: &str = "portone-api-secret";

type Payments = Arc<Mutex<HashMap<String, Value>>>;

/// A stand-in for PortOne's `GET /payments/{id}` that checks the API secret.
async fn fake_portone() -> (String, Payments) {
    let payments: Payments = Arc::default();
    async fn payment(
        State(p): State<Payments>,
        UrlPath(id): UrlPath<String>,
        headers: HeaderMap,
    ) -> (StatusCode, String) {
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("PortOne {API_SECRET}")) {
            return (StatusCode::UNAUTHORIZED, "{}".into());
        }
        match p.lock().unwrap().get(&id) {
            Some(v) => (StatusCode::OK, v.to_string()),
            None => (StatusCode::NOT_FOUND, json!({"type": "PAYMENT_NOT_FOUND"}).to_string()),
        }
    }
    let app = axum::Router::new().route("/payments/{id}", get(payment)).with_state(payments.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), payments)
}

fn portone_payment(id: &str, user: &str, status: &str, total: i64, paid: i64) -> Value {
    json!({
        "status": status, "id": id, "transactionId": format!("tx-{id}"), "storeId": "store-test",
        "currency": "KRW", "amount": {"total": total, "paid": paid, "cancelled": 0, "taxFree": 0, "vat": 0},
        "customer": {"id": user}, "paidAt": "2026-11-27T10:00:00Z", "requestedAt": "2026-11-27T09:59:00Z"
    })
}

async fn boot(dir: &Path, api_base: &str) -> (Arc<Platform>, Running) {
    let vars: HashMap<&str, String> = HashMap::from([
        ("PROMO_WEBHOOK_SECRET_PORTONE", PORTONE_SECRET.to_string()),
        ("PROMO_WEBHOOK_SECRET_STRIPE", STRIPE_SECRET.to_string()),
        ("PROMO_PORTONE_API_BASE", api_base.to_string()),
        ("PROMO_PORTONE_API_SECRET", API_SECRET.to_string()),
    ]);
    let cfg = EdgeConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let platform = Arc::new(Platform::open(dir, cfg).unwrap());
    let campaign = support::example_campaign();
    campaigns::deploy(&*platform.store, &campaign, chrono::Utc::now()).await.unwrap();
    let running = support::serve(platform.clone(), Duration::from_secs(60), 2).await;
    (platform, running)
}

async fn post(url: String, headers: Vec<(&str, String)>, body: String) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn portone_webhook(running: &Running, delivery: &str, payment: &str) -> (u16, Value) {
    let body = json!({"type": "Transaction.Paid", "timestamp": "2026-11-27T10:00:01Z",
        "data": {"storeId": "store-test", "paymentId": payment, "transactionId": format!("tx-{payment}")}})
    .to_string();
    let ts = chrono::Utc::now().timestamp();
    let sig = standard::Secret::parse(PORTONE_SECRET).unwrap().sign(delivery, ts, body.as_bytes());
    let headers =
        vec![("webhook-id", delivery.to_string()), ("webhook-timestamp", ts.to_string()), ("webhook-signature", sig)];
    post(format!("http://{}/v1/webhooks/portone", running.addr), headers, body).await
}

async fn callback(running: &Running, payment: &str) -> (u16, Value) {
    post(format!("http://{}/v1/payments/{payment}/complete", running.addr), vec![], "{}".into()).await
}

async fn coupons(platform: &Platform, user: &str) -> usize {
    for _ in 0..200 {
        if platform.queue.depth(promo_edge::adapters::PAYMENT_EVENTS_QUEUE).await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wallet::list(&*platform.store, &UserId::parse(user).unwrap()).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn portone_webhooks_and_client_callbacks_racing_issue_one_coupon_per_payment() {
    let dir = tempfile::tempdir().unwrap();
    let (api, payments) = fake_portone().await;
    let (platform, running) = boot(dir.path(), &api).await;
    let running = Arc::new(running);
    // 100 payments, each reported 5 times at once: two PortOne webhook deliveries, a replay
    // of the first, and two client callbacks.
    let n = 100;
    for p in 0..n {
        let id = format!("po-pay-{p}");
        payments
            .lock()
            .unwrap()
            .insert(id.clone(), portone_payment(&id, &format!("po-user-{p}"), "PAID", 60_000, 60_000));
    }
    let mut tasks = Vec::new();
    for p in 0..n {
        for k in 0..5 {
            let running = running.clone();
            let id = format!("po-pay-{p}");
            tasks.push(tokio::spawn(async move {
                match k {
                    0 | 2 => portone_webhook(&running, &format!("wh-{p}-a"), &id).await,
                    1 => portone_webhook(&running, &format!("wh-{p}-b"), &id).await,
                    _ => callback(&running, &id).await,
                }
            }));
        }
    }
    for t in tasks {
        let (status, answer) = t.await.unwrap();
        assert!(status == 200 || (status == 409 && answer["error"]["code"] == "in_progress"), "{status} {answer}");
    }
    for p in 0..n {
        assert_eq!(coupons(&platform, &format!("po-user-{p}")).await, 1, "payment {p}");
    }
    Arc::try_unwrap(running).ok().unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_what_portone_says_is_fully_paid_earns_a_coupon() {
    let dir = tempfile::tempdir().unwrap();
    let (api, payments) = fake_portone().await;
    let (platform, running) = boot(dir.path(), &api).await;

    // Not paid yet: acknowledged, nothing issued — and not remembered, so a later report counts.
    payments.lock().unwrap().insert("po-late".into(), portone_payment("po-late", "late-user", "READY", 60_000, 0));
    let (status, answer) = callback(&running, "po-late").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")), "{answer}");
    payments.lock().unwrap().insert("po-late".into(), portone_payment("po-late", "late-user", "PAID", 60_000, 60_000));
    let (status, answer) = callback(&running, "po-late").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    assert_eq!(coupons(&platform, "late-user").await, 1);

    // Paid less than the total: never issued.
    payments.lock().unwrap().insert("po-short".into(), portone_payment("po-short", "short-user", "PAID", 60_000, 100));
    let (status, answer) = portone_webhook(&running, "wh-short", "po-short").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")), "{answer}");
    assert_eq!(coupons(&platform, "short-user").await, 0);

    // Unknown to PortOne: the client callback is a 404.
    let (status, answer) = callback(&running, "po-unknown").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_found")), "{answer}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stripe_payment_intents_issue_once_per_payment() {
    let dir = tempfile::tempdir().unwrap();
    let (api, _) = fake_portone().await;
    let (platform, running) = boot(dir.path(), &api).await;
    let event = |evt: &str| {
        json!({"id": evt, "object": "event", "type": "payment_intent.succeeded", "created": 1795800000,
            "data": {"object": {"id": "pi_test_1", "object": "payment_intent", "amount": 80000, "amount_received": 80000,
            "currency": "krw", "metadata": {"user_id": "stripe-user", "order_id": "ord-s-1"}}}})
        .to_string()
    };
    let send = |body: String| {
        let url = format!("http://{}/v1/webhooks/stripe", running.addr);
        let sig = stripe::Secret::parse(STRIPE_SECRET).unwrap().sign(chrono::Utc::now().timestamp(), body.as_bytes());
        post(url, vec![("stripe-signature", sig)], body)
    };
    let (s1, a1) = send(event("evt_1")).await;
    let (s2, a2) = send(event("evt_1")).await;
    let (s3, _) = send(event("evt_2")).await;
    assert_eq!((s1, s2, s3), (200, 200, 200));
    assert_eq!((a1["duplicate"].as_bool(), a2["duplicate"].as_bool()), (Some(false), Some(true)));
    assert_eq!(coupons(&platform, "stripe-user").await, 1);
    let (status, answer) = post(
        format!("http://{}/v1/webhooks/stripe", running.addr),
        vec![("stripe-signature", "t=1,v1=00".into())],
        event("evt_3"),
    )
    .await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("invalid_signature")));
    running.shutdown().await.unwrap();
}
