//! The queue conformance suite against SQS through the real SDK, on the stand-in moto
//! (`infra/test.sh` starts it and sets `PROMO_TEST_DYNAMODB_ENDPOINT`: moto serves SQS on
//! the same endpoint as DynamoDB), plus SQS-specific checks: dead letters (read with
//! [`DeadLetters`]) and their replay, a batch larger than SQS's batches, `defer`, and queues
//! mapped from a stack instead of created.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use promo_conformance::queue::{MAX_ATTEMPTS, MAX_VISIBILITY, ns};
use promo_lambdas::sqs::{DeadLetters, SqsConfig, SqsQueue};
use promo_shared::ports::queue::{Queue, QueueError};

/// Fails (never skips) when the stand-in is not configured.
fn endpoint() -> String {
    std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT").expect(
        "PROMO_TEST_DYNAMODB_ENDPOINT is not set: start moto with `infra/test.sh --services-only` \
         and `source ~/.cache/promo/test-state/env` (moto serves SQS on the DynamoDB endpoint)",
    )
}

fn config(create_missing: bool) -> SqsConfig {
    SqsConfig { max_attempts: MAX_ATTEMPTS, visibility: MAX_VISIBILITY, create_missing }
}

/// A new handle (its own SDK client) per call: each `#[tokio::test]` has its own runtime,
/// and a client's connection pool belongs to the runtime that opened it.
async fn connect() -> SqsQueue {
    SqsQueue::from_env(Some(&endpoint()), config(true)).await
}

async fn queue() -> Arc<dyn Queue> {
    Arc::new(connect().await)
}

/// The race's queue: a lease of a minute, not the suite's two seconds. The stand-in serves
/// DynamoDB and SQS behind one lock, so while another test of this binary races DynamoDB, an
/// ack can wait longer than two seconds, and SQS then rightly delivers the message again.
async fn queue_for_the_race() -> Arc<dyn Queue> {
    let config = SqsConfig { visibility: Duration::from_secs(60), ..config(true) };
    Arc::new(SqsQueue::from_env(Some(&endpoint()), config).await)
}

promo_conformance::queue_conformance_tests!(
    queue,
    race = queue_for_the_race,
    #[ignore = "needs services: run infra/test.sh"]
);

/// Long enough for anything that should arrive.
const ARRIVES: Duration = Duration::from_secs(20);

async fn dead_letters(q: &SqsQueue, name: &str) -> DeadLetters {
    let (url, dlq_url) = q.queue_urls(name).await.unwrap();
    DeadLetters::from_env(dlq_url, url, Some(&endpoint())).await
}

