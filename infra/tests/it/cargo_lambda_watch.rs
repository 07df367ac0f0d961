//! Production as a marketer and the Lambdas meet it: `promoctl --env prod` deploys a campaign
//! file, publishes products and sets mileage in a DynamoDB stand-in (moto, through the real
//! SDK) and the Worker's KV (a stand-in of Cloudflare's bulk API); then the Lambda binaries
//! as cargo-lambda runs them (`cargo lambda watch` emulates the Lambda runtime API, `cargo
//! lambda invoke` sends sample events: SQS and Amazon MQ batches, function URL requests)
//! issue the campaign's reward, serve a claim and price a product with what was deployed.
//! (Function URL events go through `invoke`: with cargo-lambda 1.9.2, plain HTTP requests
//! to its `/lambda-url/<function>/` emulation answered 500 for these functions while the
//! same requests as invoked events worked; not investigated further.)
//!
//! Run by `infra/test.sh` as its own step after the workspace tests (it needs moto, the
//! tools venv's cargo-lambda on PATH, and builds the binaries with cargo in the same target
//! directory, which must not be locked by a running `cargo test`):
//!
//! ```text
//! cargo test -p promoctl --features prod --test it -- --ignored cargo_lambda_watch::
//! ```

use crate::support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use promo_lambdas::auth::ShopperAuth;
use promo_lambdas::dynamodb::DynamoStore;
use promo_lambdas::dynamodb::create_table;
use promo_shared::domain::ids::UserId;
use promo_shared::payments::webhooks::standard::Secret;
use serde_json::{Value, json};

const ISSUER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const JWT_SECRET: &str = "cargo-lambda-watch-test-jwt-secret-32b";

/// Kills `cargo lambda watch` (and the functions it started) when the test ends either way,
/// and prints its log (the functions' output) when the test failed.
struct Watch(Child, std::path::PathBuf);

impl Drop for Watch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- cargo lambda watch log ---\n{}", std::fs::read_to_string(&self.1).unwrap_or_default());
        }
        // The watcher runs the functions as its children; its process group is ours to end.
        let _ = Command::new("kill").args(["--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn lambdas_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../lambdas"))
}

