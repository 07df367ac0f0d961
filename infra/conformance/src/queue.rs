//! The queue port's conformance suite: one set of tests, written once, that every queue
//! adapter must pass — the embedded SQLite queue and the RabbitMQ adapter alike.
//!
//! Use it from an adapter's test file:
//!
//! ```ignore
//! async fn queue() -> std::sync::Arc<dyn promo_shared::ports::queue::Queue> { ... }
//! promo_conformance::queue_conformance_tests!(queue);
//! ```
//!
//! The factory may be called several times per case; every call must return a new handle
//! (its own connection) to the SAME underlying queue system, so a case can "crash" a consumer
//! by dropping its handle and go on with another. The adapter under test must be configured
//! with [`MAX_ATTEMPTS`] attempts and, where it has leases, a visibility timeout of at most
//! [`MAX_VISIBILITY`]. Extra attributes (e.g. `#[ignore = "needs services"]`) follow the
//! factory and are put on every generated test. Every case uses its own queue names, so
//! cases may run concurrently against one broker. Timing assertions are one-sided and
//! generous: "not delivered within a short window", "delivered within a bounded wait".

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use promo_shared::ports::queue::Delivery;
use promo_shared::ports::queue::Queue;
use promo_shared::ports::queue::QueueError;

pub type DynQueue = Arc<dyn Queue>;

/// Deliveries the adapter under test allows before a nacked message is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 3;
/// The longest visibility timeout (lease) the adapter under test may have.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(2);
/// Publishers racing in the concurrency case.
pub const RACERS: usize = 300;
/// Consumers racing in the concurrency case.
pub const CONSUMERS: usize = 4;

/// Long enough for anything that should arrive; a case only waits this long when it fails.
const ARRIVES: Duration = Duration::from_secs(20);
/// A quiet window after which "nothing more is delivered" is asserted: longer than any
/// lease, so a message that was not really acked would have come back by then.
const QUIET: Duration = MAX_VISIBILITY.saturating_add(Duration::from_millis(1500));

/// A queue name unique to this case and run.
pub fn ns(case: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("conf-q{}{}-{case}", t % 1_000_000_000_000, N.fetch_add(1, Ordering::Relaxed))
}

/// Receives exactly one message (failing the case when none arrives within [`ARRIVES`]).
async fn one(q: &DynQueue, queue: &str) -> Delivery {
    let got = q.receive(queue, 1, ARRIVES).await.unwrap();
    assert_eq!(got.len(), 1, "expected one delivery on {queue} within {ARRIVES:?}, got {got:?}");
    got.into_iter().next().unwrap()
}

/// Asserts that nothing is delivered during [`QUIET`].
async fn nothing_more(q: &DynQueue, queue: &str, why: &str) {
    let got = q.receive(queue, 10, QUIET).await.unwrap();
    assert!(got.is_empty(), "{why}: unexpected deliveries {got:?}");
}

pub async fn publish_receive_ack<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    let name = ns("ack");
    q.publish(&name, b"hello").await.unwrap();
    let d = one(&q, &name).await;
    assert_eq!(d.body, b"hello");
    assert_eq!(d.attempt, 1, "first delivery is attempt 1");
    assert!(!d.receipt.is_empty());
    q.ack(&name, &d).await.unwrap();
    nothing_more(&q, &name, "an acked message is gone").await;
}

pub async fn bodies_round_trip_unchanged<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    let name = ns("bin");
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    // Larger than an AMQP frame (128 KiB by default) and than a SQLite page.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let bodies = vec![Vec::new(), all_bytes, br#"{"json":"\u00e9"}"#.to_vec(), big];
    for b in &bodies {
        q.publish(&name, b).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < bodies.len() {
        let batch = q.receive(&name, bodies.len(), ARRIVES).await.unwrap();
        assert!(!batch.is_empty(), "missing bodies: got {} of {}", got.len(), bodies.len());
        for d in batch {
            q.ack(&name, &d).await.unwrap();
            got.push(d.body);
        }
    }
    assert_eq!(got, bodies);
}

