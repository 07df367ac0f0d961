//! PortOne, Stripe and the shop's client callback through the whole local platform, with a
//! stand-in PortOne API on loopback: whatever mix of webhooks and callbacks reports a
//! payment, exactly one coupon is issued, and only for a payment PortOne says is fully paid.

use crate::support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use promo_shared::campaigns;
use promo_shared::config::EdgeConfig;
use promo_shared::domain::ids::UserId;
use promo_shared::payments::webhooks::standard;
use promo_shared::payments::webhooks::stripe;
use promo_shared::wallet;
use promoctl::runtime::{Platform, Running};
use serde_json::{Value, json};

const PORTONE_SECRET: &str = "whsec_cG9ydG9uZS13ZWJob29rLXNlY3JldC1mb3ItdGVzdHM=";
const STRIPE_SECRET: &str = "whsec_stripe_endpoint_secret_for_tests";
const API_SECRET: &str = "portone-api-secret";

type Payments = Arc<Mutex<HashMap<String, Value>>>;
/// Every path the stand-in PortOne API was asked for, in order.
type Asked = Arc<Mutex<Vec<String>>>;

/// A stand-in for PortOne's `GET /payments/{id}` that checks the API secret.
async fn fake_portone() -> (String, Payments) {
    let (base, payments, _) = fake_portone_asked().await;
    (base, payments)
}

/// [`fake_portone`], and every path it was asked for (any path: a look-up that reached
/// another URL than `/payments/{id}` shows here).
async fn fake_portone_asked() -> (String, Payments, Asked) {
    let payments: Payments = Arc::default();
    let asked: Asked = Arc::default();
    async fn any(
        State((p, asked)): State<(Payments, Asked)>,
        uri: axum::http::Uri,
        headers: HeaderMap,
    ) -> (StatusCode, String) {
        asked.lock().unwrap().push(uri.path().to_string());
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("PortOne {API_SECRET}")) {
            return (StatusCode::UNAUTHORIZED, "{}".into());
        }
        let Some(id) = uri.path().strip_prefix("/payments/").filter(|id| !id.is_empty() && !id.contains('/')) else {
            return (StatusCode::OK, json!({"items": [], "note": "not a payment look-up"}).to_string());
        };
        match p.lock().unwrap().get(id) {
            Some(v) => (StatusCode::OK, v.to_string()),
            None => (StatusCode::NOT_FOUND, json!({"type": "PAYMENT_NOT_FOUND"}).to_string()),
        }
    }
    let app = axum::Router::new().fallback(get(any)).with_state((payments.clone(), asked.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), payments, asked)
}

fn portone_payment(id: &str, user: &str, status: &str, total: i64, paid: i64) -> Value {
    json!({
        "status": status, "id": id, "transactionId": format!("tx-{id}"), "storeId": "store-test",
        "currency": "KRW", "amount": {"total": total, "paid": paid, "cancelled": 0, "taxFree": 0, "vat": 0},
        "customer": {"id": user}, "paidAt": "2026-11-27T10:00:00Z", "requestedAt": "2026-11-27T09:59:00Z"
    })
}

/// The platform, with callback limits high enough for the races (limits have their own test).
async fn boot(dir: &Path, api_base: &str) -> (Arc<Platform>, Running) {
    boot_with(
        dir,
        api_base,
        &[("PROMO_CALLBACK_LIMIT_PER_CLIENT", "100000"), ("PROMO_CALLBACK_LIMIT_PER_PAYMENT", "1000")],
    )
    .await
}

