//! The coupon issuer in `promoctl dev`: payment events from the embedded queue. A message
//! that can never succeed goes to the dead letters at once (no retries); a valid one is
//! handled and acknowledged; one that fails retryably (the store throttling) comes back
//! after a delay, and goes to the dead letters once out of attempts.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use promo_conformance::flaky::Flaky;
use promo_conformance::store::DynStore;
use promo_shared::campaigns;
use promo_shared::config::EdgeConfig;
use promo_shared::domain::ids::UserId;
use promo_shared::payments::gateway::PAYMENT_EVENTS_QUEUE;
use promo_shared::payments::issuer::Issuer;
use promo_shared::ports::clock::ManualClock;
use promo_shared::ports::ids::IdGen;
use promo_shared::ports::queue::Queue;
use promo_shared::retry::RetryPolicy;
use promo_shared::testing::at;
use promo_shared::wallet;
use promoctl::embedded::{OsIds, QueueConfig, SqliteQueue};
use promoctl::runtime::{self, Platform};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_payment_event_is_dead_lettered_at_once_and_a_valid_one_is_issued() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-25T12:00:00Z")));
    let platform =
        Platform::open_with(dir.path(), EdgeConfig::from_lookup(|_| None).unwrap(), clock.clone(), Arc::new(OsIds))
            .unwrap();
    let platform = Arc::new(platform);
    campaigns::deploy(&*platform.store, &ManualClock::new(at("2026-11-01T00:00:00Z")), &support::example_campaign())
        .await
        .unwrap();
    let running = support::serve(platform.clone(), Duration::from_secs(60), 1).await;

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

/// Draws the same jitter every time, so a redelivery's delay is known.
struct FixedJitter(u64);

impl IdGen for FixedJitter {
    fn new_id(&self) -> String {
        unreachable!("the consumer only draws jitter")
    }
    fn random_12(&self) -> [u8; 12] {
        let mut b = [0; 12];
        b[..8].copy_from_slice(&self.0.to_le_bytes());
        b
    }
}

/// A queue, and an issuer over a store that throttles on demand (one retry of its own, so a
/// delivery fails after two throttled transactions), with the example campaign deployed.
async fn flaky_consumer(dir: &Path, max_attempts: u32) -> (Arc<SqliteQueue>, Arc<Flaky>, Issuer<Arc<Flaky>>) {
    let store = runtime::open_store(dir).unwrap();
    campaigns::deploy(&*store, &ManualClock::new(at("2026-11-01T00:00:00Z")), &support::example_campaign())
        .await
        .unwrap();
    let store: DynStore = store;
    let flaky = Flaky::over(&store);
    let clock = Arc::new(ManualClock::new(at("2026-11-25T12:00:00Z")));
    let retry = RetryPolicy { retries: 1, base: Duration::from_millis(1), cap: Duration::from_millis(1) };
    let issuer = Issuer::new(flaky.clone(), clock, Arc::new(OsIds)).with_retry(retry);
    let config = QueueConfig { visibility: Duration::from_secs(30), max_attempts };
    let queue = Arc::new(SqliteQueue::open(&dir.join("queue.db"), config).unwrap());
    let paid = json!({"type": "paid", "payment_id": "retry-pay-1", "order_id": "o-1", "user_id": "retry-user",
        "amount": 60000, "currency": "KRW", "items": [], "occurred_at": "2026-11-25T11:00:00Z"});
    queue.publish(PAYMENT_EVENTS_QUEUE, paid.to_string().as_bytes()).await.unwrap();
    (queue, flaky, issuer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_event_that_fails_retryably_comes_back_after_its_delay_and_is_then_issued() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, flaky, issuer) = flaky_consumer(dir.path(), 5).await;
    let user = UserId::parse("retry-user").unwrap();
    // Jitter 399 on the first attempt: 399 ms, just under that attempt's 400 ms ceiling.
    let jitter = FixedJitter(399);
    assert_eq!(runtime::redelivery_delay(1, 399), Duration::from_millis(399));

    flaky.throttle_transacts.store(2, std::sync::atomic::Ordering::SeqCst);
    let first = queue.receive(PAYMENT_EVENTS_QUEUE, 10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    runtime::settle_payment_event(&issuer, &*queue, &jitter, first[0].clone(), 0).await;
    let given_back = Instant::now();
    assert_eq!(flaky.transacts.load(std::sync::atomic::Ordering::SeqCst), 2, "the issuer retried once");
    assert!(wallet::list(&*flaky, &user).await.unwrap().is_empty());
    assert!(queue.dead_letters(PAYMENT_EVENTS_QUEUE).await.unwrap().is_empty(), "retryable: not dead-lettered");
    assert_eq!(queue.depth(PAYMENT_EVENTS_QUEUE).await.unwrap(), 1, "still queued");

    // Not delivered again before its delay ...
    let early = queue.receive(PAYMENT_EVENTS_QUEUE, 10, Duration::from_millis(100)).await.unwrap();
    assert!(early.is_empty() || given_back.elapsed() >= Duration::from_millis(399), "{} delivered early", early.len());
    // ... but after it, as the second attempt, and then issued and acknowledged.
    let second = queue.receive(PAYMENT_EVENTS_QUEUE, 10, Duration::from_secs(5)).await.unwrap();
    assert!(given_back.elapsed() >= Duration::from_millis(300), "came back after {:?}", given_back.elapsed());
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].body.as_slice(), second[0].attempt), (first[0].body.as_slice(), 2));
    runtime::settle_payment_event(&issuer, &*queue, &jitter, second[0].clone(), 0).await;
    assert_eq!(wallet::list(&*flaky, &user).await.unwrap().len(), 1);
    assert_eq!(queue.depth(PAYMENT_EVENTS_QUEUE).await.unwrap(), 0, "acknowledged");
    assert!(queue.dead_letters(PAYMENT_EVENTS_QUEUE).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_event_that_keeps_failing_retryably_is_dead_lettered_after_its_last_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, flaky, issuer) = flaky_consumer(dir.path(), 3).await;
    flaky.throttle_transacts.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    // No jitter: each redelivery is due at once.
    let jitter = FixedJitter(0);
    for attempt in 1..=3 {
        let got = queue.receive(PAYMENT_EVENTS_QUEUE, 10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.len(), 1, "attempt {attempt}");
        assert_eq!(got[0].attempt, attempt);
        runtime::settle_payment_event(&issuer, &*queue, &jitter, got[0].clone(), 0).await;
    }
    assert_eq!(queue.depth(PAYMENT_EVENTS_QUEUE).await.unwrap(), 0);
    let dead = queue.dead_letters(PAYMENT_EVENTS_QUEUE).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].attempts, 3);
    assert!(dead[0].reason.contains("failed 3 deliveries"), "{}", dead[0].reason);
    assert!(wallet::list(&*flaky, &UserId::parse("retry-user").unwrap()).await.unwrap().is_empty());
}