/// Publishes 50 messages in one batch and receives them all, at most 7 at a time, each at
/// attempt 1: the bodies in the order received.
async fn batch_round_trip(q: &DynQueue, name: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let bodies: Vec<Vec<u8>> = (0..50).map(|i| format!("m{i:03}").into_bytes()).collect();
    q.publish_batch(name, &bodies).await.unwrap();
    q.publish_batch(name, &[]).await.unwrap();
    let mut got = Vec::new();
    while got.len() < bodies.len() {
        let batch = q.receive(name, 7, ARRIVES).await.unwrap();
        assert!(!batch.is_empty(), "missing messages: got {} of {}", got.len(), bodies.len());
        assert!(batch.len() <= 7, "receive returned {} > max 7", batch.len());
        for d in batch {
            assert_eq!(d.attempt, 1);
            q.ack(name, &d).await.unwrap();
            got.push(d.body);
        }
    }
    assert!(q.receive(name, 0, Duration::from_millis(100)).await.unwrap().is_empty(), "max 0 returns nothing");
    nothing_more(q, name, "every message was acked").await;
    (bodies, got)
}

pub async fn batch_arrives_complete<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    let (bodies, mut got) = batch_round_trip(&q, &ns("batch")).await;
    got.sort();
    assert_eq!(got, bodies, "every message of a batch arrives once");
}

/// For the adapters that keep order (the embedded queue, RabbitMQ); SQS standard queues
/// promise none ([`queue_order_tests!`]).
pub async fn batch_keeps_order_for_one_consumer<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    let (bodies, got) = batch_round_trip(&q, &ns("order")).await;
    assert_eq!(got, bodies, "one consumer sees a batch in publish order");
}

pub async fn queues_are_independent<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    let (a, b) = (ns("indep-a"), ns("indep-b"));
    q.publish(&a, b"for a").await.unwrap();
    let got = q.receive(&b, 10, Duration::from_millis(500)).await.unwrap();
    assert!(got.is_empty(), "a message for {a} showed up on {b}: {got:?}");
    let d = one(&q, &a).await;
    assert_eq!(d.body, b"for a");
    q.ack(&a, &d).await.unwrap();
}

pub async fn empty_queue_name_is_invalid<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    assert!(matches!(q.publish("", b"x").await, Err(QueueError::Invalid(_))));
    assert!(matches!(q.publish_batch("", &[b"x".to_vec()]).await, Err(QueueError::Invalid(_))));
}

pub async fn receive_waits_for_a_message<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let consumer = factory().await;
    let publisher = factory().await;
    let name = ns("wait");

    // Nothing there: returns empty once `wait` has passed (and not long after).
    let wait = Duration::from_millis(800);
    let t0 = Instant::now();
    let got = consumer.receive(&name, 5, wait).await.unwrap();
    let took = t0.elapsed();
    assert!(got.is_empty(), "{got:?}");
    assert!(took >= wait / 2, "an empty receive returned after {took:?}, before its wait of {wait:?}");
    assert!(took < wait + Duration::from_secs(10), "an empty receive took {took:?} for a wait of {wait:?}");

    // A message published while a receive waits ends that wait early.
    let long_wait = Duration::from_secs(30);
    let name2 = name.clone();
    let waiting = tokio::spawn(async move {
        let t0 = Instant::now();
        let got = consumer.receive(&name2, 5, long_wait).await.unwrap();
        (got, t0.elapsed(), consumer)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    publisher.publish(&name, b"wake up").await.unwrap();
    let (got, took, consumer) = waiting.await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body, b"wake up");
    assert!(took < long_wait / 2, "receive returned after {took:?}: it did not wake up on a publish");
    consumer.ack(&name, &got[0]).await.unwrap();
}