async fn boot_with(dir: &Path, api_base: &str, extra: &[(&'static str, &str)]) -> (Arc<Platform>, Running) {
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("PROMO_WEBHOOK_SECRET_PORTONE", PORTONE_SECRET.to_string()),
        ("PROMO_WEBHOOK_SECRET_STRIPE", STRIPE_SECRET.to_string()),
        ("PROMO_PORTONE_API_BASE", api_base.to_string()),
        ("PROMO_PORTONE_API_SECRET", API_SECRET.to_string()),
        ("PROMO_CALLBACK_RECHECK_SECONDS", "1".to_string()),
    ]);
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let cfg = EdgeConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let platform = Arc::new(Platform::open(dir, cfg).unwrap());
    let campaign = support::example_campaign();
    campaigns::deploy(&*platform.store, &promo_lambdas::system::SystemClock, &campaign).await.unwrap();
    let running = support::serve(platform.clone(), Duration::from_secs(60), 2).await;
    (platform, running)
}

async fn post(url: String, headers: Vec<(&str, String)>, body: String) -> (u16, Value) {
    let (status, answer, _) = post_replay(url, headers, body).await;
    (status, answer)
}

/// [`post`], and whether the answer was a replay (`Idempotent-Replayed: true`).
async fn post_replay(url: String, headers: Vec<(&str, String)>, body: String) -> (u16, Value, bool) {
    let mut req = reqwest::Client::new().post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let replayed = resp.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (status, resp.json().await.unwrap_or(Value::Null), replayed)
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

/// A callback with headers; the status, the answer and whether it was a replay.
async fn callback_with(running: &Running, payment: &str, headers: Vec<(&str, String)>) -> (u16, Value, bool) {
    post_replay(format!("http://{}/v1/payments/{payment}/complete", running.addr), headers, "{}".into()).await
}

async fn coupons(platform: &Platform, user: &str) -> usize {
    for _ in 0..200 {
        if platform.queue.depth(promo_shared::payments::gateway::PAYMENT_EVENTS_QUEUE).await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wallet::list(&*platform.store, &UserId::parse(user).unwrap()).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn portone_webhooks_and_client_callbacks_racing_issue_one_coupon_per_payment() {
    let logs = support::captured_logs();
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
        if !(status == 200 || (status == 409 && answer["error"]["code"] == "in_progress")) {
            // What the platform logged about this request: the failed dependency's detail.
            let id = answer["error"]["request_id"].as_str().unwrap_or("-").to_string();
            let logged: Vec<String> = logs.text().lines().filter(|l| l.contains(&id)).map(str::to_string).collect();
            panic!("{status} {answer}\nlogged for {id}:\n{}", logged.join("\n"));
        }
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

    // Not paid yet: acknowledged, nothing issued — remembered only for the recheck window
    // (1 s here), so a later report counts.
    payments.lock().unwrap().insert("po-late".into(), portone_payment("po-late", "late-user", "READY", 60_000, 0));
    let (status, answer) = callback(&running, "po-late").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")), "{answer}");
    payments.lock().unwrap().insert("po-late".into(), portone_payment("po-late", "late-user", "PAID", 60_000, 60_000));
    tokio::time::sleep(Duration::from_millis(2100)).await;
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
async fn client_callbacks_are_bounded_without_delaying_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let (api, payments, asked) = fake_portone_asked().await;
    let (platform, running) = boot_with(
        dir.path(),
        &api,
        &[("PROMO_CALLBACK_LIMIT_PER_CLIENT", "1000"), ("PROMO_CALLBACK_LIMIT_PER_PAYMENT", "8")],
    )
    .await;
    let lookups = |id: &str| asked.lock().unwrap().iter().filter(|p| p.ends_with(&format!("/{id}"))).count();

    // An unknown payment: one look-up, then the same 404 from the ledger for the window.
    let first = callback_with(&running, "po-nobody", vec![]).await;
    assert_eq!((first.0, first.1["error"]["code"].as_str(), first.2), (404, Some("not_found"), false));
    for _ in 0..5 {
        let again = callback_with(&running, "po-nobody", vec![]).await;
        assert_eq!((again.0, &again.1, again.2), (404, &first.1, true), "remembered, not looked up");
    }
    assert_eq!(lookups("po-nobody"), 1);

    // Not final yet: one look-up for the window; meanwhile PortOne's webhook of the payment,
    // now paid, is not held back by the remembered callback answer.
    payments.lock().unwrap().insert("po-wait".into(), portone_payment("po-wait", "wait-user", "READY", 60_000, 0));
    assert_eq!(callback_with(&running, "po-wait", vec![]).await.1["status"], "ignored");
    assert!(callback_with(&running, "po-wait", vec![]).await.2, "the second is a replay");
    assert_eq!(lookups("po-wait"), 1);
    payments.lock().unwrap().insert("po-wait".into(), portone_payment("po-wait", "wait-user", "PAID", 60_000, 60_000));
    let (status, answer) = portone_webhook(&running, "wh-wait", "po-wait").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    assert_eq!(coupons(&platform, "wait-user").await, 1);

    // At most 8 callbacks a minute for one payment, whatever their answers.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(callback_with(&running, "po-nobody", vec![]).await.0);
    }
    assert_eq!(statuses, [404, 404, 429], "the ninth callback for po-nobody is refused");
    let (status, answer, _) = callback_with(&running, "po-nobody", vec![]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (429, Some("rate_limited")));

    // Ids that are URL dot segments never reach PortOne, encoded or not.
    let before = asked.lock().unwrap().len();
    for id in [".", "..", "%2E", "%2e%2E", "a%2Fb"] {
        // Sent as written: an HTTP client library would remove the dot segments itself.
        let path = format!("/v1/payments/{id}/complete");
        let answer = support::raw_request(running.addr, "POST", &path, &[], b"{}").await;
        assert_eq!((answer.status, answer.json()["error"]["code"].as_str()), (400, Some("invalid_id")), "{id}");
    }
    assert_eq!(asked.lock().unwrap().len(), before, "no look-up: {:?}", asked.lock().unwrap());
    running.shutdown().await.unwrap();

    // One client: at most its limit a minute, across payments.
    let dir = tempfile::tempdir().unwrap();
    let (platform, running) = boot_with(dir.path(), &api, &[("PROMO_CALLBACK_LIMIT_PER_CLIENT", "3")]).await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        statuses.push(callback_with(&running, &format!("po-client-{n}"), vec![]).await.0);
    }
    assert_eq!(statuses, [404, 404, 404, 429]);
    running.shutdown().await.unwrap();
    drop(platform);

    // With the shop's tokens set, a callback needs one of them.
    let dir = tempfile::tempdir().unwrap();
    let (platform, running) =
        boot_with(dir.path(), &api, &[("PROMO_CALLBACK_TOKENS", "shop-token-old shop-token-new")]).await;
    payments.lock().unwrap().insert("po-tok".into(), portone_payment("po-tok", "tok-user", "PAID", 60_000, 60_000));
    let before = lookups("po-tok");
    for headers in [
        vec![],
        vec![("authorization", "Bearer shop-token-wrong".to_string())],
        vec![("authorization", "Basic shop-token-new".to_string())],
        vec![("authorization", "Bearer shop-token-ol".to_string())],
    ] {
        let (status, answer, _) = callback_with(&running, "po-tok", headers).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthorized")));
    }
    assert_eq!(lookups("po-tok"), before, "refused before any look-up");
    let ok = callback_with(&running, "po-tok", vec![("authorization", "Bearer shop-token-new".into())]).await;
    assert_eq!((ok.0, ok.1["status"].as_str()), (200, Some("accepted")), "{}", ok.1);
    assert_eq!(coupons(&platform, "tok-user").await, 1);
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
        post_replay(url, vec![("stripe-signature", sig)], body)
    };
    let (s1, a1, r1) = send(event("evt_1")).await;
    let (s2, a2, r2) = send(event("evt_1")).await;
    let (s3, _, _) = send(event("evt_2")).await;
    assert_eq!((s1, s2, s3), (200, 200, 200));
    assert_eq!((r1, r2), (false, true));
    assert_eq!(a2, a1, "the replay's answer is the first one");
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