fn invoke(port: u16, function: &str, event: &Value) -> Value {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), event.to_string()).unwrap();
    let out = Command::new("cargo")
        .args(["lambda", "invoke", function, "-P", &port.to_string(), "--data-file"])
        .arg(file.path())
        .args(["--output-format", "json"])
        .current_dir(lambdas_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo lambda invoke {function} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// A function URL request event, as AWS delivers it.
fn url_event(method: &str, path: &str, headers: &Value, body: Option<&str>) -> Value {
    json!({
        "version": "2.0", "rawPath": path, "rawQueryString": "", "headers": headers,
        "requestContext": {"accountId": "anonymous", "apiId": "watch", "domainName": "watch.lambda-url.us-east-1.on.aws",
            "domainPrefix": "watch", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"}},
        "body": body, "isBase64Encoded": false
    })
}

/// The JSON body of a function URL response with the expected status.
fn answer(resp: Value, status: u16) -> Value {
    assert_eq!(resp["statusCode"], status, "{resp}");
    serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
}

fn sqs_batch(records: &[(&str, String)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({"messageId": id, "receiptHandle": "h", "body": body, "attributes": {}, "messageAttributes": {},
                   "md5OfBody": "", "eventSource": "aws:sqs",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:promo-payment-events", "awsRegion": "us-east-1"})
        })
        .collect();
    json!({"Records": records})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by infra/test.sh as its own step: cargo lambda watch builds in the shared target directory"]
async fn issuer_and_api_serve_sample_events_under_cargo_lambda_watch() {
    let endpoint = std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT")
        .expect("PROMO_TEST_DYNAMODB_ENDPOINT is not set: run infra/test.sh (or source infra/services/env.sh)");
    if !cfg!(feature = "prod") {
        panic!("this test deploys with `promoctl --env prod`: run it with `--features prod` (infra/test.sh does)");
    }
    let table = format!("promo-watch-{}", std::process::id());
    let store = DynamoStore::from_env(table.clone(), Some(&endpoint)).await;
    create_table(store.client(), &table).await.unwrap();
    let (kv_api, kv_seen) = promo_conformance::cloudflare_kv::serve().await;

    // The marketer's side, through the production target: a campaign file live around now
    // (relative times), products and a shopper's mileage.
    let now = chrono::Utc::now();
    let dir = tempfile::tempdir().unwrap();
    let mut spec = promo_shared::testing::campaign_json();
    spec["starts_at"] = json!("-1d");
    spec["ends_at"] = json!("+30d");
    let campaign_file = dir.path().join("bf.json");
    std::fs::write(&campaign_file, spec.to_string()).unwrap();
    let products = dir.path().join("products.json");
    std::fs::write(
        &products,
        json!([{"id": "p-1", "brand": "b-1", "category": "shoes", "currency": "KRW",
            "list_price": 50000, "sale_price": 45000}])
        .to_string(),
    )
    .unwrap();
    let prod = |args: &[&str]| {
        let out = support::prod_promoctl(&table, &endpoint, &kv_api, dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "promoctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deployed = prod(&["campaign", "deploy", campaign_file.to_str().unwrap()]);
    assert!(deployed.contains(&format!("version 1 to the DynamoDB table {table}")), "{deployed}");
    assert!(deployed.contains("and to the edge's KV"), "{deployed}");
    assert!(prod(&["campaign", "deploy", campaign_file.to_str().unwrap()]).contains("no changes"));
    prod(&["products", "publish", products.to_str().unwrap()]);
    prod(&["mileage", "set", "--user", "watch-user", "--balance", "3000"]);
    let listed: Value = serde_json::from_str(&prod(&["campaign", "list", "--json"])).unwrap();
    assert_eq!((listed[0]["campaign"]["id"].as_str(), listed[0]["status"].as_str()), (Some("bf-2026"), Some("ACTIVE")));
    assert!(!dir.path().join("no-local-store").exists(), "--env prod never touches the local store");
    // The edge's KV got the price book with the campaign's claim coupon, and the product.
    let kv_keys: Vec<(String, String)> = kv_seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, _, body)| body.as_array().cloned().unwrap_or_default())
        .map(|e| (e["key"].as_str().unwrap_or("").to_string(), e["value"].as_str().unwrap_or("").to_string()))
        .collect();
    assert!(kv_keys.iter().any(|(k, v)| k == "price-book" && v.contains("welcome-10")), "{kv_keys:?}");
    assert!(kv_keys.iter().any(|(k, _)| k == "product:p-1"), "{kv_keys:?}");

    // `cargo lambda watch` starts a function with `cargo run --bin NAME` on its first
    // invocation; built beforehand, that start does not eat into the invocation's timeout.
    let build = Command::new("cargo")
        .args(["build", "--manifest-path", "Cargo.toml", "--bins"])
        .current_dir(lambdas_dir())
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));

    let port = free_port();
    let env = [
        format!("PROMO_TABLE_NAME={table}"),
        format!("PROMO_DYNAMODB_ENDPOINT={endpoint}"),
        format!("PROMO_ISSUER_SECRET={ISSUER_SECRET}"),
        format!("PROMO_SHOPPER_JWT_SECRET={JWT_SECRET}"),
        "AWS_ACCESS_KEY_ID=test".into(),
        "AWS_SECRET_ACCESS_KEY=test".into(),
        "AWS_REGION=us-east-1".into(),
        "RUST_LOG=info".into(),
    ];
    let mut cmd = Command::new("cargo");
    cmd.args(["lambda", "watch", "--ignore-changes", "-P", &port.to_string()]);
    for e in &env {
        cmd.args(["--env-var", e]);
    }
    let log = tempfile::NamedTempFile::new().unwrap();
    use std::os::unix::process::CommandExt;
    let child = cmd
        .current_dir(lambdas_dir())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("cannot run `cargo lambda watch`: is the tools venv's bin on PATH? (infra/test.sh sets it up)");
    let _watch = Watch(child, log.path().to_path_buf());
    let deadline = Instant::now() + Duration::from_secs(600);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "cargo lambda watch did not listen: {}",
            std::fs::read_to_string(log.path()).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The issuer: an SQS batch, delivered twice, issues one reward; a malformed record is
    // reported as the batch's only failure.
    let paid = json!({"type": "paid", "payment_id": "pay-watch-1", "order_id": "o-watch-1", "user_id": "watch-user",
        "amount": 60000, "currency": "KRW", "items": [], "occurred_at": now.to_rfc3339()})
    .to_string();
    let first = invoke(port, "issuer", &sqs_batch(&[("m-1", paid.clone())]));
    assert_eq!(first, json!({"batchItemFailures": []}), "{first}");
    let again = invoke(port, "issuer", &sqs_batch(&[("m-2", paid), ("m-3", "{\"type\":\"paid\"}".into())]));
    assert_eq!(again, json!({"batchItemFailures": [{"itemIdentifier": "m-3"}]}), "{again}");

    // The API, invoked with function URL events: the wallet holds the one reward; a claim
    // adds a coupon; no token, no answer.
    let auth = ShopperAuth::new(JWT_SECRET.as_bytes()).unwrap();
    let token = auth.mint(&UserId::parse("watch-user").unwrap(), chrono::Utc::now(), chrono::Duration::minutes(5));
    let bearer = json!({"authorization": format!("Bearer {token}")});
    let wallet = || answer(invoke(port, "api", &url_event("GET", "/v1/users/watch-user/coupons", &bearer, None)), 200);
    let coupons = wallet();
    assert_eq!(coupons["coupons"].as_array().unwrap().len(), 1, "{coupons}");
    assert_eq!(coupons["coupons"][0]["template"]["id"], "thanks-5k", "{coupons}");
    let claims = "/v1/campaigns/bf-2026/claims".to_string();
    let claimed = answer(invoke(port, "api", &url_event("POST", &claims, &bearer, None)), 201);
    assert_eq!(claimed["user_id"], "watch-user");
    assert_eq!(wallet()["coupons"].as_array().unwrap().len(), 2);
    let refused = answer(invoke(port, "api", &url_event("POST", &claims, &json!({}), None)), 401);
    assert_eq!(refused["error"]["code"], "unauthorized");
    // A personal price read prices the published product with the deployed campaign: her
    // claimed 10 % (4,500 off 45,000), and her mileage as the published policy allows.
    let price =
        answer(invoke(port, "api", &url_event("GET", "/v1/products/p-1/max-benefit-price", &bearer, None)), 200);
    let final_price = price["final_price"].as_i64().unwrap();
    assert!(final_price <= 40500, "{price}");

    // The issuer's function URL hand-off, signed as the edge signs it; a forged one is refused.
    let handoff = |secret: &str| {
        let body = json!({"type": "paid", "payment_id": "pay-watch-2", "order_id": "o-watch-2",
            "user_id": "watch-user", "amount": 70000, "currency": "KRW", "items": [], "occurred_at": now.to_rfc3339()})
        .to_string();
        let ts = chrono::Utc::now().timestamp();
        let sig = Secret::parse(secret).unwrap().sign("payment:pay-watch-2:paid", ts, body.as_bytes());
        let headers = json!({"content-type": "application/json", "webhook-id": "payment:pay-watch-2:paid",
            "webhook-timestamp": ts.to_string(), "webhook-signature": sig});
        invoke(port, "issuer", &url_event("POST", "/", &headers, Some(&body)))
    };
    answer(handoff("whsec_c2VjcmV0LW5vdC10aGUtcmlnaHQtb25l"), 401);
    answer(handoff(ISSUER_SECRET), 200);
    assert_eq!(wallet()["coupons"].as_array().unwrap().len(), 3);

    // An Amazon MQ (RabbitMQ) batch, in the shape of AWS's sample event.
    let body = json!({"type": "paid", "payment_id": "pay-watch-3", "order_id": "o-watch-3", "user_id": "watch-user",
        "amount": 60000, "currency": "KRW", "items": [], "occurred_at": now.to_rfc3339()})
    .to_string();
    let mq = invoke(port, "issuer", &promo_conformance::issuer::delivery(4, "pay-watch-3", &body, chrono::Utc::now()));
    assert_eq!(mq, json!({"handled": 1}), "{mq}");
    assert_eq!(wallet()["coupons"].as_array().unwrap().len(), 4);
    let _ = store.client().delete_table().table_name(&table).send().await;
}
