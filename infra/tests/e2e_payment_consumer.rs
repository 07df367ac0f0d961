//! The coupon issuer in `promoctl dev`: payment events from the embedded queue. A message
//! that can never succeed goes to the dead letters at once (no retries); a valid one is
//! handled and acknowledged.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use promo_edge::EdgeConfig;
use promo_edge::adapters::PAYMENT_EVENTS_QUEUE;
use promo_lambdas::{campaigns, wallet};
use promo_shared::ids::UserId;
use promo_shared::ports::{ManualClock, Queue};
use promo_shared::testing::at;
use promoctl::campaign_file;
use promoctl::embedded::OsIds;
use promoctl::runtime::{self, Platform, RunOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_payment_event_is_dead_lettered_at_once_and_a_valid_one_is_issued() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-25T12:00:00Z")));
    let platform =
        Platform::open_with(dir.path(), EdgeConfig::from_lookup(|_| None).unwrap(), clock.clone(), Arc::new(OsIds))
            .unwrap();
    let platform = Arc::new(platform);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/black-friday.toml");
    campaigns::deploy(&*platform.store, &campaign_file::load(&example).unwrap(), at("2026-11-01T00:00:00Z"))
        .await
        .unwrap();
    let running = runtime::start(
        platform.clone(),
        "127.0.0.1:0".parse().unwrap(),
        RunOptions { tick: Duration::from_secs(60), consumers: 1 },
    )
    .await
    .unwrap();

    let queue = &platform.queue;
    queue.publish(PAYMENT_EVENTS_QUEUE, b"{\"type\":\"paid\"}").await.unwrap();
    let paid = json!({"type": "paid", "payment_id": "consumer-pay-1", "order_id": "o-1", "user_id": "consumer-user",
        "amount": 60000, "currency": "KRW", "items": [], "occurred_at": "2026-11-25T11:00:00Z"});
    queue.publish(PAYMENT_EVENTS_QUEUE, paid.to_string().as_bytes()).await.unwrap();

    let user = UserId::parse("consumer-user").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue.depth(PAYMENT_EVENTS_QUEUE).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = queue.dead_letters(PAYMENT_EVENTS_QUEUE).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].body.as_slice(), dead[0].attempts), (&b"{\"type\":\"paid\"}"[..], 1), "no retries");
    assert!(dead[0].reason.contains("malformed"), "{}", dead[0].reason);
    assert_eq!(wallet::list(&*platform.store, &user).await.unwrap().len(), 1);
    running.shutdown().await.unwrap();
}
