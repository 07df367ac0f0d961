//! The coupon issuer Lambda's entry (`promo_lambdas::entry`) on the embedded store, with the
//! event shapes AWS delivers: a function URL hand-off, an SQS batch, an Amazon MQ batch.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use promo_lambdas::entry;
use promo_shared::campaigns;
use promo_shared::domain::ids::UserId;
use promo_shared::payments::issuer::Issuer;
use promo_shared::payments::webhooks::standard::Secret;
use promo_shared::ports::store::Store;
use promo_shared::wallet;
use promoctl::embedded::{OsIds, SqliteStore, SystemClock};
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn issuer(dir: &Path) -> Issuer<Arc<dyn Store>> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("store.db")).unwrap());
    let campaign = support::example_campaign();
    campaigns::deploy(&*store, &promo_lambdas::system::SystemClock, &campaign).await.unwrap();
    Issuer::new(store, Arc::new(SystemClock), Arc::new(OsIds))
}

fn paid(payment: &str, user: &str) -> String {
    json!({"type": "paid", "payment_id": payment, "order_id": "o-1", "user_id": user, "amount": 60000,
        "currency": "KRW", "items": [], "occurred_at": "2026-11-27T10:00:00Z"})
    .to_string()
}

fn function_url(body: &str, secret: &str) -> Value {
    promo_conformance::issuer::hand_off("payment:p:paid", body, secret, chrono::Utc::now())
}

async fn wallet_len(issuer: &Issuer<Arc<dyn Store>>, user: &str) -> usize {
    wallet::list(&*issuer.store, &UserId::parse(user).unwrap()).await.unwrap().len()
}

#[tokio::test]
async fn function_url_hand_offs_are_verified_then_issued_once() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path()).await;
    let secrets = vec![Secret::parse(SECRET).unwrap()];
    let ok = entry::handle(&issuer, &secrets, function_url(&paid("pay-url-1", "url-user"), SECRET)).await.unwrap();
    assert_eq!(ok["statusCode"], 200, "{ok}");
    let again = entry::handle(&issuer, &secrets, function_url(&paid("pay-url-1", "url-user"), SECRET)).await.unwrap();
    assert_eq!(again["statusCode"], 200);
    assert_eq!(wallet_len(&issuer, "url-user").await, 1);

    let forged = "whsec_c2VjcmV0LW5vdC10aGUtcmlnaHQtb25l";
    let bad = entry::handle(&issuer, &secrets, function_url(&paid("pay-url-2", "url-user-2"), forged)).await.unwrap();
    assert_eq!(bad["statusCode"], 401);
    let malformed = entry::handle(&issuer, &secrets, function_url("{\"type\":\"paid\"}", SECRET)).await.unwrap();
    assert_eq!(malformed["statusCode"], 400);
    assert_eq!(wallet_len(&issuer, "url-user-2").await, 0);
}

#[tokio::test]
async fn sqs_batches_report_only_the_failed_records() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path()).await;
    let record = |id: &str, body: &str| {
        json!({"messageId": id, "receiptHandle": "h", "body": body, "attributes": {}, "messageAttributes": {},
               "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"})
    };
    let batch = json!({"Records": [
        record("m-1", &paid("pay-sqs-1", "sqs-user")),
        record("m-2", "not json"),
        record("m-3", &paid("pay-sqs-1", "sqs-user")),
    ]});
    let out = entry::handle(&issuer, &[], batch).await.unwrap();
    assert_eq!(out["batchItemFailures"], json!([{"itemIdentifier": "m-2"}]), "{out}");
    assert_eq!(wallet_len(&issuer, "sqs-user").await, 1);
}