/// Deletes a test's queue and its dead-letter queue (moto keeps them otherwise).
async fn delete_queues(q: &SqsQueue, name: &str) {
    let (url, dlq_url) = q.queue_urls(name).await.unwrap();
    for url in [url, dlq_url] {
        q.client().delete_queue().queue_url(&url).send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn rejected_and_exhausted_messages_land_in_the_dead_letter_queue() {
    let q = connect().await;
    let name = ns("sqs-dlq");
    q.publish(&name, b"bad").await.unwrap();
    q.publish(&name, b"flaky").await.unwrap();
    // A standard queue does not keep order: take the messages as they come.
    let (mut rejected, mut flaky_attempts) = (false, 0);
    while !rejected || flaky_attempts < MAX_ATTEMPTS {
        let got = q.receive(&name, 10, ARRIVES).await.unwrap();
        assert!(!got.is_empty(), "rejected: {rejected}, flaky attempts: {flaky_attempts}");
        for d in got {
            match d.body.as_slice() {
                b"bad" => {
                    assert!(!rejected, "a rejected message came back");
                    q.reject(&name, &d, "malformed").await.unwrap();
                    rejected = true;
                }
                b"flaky" => {
                    flaky_attempts += 1;
                    assert_eq!(d.attempt, flaky_attempts);
                    q.nack(&name, &d, Duration::ZERO).await.unwrap();
                }
                other => panic!("unexpected body {other:?}"),
            }
        }
    }
    let got = q.receive(&name, 10, MAX_VISIBILITY + Duration::from_secs(2)).await.unwrap();
    assert!(got.is_empty(), "dead letters must not come back: {got:?}");

    let mut dead: Vec<(String, Option<String>)> =
        dead_letters(&q, &name).await.list(10).await.unwrap().into_iter().map(|d| (d.body, d.reason)).collect();
    dead.sort();
    assert_eq!(
        dead,
        vec![
            ("bad".to_string(), Some("malformed".to_string())),
            ("flaky".to_string(), Some(format!("failed {MAX_ATTEMPTS} deliveries"))),
        ]
    );
    delete_queues(&q, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn replayed_dead_letters_come_back_decoded_at_attempt_1() {
    let q = connect().await;
    let name = ns("sqs-replay");
    let binary: Vec<u8> = vec![0, 1, 2, 0xfe, 0xff];
    let bodies = BTreeSet::from([binary.clone(), b"{\"text\":true}".to_vec(), Vec::new()]);
    for b in &bodies {
        q.publish(&name, b).await.unwrap();
    }
    for _ in 0..bodies.len() {
        let d = q.receive(&name, 1, ARRIVES).await.unwrap().remove(0);
        q.reject(&name, &d, "to replay").await.unwrap();
    }
    assert_eq!(dead_letters(&q, &name).await.replay().await.unwrap(), bodies.len());
    let mut back = BTreeSet::new();
    while back.len() < bodies.len() {
        let got = q.receive(&name, 10, ARRIVES).await.unwrap();
        assert!(!got.is_empty(), "replayed so far: {back:?}");
        for d in got {
            assert_eq!(d.attempt, 1, "a replayed dead letter starts over");
            q.ack(&name, &d).await.unwrap();
            back.insert(d.body);
        }
    }
    assert_eq!(back, bodies, "bodies (base64 and empty ones too) survive a replay");
    delete_queues(&q, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn a_batch_of_120_arrives_complete() {
    let q = connect().await;
    let name = ns("sqs-batch");
    // JSON jobs, and a few binary and empty bodies among them.
    let bodies: Vec<Vec<u8>> = (0..120u32)
        .map(|i| match i % 40 {
            7 => vec![0xff, u8::try_from(i).unwrap()],
            8 if i == 8 => Vec::new(),
            _ => format!("{{\"job\":{i}}}").into_bytes(),
        })
        .collect();
    q.publish_batch(&name, &bodies).await.unwrap();
    let mut got = Vec::new();
    while got.len() < bodies.len() {
        let batch = q.receive(&name, 10, ARRIVES).await.unwrap();
        assert!(!batch.is_empty(), "missing messages: got {} of {}", got.len(), bodies.len());
        for d in batch {
            assert_eq!(d.attempt, 1);
            q.ack(&name, &d).await.unwrap();
            got.push(d.body);
        }
    }
    let (mut got, mut want) = (got, bodies);
    got.sort();
    want.sort();
    assert_eq!(got, want, "every message once");
    delete_queues(&q, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn a_deferred_message_comes_back_later_at_attempt_1() {
    let q = connect().await;
    let name = ns("sqs-defer");
    q.publish(&name, b"paused").await.unwrap();
    let d = q.receive(&name, 1, ARRIVES).await.unwrap().remove(0);
    q.nack(&name, &d, Duration::ZERO).await.unwrap();
    let d = q.receive(&name, 1, ARRIVES).await.unwrap().remove(0);
    assert_eq!((d.body.as_slice(), d.attempt), (b"paused".as_slice(), 2));

    let retry_in = Duration::from_secs(2);
    let t0 = Instant::now();
    q.defer(&name, &d, retry_in).await.unwrap();
    let early = q.receive(&name, 10, Duration::ZERO).await.unwrap();
    assert!(early.is_empty() || t0.elapsed() >= retry_in, "a deferred message came back before {retry_in:?}");
    let d = q.receive(&name, 1, ARRIVES).await.unwrap().remove(0);
    assert_eq!(d.body, b"paused");
    assert_eq!(d.attempt, 1, "a deferred message does not count as a failed attempt");
    q.ack(&name, &d).await.unwrap();
    delete_queues(&q, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn queues_come_from_the_stack_unless_created() {
    let creator = connect().await;
    let name = ns("sqs-mapped");
    let (url, dlq_url) = creator.queue_urls(&name).await.unwrap();

    let stack = SqsQueue::from_env(Some(&endpoint()), config(false)).await;
    match stack.publish(&name, b"x").await {
        Err(QueueError::Invalid(message)) => assert!(message.contains(&name), "{message}"),
        other => panic!("an unmapped queue must be invalid, got {other:?}"),
    }
    let stack = stack.with_queue("email-jobs", url, dlq_url);
    stack.publish("email-jobs", b"via the stack").await.unwrap();
    let d = creator.receive(&name, 1, ARRIVES).await.unwrap().remove(0);
    assert_eq!(d.body, b"via the stack");
    stack.ack("email-jobs", &d).await.unwrap();

    delete_queues(&creator, &name).await;
    match stack.publish("email-jobs", b"gone").await {
        Err(QueueError::Invalid(_)) => {}
        other => panic!("a deleted queue must be invalid, got {other:?}"),
    }
}