pub async fn nack_redelivers_after_retry_in<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    let name = ns("nack");
    q.publish(&name, b"again").await.unwrap();
    let d1 = one(&q, &name).await;
    assert_eq!(d1.attempt, 1);
    let retry_in = Duration::from_secs(3);
    let t0 = Instant::now();
    q.nack(&name, &d1, retry_in).await.unwrap();
    let early = q.receive(&name, 10, Duration::from_millis(1000)).await.unwrap();
    assert!(
        early.is_empty() || t0.elapsed() >= retry_in,
        "a nacked message came back before its retry_in of {retry_in:?}: {early:?}"
    );
    let d2 = if early.is_empty() { one(&q, &name).await } else { early.into_iter().next().unwrap() };
    assert_eq!(d2.body, b"again");
    assert_eq!(d2.attempt, 2, "a nacked message comes back as the next attempt");
    q.ack(&name, &d2).await.unwrap();
    nothing_more(&q, &name, "the redelivered message was acked").await;
}

pub async fn nack_past_max_attempts_dead_letters<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    let name = ns("maxatt");
    q.publish(&name, b"poison").await.unwrap();
    for attempt in 1..=MAX_ATTEMPTS {
        let d = one(&q, &name).await;
        assert_eq!(d.body, b"poison");
        assert_eq!(d.attempt, attempt);
        q.nack(&name, &d, Duration::from_millis(50)).await.unwrap();
    }
    nothing_more(&q, &name, "a message nacked on its last attempt goes to the dead letters").await;
}

pub async fn defer_holds_a_message_without_using_up_its_attempts<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    let name = ns("defer");
    q.publish(&name, b"on hold").await.unwrap();
    let mut last = one(&q, &name).await;
    // Deferred more often than a nack may fail: never dead-lettered, the attempt never grows.
    for _ in 0..=MAX_ATTEMPTS {
        q.defer(&name, &last, Duration::from_millis(100)).await.unwrap();
        let d = one(&q, &name).await;
        assert_eq!(d.body, b"on hold");
        assert!(
            d.attempt <= last.attempt.max(1),
            "a defer counted as a failed attempt: {} after {}",
            d.attempt,
            last.attempt
        );
        last = d;
    }
    q.ack(&name, &last).await.unwrap();
    nothing_more(&q, &name, "the deferred message was acked").await;
}

pub async fn reject_is_not_redelivered<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let q = factory().await;
    let name = ns("reject");
    q.publish(&name, b"malformed").await.unwrap();
    q.publish(&name, b"fine").await.unwrap();
    let d = one(&q, &name).await;
    assert_eq!(d.body, b"malformed");
    q.reject(&name, &d, "cannot parse").await.unwrap();
    let d = one(&q, &name).await;
    assert_eq!(d.body, b"fine", "a reject touches only its own message");
    q.ack(&name, &d).await.unwrap();
    nothing_more(&q, &name, "a rejected message goes to the dead letters").await;
}

pub async fn crashed_consumer_message_is_redelivered<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let name = ns("crash");
    let a = factory().await;
    a.publish(&name, b"in flight").await.unwrap();
    let d = one(&a, &name).await;
    assert_eq!(d.attempt, 1);
    drop(a); // the consumer dies without acking: its connection closes

    let b = factory().await;
    let t0 = Instant::now();
    let got = b.receive(&name, 10, ARRIVES).await.unwrap();
    assert_eq!(got.len(), 1, "the crashed consumer's message did not come back within {:?}", t0.elapsed());
    assert_eq!(got[0].body, b"in flight");
    assert!(got[0].attempt >= 2, "a redelivery after a crash counts as a new attempt: {}", got[0].attempt);
    b.ack(&name, &got[0]).await.unwrap();
    nothing_more(&b, &name, "the redelivered message was acked").await;
}

