//! Persistent messages on durable queues survive a broker restart, and a `RabbitQueue`
//! handle reconnects by itself afterwards.
//!
//! The restart (`rabbitmqctl stop_app && rabbitmqctl start_app`) cuts every connection to
//! the broker, so this test lives in a test binary of its own (cargo runs test binaries one
//! after another) and only runs when `PROMO_TEST_RABBITMQ_RESTART=1` (`infra/test.sh` sets
//! it); otherwise it prints a notice and passes.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use promo_conformance::queue::ns;
use promo_lambdas::rabbitmq::RabbitConfig;
use promo_lambdas::rabbitmq::RabbitQueue;
use promo_shared::ports::queue::Queue;

fn rabbitmqctl(args: &[&str]) {
    let path = format!("{}:/usr/sbin:/usr/lib/rabbitmq/bin", std::env::var("PATH").unwrap_or_default());
    let out = Command::new("rabbitmqctl")
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rabbitmqctl {args:?}: {e}"));
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn persistent_messages_survive_a_broker_restart() {
    let url = std::env::var("PROMO_TEST_RABBITMQ_URL")
        .expect("PROMO_TEST_RABBITMQ_URL is not set: run infra/test.sh or infra/services/rabbitmq.sh start");
    if std::env::var("PROMO_TEST_RABBITMQ_RESTART").as_deref() != Ok("1") {
        eprintln!("skipped: set PROMO_TEST_RABBITMQ_RESTART=1 to let this test restart the broker");
        return;
    }
    let q = RabbitQueue::connect(&url, RabbitConfig { max_attempts: 3, prefetch: 50 })
        .await
        .unwrap()
        .with_idle_queue_expiry(Duration::from_secs(600));
    let name = ns("durable");
    let bodies: Vec<Vec<u8>> = (0..200).map(|i| format!("job-{i}").into_bytes()).collect();
    q.publish_batch(&name, &bodies).await.unwrap();
    // One in flight (unacked) and one waiting in a retry queue when the broker goes down.
    let first = q.receive(&name, 1, Duration::from_secs(10)).await.unwrap().remove(0);
    let second = q.receive(&name, 1, Duration::from_secs(10)).await.unwrap().remove(0);
    q.nack(&name, &second, Duration::from_secs(2)).await.unwrap();
    let _in_flight = first;

    tokio::task::spawn_blocking(|| {
        rabbitmqctl(&["stop_app"]);
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    })
    .await
    .unwrap();

    // The same handle reconnects; transient errors while the broker settles are retried.
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < bodies.len() && Instant::now() < deadline {
        match q.receive(&name, 50, Duration::from_secs(2)).await {
            Ok(batch) => {
                for d in batch {
                    q.ack(&name, &d).await.unwrap();
                    got.insert(d.body);
                }
            }
            Err(e) => {
                eprintln!("retrying after: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let want: BTreeSet<Vec<u8>> = bodies.into_iter().collect();
    let lost: Vec<_> = want.difference(&got).map(|b| String::from_utf8_lossy(b).into_owned()).collect();
    assert!(lost.is_empty(), "lost across the restart: {} messages, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
}