/// An invocation's metrics (EMF): what was issued, what repeated, what failed and what SQS
/// is about to dead-letter (a record failing its last delivery); the edge's request id is
/// read from the message attribute without changing the answer.
#[tokio::test]
async fn sqs_invocations_count_issued_duplicates_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path()).await;
    let record = |id: &str, body: &str, receives: u32| {
        json!({"messageId": id, "receiptHandle": "h", "body": body,
               "attributes": {"ApproximateReceiveCount": receives.to_string()},
               "messageAttributes": {"request_id": {"stringValue": format!("req-{id}"), "dataType": "String"}},
               "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"})
    };
    let batch = json!({"Records": [
        record("m-1", &paid("pay-emf-1", "emf-user"), 1),
        record("m-2", &paid("pay-emf-1", "emf-user"), 1),
        record("m-3", "not json", 1),
        record("m-4", "{\"type\":\"paid\"}", promo_lambdas::metrics::MAX_RECEIVES),
    ]});
    let (out, counts) = entry::handle_counted(&issuer, &[], batch).await;
    assert_eq!(out.unwrap()["batchItemFailures"], json!([{"itemIdentifier": "m-3"}, {"itemIdentifier": "m-4"}]));
    assert_eq!(
        (counts.get("issued"), counts.get("duplicates"), counts.get("failed"), counts.get("dead_lettered")),
        (1, 1, 2, 2),
        "{counts:?}"
    );
    let line = counts.emf("issuer", 0).unwrap();
    assert_eq!(line["Function"], "issuer");
    assert_eq!(line["issued"], 1);
}

#[tokio::test]
async fn amazon_mq_batches_skip_malformed_messages() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path()).await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // The shape of AWS's sample Amazon MQ for RabbitMQ event.
    let props = json!({"contentType": "application/json", "contentEncoding": null, "headers": {},
        "deliveryMode": 2, "priority": 0, "correlationId": null, "replyTo": null, "expiration": null,
        "messageId": null, "timestamp": null, "type": null, "userId": null, "appId": null, "clusterId": null,
        "bodySize": 80});
    let batch = json!({"eventSource": "aws:rmq", "eventSourceArn": "arn:aws:mq:us-east-1:1:broker:b",
    "rmqMessagesByQueue": {"payment-events::/": [
        {"basicProperties": props, "redelivered": false, "data": b64(&paid("pay-mq-1", "mq-user"))},
        {"basicProperties": props, "redelivered": false, "data": b64("garbage")},
        {"basicProperties": props, "redelivered": false, "data": "not base64!"}
    ]}});
    let out = entry::handle(&issuer, &[], batch).await.unwrap();
    assert_eq!(out["handled"], 1, "{out}");
    assert_eq!(wallet_len(&issuer, "mq-user").await, 1);
    assert!(entry::handle(&issuer, &[], json!({"hello": "world"})).await.is_err());
}

/// While the store throttles every write, each way in reports the failure as retryable, the
/// way its trigger expects: 503 from the function URL, the record in `batchItemFailures` for
/// SQS, a failed invocation for Amazon MQ. Nothing is issued until the store recovers; then
/// the redelivery issues.
#[tokio::test]
async fn transient_store_failures_are_retryable_on_every_way_in() {
    use promo_conformance::issuer::{HANDOFF_SECRET, delivery};
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let store = issuer(dir.path()).await.store;
    let flaky = promo_conformance::flaky::Flaky::over(&store);
    flaky.throttle_transacts.store(usize::MAX / 2, Ordering::SeqCst);
    let issuer = Issuer::new(flaky.clone() as Arc<dyn Store>, Arc::new(SystemClock), Arc::new(OsIds)).with_retry(
        promo_shared::retry::RetryPolicy {
            retries: 8,
            base: std::time::Duration::ZERO,
            cap: std::time::Duration::ZERO,
        },
    );
    let secrets = vec![Secret::parse(HANDOFF_SECRET).unwrap()];
    let body = paid("pay-flaky", "flaky-user");

    let url = entry::handle(&issuer, &secrets, delivery(0, "pay-flaky", &body, chrono::Utc::now())).await.unwrap();
    assert_eq!(url["statusCode"], 503, "{url}");
    let sqs = entry::handle(&issuer, &secrets, delivery(2, "pay-flaky", &body, chrono::Utc::now())).await.unwrap();
    assert_eq!(sqs["batchItemFailures"], json!([{"itemIdentifier": "pay-flaky-2"}]), "{sqs}");
    let mq = entry::handle(&issuer, &secrets, delivery(4, "pay-flaky", &body, chrono::Utc::now())).await;
    assert!(matches!(mq, Err(entry::EntryError::Transient(_))), "{mq:?}");
    assert_eq!(wallet_len(&issuer, "flaky-user").await, 0);

    flaky.throttle_transacts.store(0, Ordering::SeqCst);
    let mq = entry::handle(&issuer, &secrets, delivery(4, "pay-flaky", &body, chrono::Utc::now())).await.unwrap();
    assert_eq!(mq["handled"], 1, "{mq}");
    assert_eq!(wallet_len(&issuer, "flaky-user").await, 1);
}