pub async fn race_publishers_and_consumers_lose_nothing<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynQueue>,
{
    let name = ns("race");
    let publisher = factory().await;
    let mut consumers = Vec::with_capacity(CONSUMERS);
    for _ in 0..CONSUMERS {
        consumers.push(factory().await);
    }
    let seen: Arc<Mutex<HashMap<Vec<u8>, usize>>> = Arc::new(Mutex::new(HashMap::new()));
    let acked = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(90);

    let consuming = consumers.into_iter().map(|c| {
        let (name, seen, acked) = (name.clone(), seen.clone(), acked.clone());
        tokio::spawn(async move {
            while acked.load(Ordering::SeqCst) < RACERS && Instant::now() < deadline {
                let batch = c.receive(&name, 10, Duration::from_millis(300)).await.unwrap();
                // Ack at once (concurrently), well inside any lease.
                let acks = join_all(batch.iter().map(|d| c.ack(&name, d))).await;
                for (d, r) in batch.iter().zip(acks) {
                    r.unwrap();
                    *seen.lock().unwrap().entry(d.body.clone()).or_default() += 1;
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            }
            c
        })
    });
    let consuming: Vec<_> = consuming.collect();

    let publishing = (0..RACERS).map(|i| {
        let (p, name) = (publisher.clone(), name.clone());
        tokio::spawn(async move { p.publish(&name, format!("racer-{i}").as_bytes()).await })
    });
    for r in join_all(publishing).await {
        r.unwrap().unwrap();
    }
    let mut consumers = Vec::new();
    for c in join_all(consuming).await {
        consumers.push(c.unwrap());
    }

    let seen = seen.lock().unwrap().clone();
    let missing: Vec<usize> = (0..RACERS).filter(|i| !seen.contains_key(format!("racer-{i}").as_bytes())).collect();
    assert!(missing.is_empty(), "lost {} messages, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).map(|(b, n)| (String::from_utf8_lossy(b), *n)).collect();
    assert!(twice.is_empty(), "received (and acked) more than once: {twice:?}");
    assert_eq!(seen.len(), RACERS);
    nothing_more(&consumers[0], &name, "every message was acked exactly once").await;
}

/// The order case, for adapters that deliver a batch to one consumer in publish order:
/// `queue_order_tests!(factory)` beside `queue_conformance_tests!(factory)`.
#[macro_export]
macro_rules! queue_order_tests {
    ($factory:path $(, #[$attr:meta])* $(,)?) => {
        $crate::queue_conformance_tests!(@cases $factory, [$(#[$attr])*], batch_keeps_order_for_one_consumer);
    };
}

/// Generates one `#[tokio::test]` per case of the queue conformance suite.
///
/// `queue_conformance_tests!(factory)` or `queue_conformance_tests!(factory, #[ignore = "..."])`,
/// where `factory` is an `async fn() -> Arc<dyn Queue>` returning a new handle per call.
#[macro_export]
macro_rules! queue_conformance_tests {
    ($factory:path $(, #[$attr:meta])* $(,)?) => {
        $crate::queue_conformance_tests!($factory, race = $factory $(, #[$attr])*);
    };
    // `race`: the factory of the race case, for an adapter whose stand-in can be slower than
    // the suite's short lease under a loaded machine (the race acks at once and asserts that
    // nothing is delivered twice, which holds only while every ack lands inside the lease).
    ($factory:path, race = $race:path $(, #[$attr:meta])* $(,)?) => {
        $crate::queue_conformance_tests!(@cases $factory, [$(#[$attr])*],
            publish_receive_ack, bodies_round_trip_unchanged, batch_arrives_complete,
            queues_are_independent, empty_queue_name_is_invalid, receive_waits_for_a_message,
            nack_redelivers_after_retry_in, nack_past_max_attempts_dead_letters, reject_is_not_redelivered,
            defer_holds_a_message_without_using_up_its_attempts, crashed_consumer_message_is_redelivered);
        $crate::queue_conformance_tests!(@one $race, [$(#[$attr])*], race_publishers_and_consumers_lose_nothing);
    };
    (@cases $factory:path, $attrs:tt, $($case:ident),* $(,)?) => {
        $( $crate::queue_conformance_tests!(@one $factory, $attrs, $case); )*
    };
    (@one $factory:path, [$(#[$attr:meta])*], $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn $case() {
            $crate::queue::$case($factory).await;
        }
    };
}
