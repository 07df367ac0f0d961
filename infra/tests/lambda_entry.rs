//! The coupon issuer Lambda's entry (`promo_lambdas::entry`) on the embedded store, with the
//! event shapes AWS delivers: a function URL hand-off, an SQS batch, an Amazon MQ batch.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use promo_edge::webhook::standard::Secret;
use promo_lambdas::issuer::Issuer;
use promo_lambdas::{campaigns, entry, wallet};
use promo_shared::ids::UserId;
use promo_shared::store::Store;
use promoctl::campaign_file;
use promoctl::embedded::{OsIds, SqliteStore, SystemClock};
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn issuer(dir: &Path) -> Issuer<Arc<dyn Store>> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("store.db")).unwrap());
    let campaign =
        campaign_file::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/black-friday.toml")).unwrap();
    campaigns::deploy(&*store, &campaign, chrono::Utc::now()).await.unwrap();
    Issuer::new(store, Arc::new(SystemClock), Arc::new(OsIds))
}

fn paid(payment: &str, user: &str) -> String {
    json!({"type": "paid", "payment_id": payment, "order_id": "o-1", "user_id": user, "amount": 60000,
        "currency": "KRW", "items": [], "occurred_at": "2026-11-27T10:00:00Z"})
    .to_string()
}

fn function_url(body: &str, secret: &str) -> Value {
    let ts = chrono::Utc::now().timestamp();
    let sig = Secret::parse(secret).unwrap().sign("payment:p:paid", ts, body.as_bytes());
    json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json", "webhook-id": "payment:p:paid",
                    "webhook-timestamp": ts.to_string(), "webhook-signature": sig},
        "requestContext": {"accountId": "anonymous", "apiId": "x", "domainName": "x.lambda-url.us-east-1.on.aws",
            "domainPrefix": "x", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "edge"}},
        "body": body, "isBase64Encoded": false
    })
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
        {"basicProperties": props, "redelivered": false, "data": b64("garbage")}
    ]}});
    let out = entry::handle(&issuer, &[], batch).await.unwrap();
    assert_eq!(out["handled"], 1, "{out}");
    assert_eq!(wallet_len(&issuer, "mq-user").await, 1);
    assert!(entry::handle(&issuer, &[], json!({"hello": "world"})).await.is_err());
}