// --- The shoppers' API Lambda (`entry::api`) ---

const JWT_SECRET: &[u8] = b"lambda-entry-test-shopper-secret-32b";

fn url_request(method: &str, path: &str, headers: Value, body: Option<&str>) -> Value {
    json!({
        "version": "2.0", "rawPath": path, "rawQueryString": "", "headers": headers,
        "requestContext": {"accountId": "anonymous", "apiId": "x", "domainName": "x.lambda-url.us-east-1.on.aws",
            "domainPrefix": "x", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "shop"}},
        "body": body, "isBase64Encoded": false
    })
}

/// Inside the example campaign's window, whatever the date the tests run on.
fn during_campaign() -> chrono::DateTime<chrono::Utc> {
    promo_shared::testing::at("2026-11-25T12:00:00Z")
}

async fn api(dir: &Path) -> promo_shared::serve::api::Api<Arc<dyn Store>> {
    let issuer = issuer(dir).await; // deploys the example campaign
    let clock = Arc::new(promo_shared::ports::clock::ManualClock::new(during_campaign()));
    let claimer = promo_shared::claims::Claimer::new(issuer.store.clone(), clock, Arc::new(OsIds));
    promo_shared::serve::api::Api::new(claimer, promo_lambdas::auth::ShopperAuth::new(JWT_SECRET).unwrap())
}

fn bearer(user: &str) -> String {
    let auth = promo_lambdas::auth::ShopperAuth::new(JWT_SECRET).unwrap();
    format!("Bearer {}", auth.mint(&UserId::parse(user).unwrap(), during_campaign(), chrono::Duration::minutes(5)))
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn api_function_url_claims_and_lists_the_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path()).await;
    let claim =
        url_request("POST", "/v1/campaigns/black-friday-2026/claims", json!({"authorization": bearer("api-1")}), None);
    let created = entry::api(&api, claim).await.unwrap();
    assert_eq!(created["statusCode"], 201, "{created}");
    assert_eq!(created["headers"]["cache-control"], "no-store");
    let coupon = body(&created);
    assert_eq!(coupon["user_id"], "api-1");

    let wallet = url_request("GET", "/v1/users/api-1/coupons", json!({"authorization": bearer("api-1")}), None);
    let listed = entry::api(&api, wallet).await.unwrap();
    assert_eq!(listed["statusCode"], 200, "{listed}");
    assert_eq!(body(&listed)["coupons"].as_array().unwrap().len(), 1);
    assert_eq!(body(&listed)["coupons"][0]["code"], coupon["code"]);

    let anonymous = url_request("POST", "/v1/campaigns/black-friday-2026/claims", json!({}), None);
    let refused = entry::api(&api, anonymous).await.unwrap();
    assert_eq!(refused["statusCode"], 401);
    assert_eq!(body(&refused)["error"]["code"], "unauthorized");
    let other = url_request("GET", "/v1/users/api-1/coupons", json!({"authorization": bearer("api-2")}), None);
    assert_eq!(entry::api(&api, other).await.unwrap()["statusCode"], 403);
    let unknown = url_request("POST", "/v1/campaigns/nope/claims", json!({"authorization": bearer("api-2")}), None);
    assert_eq!(entry::api(&api, unknown).await.unwrap()["statusCode"], 404);
    assert_eq!(wallet_len_of(&api, "api-2").await, 0, "refused requests write nothing");
    assert!(entry::api(&api, json!({"Records": [{"eventSource": "aws:s3"}]})).await.is_err());
}

