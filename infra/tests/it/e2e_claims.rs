//! First-come-first-served claims and the wallet over HTTP, through the local runtime: a
//! shopper with a bearer token claims the example campaign's coupon, is stopped at the
//! per-user limit, reads their own wallet and no one else's; bad requests get clear 4xx
//! answers and write nothing.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use promo_lambdas::auth::ShopperAuth;
use promo_shared::campaigns;
use promo_shared::claims;
use promo_shared::domain::ids::CampaignId;
use promo_shared::domain::ids::UserId;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::clock::ManualClock;
use promo_shared::testing::at;
use promoctl::runtime::{Platform, Running};
use serde_json::Value;
use support::items;

use support::SHOPPER_SECRET;

async fn boot(dir: &Path, clock: Arc<ManualClock>) -> (Arc<Platform>, Running) {
    let platform = support::shoppers_platform(dir, clock);
    let running = support::serve(platform.clone(), Duration::from_secs(60), 0).await;
    (platform, running)
}

fn token(user: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    support::shopper_token(user, now)
}

async fn call(method: &str, url: String, token: Option<&str>) -> (u16, Value, reqwest::header::HeaderMap) {
    let client = reqwest::Client::new();
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shopper_claims_once_and_reads_only_their_own_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-25T12:00:00Z")));
    let (platform, running) = boot(dir.path(), clock.clone()).await;
    let campaign = support::example_campaign();
    campaigns::deploy(&*platform.store, &*clock, &campaign).await.unwrap();
    let base = format!("http://{}", running.addr);
    let claim_url = format!("{base}/v1/campaigns/black-friday-2026/claims");
    let alice = token("alice", clock.now());

    let (status, coupon, headers) = call("POST", claim_url.clone(), Some(&alice)).await;
    assert_eq!(status, 201, "{coupon}");
    assert_eq!(coupon["user_id"], "alice");
    assert_eq!(coupon["campaign_id"], "black-friday-2026");
    assert_eq!(coupon["template"]["id"], "welcome-10pct");
    assert_eq!(coupon["status"], "ISSUED");
    assert_eq!(coupon["source"], serde_json::json!({"type": "claim", "claim_no": 1}));
    assert_eq!(headers["cache-control"], "no-store");

    let (status, answer, _) = call("POST", claim_url.clone(), Some(&alice)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("claim_limit_reached")), "{answer}");

    let (status, wallet, headers) = call("GET", format!("{base}/v1/users/alice/coupons"), Some(&alice)).await;
    assert_eq!(status, 200, "{wallet}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(wallet["user_id"], "alice");
    assert_eq!(wallet["coupons"].as_array().unwrap().len(), 1);
    assert_eq!(wallet["coupons"][0]["code"], coupon["code"]);

    // Refused requests write nothing.
    let before = items(dir.path());
    let (status, answer, _) = call("GET", format!("{base}/v1/users/bob/coupons"), Some(&alice)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")), "{answer}");

    let (status, answer, headers) = call("POST", claim_url.clone(), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthorized")), "{answer}");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, _) = call("GET", format!("{base}/v1/users/alice/coupons"), None).await;
    assert_eq!(status, 401);

    let (status, answer, _) =
        call("POST", format!("{base}/v1/campaigns/no-such-campaign/claims"), Some(&token("carol", clock.now()))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("campaign_not_found")), "{answer}");
    assert_eq!(items(dir.path()), before, "a refused request wrote something");

    // One coupon taken from the stock, by alice only.
    let left: i64 = claims::stock_left(&*platform.store, &campaign).await.unwrap().iter().sum();
    assert_eq!(left, 999);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_tokens_ids_methods_and_inactive_campaigns_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-19T12:00:00Z")));
    let (platform, running) = boot(dir.path(), clock.clone()).await;
    let campaign = support::example_campaign();
    campaigns::deploy(&*platform.store, &*clock, &campaign).await.unwrap();
    let base = format!("http://{}", running.addr);
    let claim_url = format!("{base}/v1/campaigns/black-friday-2026/claims");
    let dave = token("dave", clock.now());
    let before = items(dir.path());

    // Before starts_at (2026-11-20T00:00:00+09:00).
    let (status, answer, _) = call("POST", claim_url.clone(), Some(&dave)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("campaign_not_active")), "{answer}");

    // Expired (past the leeway), signed with another secret, or not a JWT at all.
    let expired = token("dave", clock.now() - chrono::Duration::hours(1));
    let foreign = ShopperAuth::new(b"some-other-secret-some-other-secret").unwrap().mint(
        &UserId::parse("dave").unwrap(),
        clock.now(),
        chrono::Duration::minutes(5),
    );
    for bad in [expired.as_str(), foreign.as_str(), "garbage"] {
        let (status, answer, _) = call("POST", claim_url.clone(), Some(bad)).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthorized")), "{answer}");
    }

    let (status, answer, _) = call("POST", format!("{base}/v1/campaigns/bad%20id/claims"), Some(&dave)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_id")), "{answer}");
    let (status, answer, _) = call("GET", format!("{base}/v1/users/da%23ve/coupons"), Some(&dave)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_id")), "{answer}");
    let (status, answer, headers) = call("GET", claim_url.clone(), Some(&dave)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (405, Some("method_not_allowed")), "{answer}");
    assert_eq!(headers["allow"], "POST");

    // Nothing was written; once the campaign starts the same shopper gets their coupon.
    assert_eq!(items(dir.path()), before, "a refused request wrote something");
    let id = CampaignId::parse("black-friday-2026").unwrap();
    let user = UserId::parse("dave").unwrap();
    assert_eq!(claims::claimed_by(&*platform.store, &user, &id).await.unwrap(), 0);
    clock.set(at("2026-11-20T00:00:00+09:00"));
    let (status, answer, _) = call("POST", claim_url, Some(&token("dave", clock.now()))).await;
    assert_eq!(status, 201, "{answer}");
    running.shutdown().await.unwrap();
}

#[test]
fn promoctl_token_mints_a_token_the_api_accepts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_promoctl"))
        .args(["token", "--user", "erin", "--ttl-seconds", "120"])
        .env("PROMO_SHOPPER_JWT_SECRET", SHOPPER_SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let auth = ShopperAuth::new(SHOPPER_SECRET.as_bytes()).unwrap();
    assert_eq!(auth.verify(token.trim(), chrono::Utc::now()).unwrap().as_str(), "erin");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_promoctl"))
        .args(["token", "--user", "not ok"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// A claim is logged at info level with the shopper's id masked, never whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_log_the_shopper_masked() {
    let logs = support::captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-25T12:00:00Z")));
    let (platform, running) = boot(dir.path(), clock.clone()).await;
    campaigns::deploy(&*platform.store, &*clock, &support::example_campaign()).await.unwrap();
    let user = "shopper-0042-private";
    let url = format!("http://{}/v1/campaigns/black-friday-2026/claims", running.addr);
    let (status, _, _) = call("POST", url, Some(&token(user, clock.now()))).await;
    assert_eq!(status, 201);
    running.shutdown().await.unwrap();
    let text = logs.text();
    let masked = UserId::parse(user).unwrap().masked();
    assert!(text.contains(&format!("user={masked}")), "the claim is logged, masked: {text}");
    assert!(!text.contains(user), "the shopper's id is in the logs:\n{text}");
}

/// Idempotency keys are scoped to their shopper unambiguously: user `x` with key `y:z` and
/// user `x:y` with key `z` are two requests, and the second is not replayed the first's coupon.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_keys_of_different_shoppers_never_meet() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-25T12:00:00Z")));
    let (platform, running) = boot(dir.path(), clock.clone()).await;
    campaigns::deploy(&*platform.store, &*clock, &support::example_campaign()).await.unwrap();
    let url = format!("http://{}/v1/campaigns/black-friday-2026/claims", running.addr);
    let claim = |user: &str, key: &str| {
        reqwest::Client::new().post(url.clone()).bearer_auth(token(user, clock.now())).header("idempotency-key", key)
    };
    let first = claim("x", "y:z").send().await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let second = claim("x:y", "z").send().await.unwrap();
    assert_eq!(second.status().as_u16(), 201);
    assert!(second.headers().get("idempotent-replayed").is_none(), "not a replay of another shopper's claim");
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["user_id"], "x:y", "{second}");
    assert_ne!(second["code"], first["code"]);
    running.shutdown().await.unwrap();
}
