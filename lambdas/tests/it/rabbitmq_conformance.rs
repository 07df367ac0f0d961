//! The queue conformance suite against a real RabbitMQ (`infra/test.sh` starts one and sets
//! `PROMO_TEST_RABBITMQ_URL`), plus RabbitMQ-specific checks of the dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use promo_conformance::queue::{MAX_ATTEMPTS, ns};
use promo_lambdas::rabbitmq::RabbitConfig;
use promo_lambdas::rabbitmq::RabbitQueue;
use promo_shared::ports::queue::Queue;

fn url() -> String {
    std::env::var("PROMO_TEST_RABBITMQ_URL").expect(
        "PROMO_TEST_RABBITMQ_URL is not set: start RabbitMQ with infra/services/rabbitmq.sh start \
         (or run infra/test.sh) and export PROMO_TEST_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/%2f",
    )
}

/// A new connection per call; the suite's queues expire 10 minutes after their last use,
/// so test runs leave nothing behind on the broker.
async fn connect() -> RabbitQueue {
    let config = RabbitConfig { max_attempts: MAX_ATTEMPTS, prefetch: 20 };
    RabbitQueue::connect(&url(), config)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to RabbitMQ at PROMO_TEST_RABBITMQ_URL: {e}"))
        .with_idle_queue_expiry(Duration::from_secs(600))
}

async fn queue() -> Arc<dyn Queue> {
    Arc::new(connect().await)
}

promo_conformance::queue_conformance_tests!(queue, #[ignore = "needs services: run infra/test.sh"]);
promo_conformance::queue_order_tests!(queue, #[ignore = "needs services: run infra/test.sh"]);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn rejected_and_exhausted_messages_land_in_the_dead_letter_queue_and_replay() {
    let q = connect().await;
    let name = ns("dlq");
    q.publish(&name, b"bad").await.unwrap();
    q.publish(&name, b"flaky").await.unwrap();
    let bad = q.receive(&name, 1, Duration::from_secs(10)).await.unwrap().remove(0);
    q.reject(&name, &bad, "malformed").await.unwrap();
    for attempt in 1..=MAX_ATTEMPTS {
        let d = q.receive(&name, 1, Duration::from_secs(10)).await.unwrap().remove(0);
        assert_eq!((d.body.as_slice(), d.attempt), (b"flaky".as_slice(), attempt));
        q.nack(&name, &d, Duration::ZERO).await.unwrap();
    }
    // Dead-lettering is asynchronous in the broker: poll briefly.
    let mut dead = 0;
    for _ in 0..50 {
        dead = q.dead_letter_depth(&name).await.unwrap();
        if dead == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead, 2, "a rejected and an exhausted message");
    assert_eq!(q.depth(&name).await.unwrap(), 0);

    assert_eq!(q.replay_dead_letters(&name).await.unwrap(), 2);
    assert_eq!(q.dead_letter_depth(&name).await.unwrap(), 0);
    let mut bodies = Vec::new();
    while bodies.len() < 2 {
        for d in q.receive(&name, 10, Duration::from_secs(10)).await.unwrap() {
            assert_eq!(d.attempt, 1, "a replayed dead letter starts over");
            q.ack(&name, &d).await.unwrap();
            bodies.push(d.body);
        }
    }
    bodies.sort();
    assert_eq!(bodies, vec![b"bad".to_vec(), b"flaky".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn a_stale_receipt_is_a_no_op() {
    let a = connect().await;
    let name = ns("stale");
    a.publish(&name, b"m").await.unwrap();
    let d = a.receive(&name, 1, Duration::from_secs(10)).await.unwrap().remove(0);
    a.close().await; // the broker puts the message back
    let b = connect().await;
    b.ack(&name, &d).await.unwrap(); // not b's delivery: nothing happens
    let again = b.receive(&name, 1, Duration::from_secs(10)).await.unwrap().remove(0);
    assert_eq!(again.body, b"m");
    assert!(again.attempt >= 2);
    b.ack(&name, &again).await.unwrap();
}