/// A claim while the store throttles every write: retried with backoff (here without the
/// wait), then 503 `unavailable` with `Retry-After`, nothing taken; once the store recovers
/// the same claim succeeds.
#[tokio::test]
async fn api_claims_retry_a_throttled_store_then_answer_503() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let store = issuer(dir.path()).await.store; // deploys the example campaign
    let flaky = promo_conformance::flaky::Flaky::over(&store);
    flaky.throttle_transacts.store(usize::MAX / 2, Ordering::SeqCst);
    let clock = Arc::new(promo_shared::ports::clock::ManualClock::new(during_campaign()));
    let retry = promo_shared::retry::RetryPolicy {
        retries: 3,
        base: std::time::Duration::ZERO,
        cap: std::time::Duration::ZERO,
    };
    let claimer =
        promo_shared::claims::Claimer::new(flaky.clone() as Arc<dyn Store>, clock, Arc::new(OsIds)).with_retry(retry);
    let api = promo_shared::serve::api::Api::new(claimer, promo_lambdas::auth::ShopperAuth::new(JWT_SECRET).unwrap());
    let claim = || {
        url_request("POST", "/v1/campaigns/black-friday-2026/claims", json!({"authorization": bearer("api-9")}), None)
    };
    let refused = entry::api(&api, claim()).await.unwrap();
    assert_eq!(refused["statusCode"], 503, "{refused}");
    assert_eq!(body(&refused)["error"]["code"], "unavailable");
    assert!(refused["headers"]["retry-after"].as_str().is_some_and(|s| s.parse::<u32>().is_ok()), "{refused}");
    assert_eq!(flaky.transacts.load(Ordering::SeqCst), 4, "the first attempt and 3 retries");
    assert_eq!(wallet_len_of(&api, "api-9").await, 0);

    flaky.throttle_transacts.store(0, Ordering::SeqCst);
    assert_eq!(entry::api(&api, claim()).await.unwrap()["statusCode"], 201);
    assert_eq!(wallet_len_of(&api, "api-9").await, 1);
}

async fn wallet_len_of(api: &promo_shared::serve::api::Api<Arc<dyn Store>>, user: &str) -> usize {
    wallet::list(&*api.claimer.store, &UserId::parse(user).unwrap()).await.unwrap().len()
}

#[tokio::test]
async fn api_claim_retries_with_an_idempotency_key_claim_once() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path()).await;
    let claim = |key: &str, campaign: &str| {
        url_request(
            "POST",
            &format!("/v1/campaigns/{campaign}/claims"),
            json!({"authorization": bearer("idem-1"), "idempotency-key": key}),
            None,
        )
    };
    let first = entry::api(&api, claim("retry-1", "black-friday-2026")).await.unwrap();
    assert_eq!(first["statusCode"], 201, "{first}");
    assert!(first["headers"].get("idempotent-replayed").is_none());
    // Concurrent retries of the same request: one coupon, the same answer for all.
    let retries =
        futures::future::join_all((0..20).map(|_| entry::api(&api, claim("retry-1", "black-friday-2026")))).await;
    for r in retries {
        let r = r.unwrap();
        assert_eq!(r["statusCode"], 201, "{r}");
        assert_eq!(r["headers"]["idempotent-replayed"], "true");
        assert_eq!(body(&r)["code"], body(&first)["code"]);
    }
    assert_eq!(wallet_len_of(&api, "idem-1").await, 1);

    let reused = entry::api(&api, claim("retry-1", "another-campaign")).await.unwrap();
    assert_eq!(reused["statusCode"], 422, "{reused}");
    assert_eq!(body(&reused)["error"]["code"], "idempotency_key_reused");
    let bad = entry::api(&api, claim("bad key with spaces", "black-friday-2026")).await.unwrap();
    assert_eq!(bad["statusCode"], 400);
    assert_eq!(body(&bad)["error"]["code"], "invalid_header");
    assert_eq!(wallet_len_of(&api, "idem-1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_first_requests_with_one_idempotency_key_claim_once() {
    let dir = tempfile::tempdir().unwrap();
    let api = Arc::new(api(dir.path()).await);
    let tasks = (0..100).map(|_| {
        let api = api.clone();
        tokio::spawn(async move {
            let req = url_request(
                "POST",
                "/v1/campaigns/black-friday-2026/claims",
                json!({"authorization": bearer("racer"), "idempotency-key": "same-click"}),
                None,
            );
            entry::api(&api, req).await.unwrap()
        })
    });
    let answers: Vec<Value> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let fresh: Vec<&Value> = answers
        .iter()
        .filter(|r| r["statusCode"] == 201 && r["headers"].get("idempotent-replayed").is_none())
        .collect();
    assert_eq!(fresh.len(), 1, "exactly one request claims");
    for r in &answers {
        match r["statusCode"].as_u64().unwrap() {
            201 => assert_eq!(body(r)["code"], body(fresh[0])["code"], "replays answer the same coupon"),
            409 => assert_eq!(body(r)["error"]["code"], "request_in_progress"),
            other => panic!("unexpected {other}: {r}"),
        }
    }
    assert_eq!(wallet_len_of(&api, "racer").await, 1);
}
