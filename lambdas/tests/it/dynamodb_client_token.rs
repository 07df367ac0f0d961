//! The DynamoDB adapter's client tokens against answers moto never gives (it ignores
//! `ClientRequestToken`): a stand-in endpoint that speaks DynamoDB's JSON protocol.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use axum::http::{HeaderMap, StatusCode};
use promo_lambdas::dynamodb::DynamoStore;
use promo_shared::ports::store::Cond;
use promo_shared::ports::store::Key;
use promo_shared::ports::store::Store;
use promo_shared::ports::store::TxOp;
use serde_json::Value;

type Seen = Arc<Mutex<Vec<Value>>>;

/// Answers every `TransactWriteItems` under the native client token `token-1` with
/// `IdempotentParameterMismatchException` (what DynamoDB says when a resend under the same
/// token differs in any parameter) and every other one with success; records the requests.
async fn mismatching_dynamodb() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        let record = record.clone();
        async move {
            let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            assert_eq!(target, "DynamoDB_20120810.TransactWriteItems");
            let request: Value = serde_json::from_str(&body).unwrap();
            let tokened = request.get("ClientRequestToken") == Some(&Value::from("token-1"));
            record.lock().unwrap().push(request);
            if tokened {
                let error = serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                    "message": "the same client token with different parameters"});
                (StatusCode::BAD_REQUEST, error.to_string())
            } else {
                (StatusCode::OK, "{}".to_string())
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

/// A resend of the same operations under the same token (after an unknown outcome) whose
/// token item's expiry moved on is refused by DynamoDB's own token check; the adapter sends
/// it again without the caller's token (the SDK makes up a fresh one), so its token item
/// decides (here: a success).
#[tokio::test]
async fn a_native_token_mismatch_falls_back_to_the_token_item() {
    let (endpoint, seen) = mismatching_dynamodb().await;
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::from_static("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(promo_lambdas::dynamodb::https_client())
        .build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), "promo-token-test");
    let mut item = Key::new("CODE#ABCD", "CODE").item();
    item.insert("user_id".into(), "u-1".into());
    store.transact(vec![TxOp::Put { item, cond: Some(Cond::NotExists) }], Some("token-1")).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["ClientRequestToken"], "token-1");
    assert_ne!(seen[1]["ClientRequestToken"], "token-1", "{}", seen[1]);
    for request in seen.iter() {
        let keys: Vec<&Value> =
            request["TransactItems"].as_array().unwrap().iter().map(|i| &i["Put"]["Item"]["pk"]["S"]).collect();
        assert_eq!(keys, [&Value::from("CODE#ABCD"), &Value::from("TXTOKEN#token-1")], "the token item goes along");
    }
}
