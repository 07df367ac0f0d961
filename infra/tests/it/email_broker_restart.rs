//! Campaign email across a RabbitMQ restart: 20,000 recipients, the publisher and two
//! senders on real RabbitMQ, and the broker restarted (`rabbitmqctl stop_app && start_app`)
//! while jobs are being published and sent — the publisher is held at its sixth batch until
//! the broker is down, so the restart falls in the middle of both. The publisher, failing
//! while the broker is down, is run again (as a marketer triggers again) and resumes from
//! its checkpoints; the senders reconnect; a job whose ack was lost comes back and finds its
//! recipients settled. Nobody is mailed twice, nobody is left out, nothing is uncertain.
//!
//! It restarts the broker other tests use, so it has its own test binary (cargo runs test
//! binaries one after another) and only runs when `PROMO_TEST_RABBITMQ_RESTART=1`
//! (`infra/test.sh` sets it).

use crate::support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use promo_shared::ports::queue::{Delivery, Queue, QueueError};
use tokio::sync::Notify;

use promo_lambdas::rabbitmq::{RabbitConfig, RabbitQueue};
use promo_lambdas::ses::send_rate::RateWindow;
use promo_shared::domain::audience::Member;
use promo_shared::domain::email::EmailAddress;
use promo_shared::domain::ids::UserId;
use promo_shared::email::send as email_send;
use promo_shared::email::sender::{Sender, SenderConfig};
use promo_shared::email::unsubscribe::UnsubscribeKeys;
use promoctl::embedded::{OsIds, OutboxMailer, SqliteStore, SystemClock};
use promoctl::runtime::consume_email;
use tokio::sync::watch;

const N: usize = 20_000;

/// The publisher's queue: its sixth batch waits until the test has stopped the broker.
struct Held {
    inner: RabbitQueue,
    batches: AtomicUsize,
    held: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait]
impl Queue for Held {
    async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), QueueError> {
        self.inner.publish(queue, body).await
    }
    async fn publish_batch(&self, queue: &str, bodies: &[Vec<u8>]) -> Result<(), QueueError> {
        if self.batches.fetch_add(1, Ordering::SeqCst) == 5 {
            self.held.notify_one();
            self.release.notified().await;
        }
        self.inner.publish_batch(queue, bodies).await
    }
    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.inner.receive(queue, max, wait).await
    }
    async fn ack(&self, queue: &str, d: &Delivery) -> Result<(), QueueError> {
        self.inner.ack(queue, d).await
    }
    async fn nack(&self, queue: &str, d: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        self.inner.nack(queue, d, retry_in).await
    }
    async fn reject(&self, queue: &str, d: &Delivery, reason: &str) -> Result<(), QueueError> {
        self.inner.reject(queue, d, reason).await
    }
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rabbitmqctl {args:?}: {e}"));
    assert!(out.status.success(), "rabbitmqctl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn sent_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn a_broker_restart_mid_fan_out_mails_nobody_twice_and_nobody_is_left_out() {
    let url = std::env::var("PROMO_TEST_RABBITMQ_URL").expect("PROMO_TEST_RABBITMQ_URL is not set: run infra/test.sh");
    assert_eq!(
        std::env::var("PROMO_TEST_RABBITMQ_RESTART").as_deref(),
        Ok("1"),
        "set PROMO_TEST_RABBITMQ_RESTART=1 to let this test restart the broker (infra/test.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    let outbox_dir = dir.path().join("outbox");
    let mailer = Arc::new(OutboxMailer::open(&outbox_dir).unwrap());
    support::put_members(
        &*store,
        (0..N).map(|i| Member {
            user_id: UserId::parse(format!("u-{i:06}")).unwrap(),
            email: EmailAddress::parse(&format!("s{i}@example.com")).unwrap(),
            opted_in: true,
            attributes: [("tier".to_string(), "gold".to_string())].into(),
        }),
    )
    .await;
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let id = support::email_campaign(&*store, &format!("restart-{run}"), None).await;
    email_send::trigger(&*store, &*mailer, &SystemClock, &OsIds, &id, "test").await.unwrap();

    let name = format!("restart-{run}");
    let connect = || async {
        RabbitQueue::connect(&url, RabbitConfig { max_attempts: 5, prefetch: 8 })
            .await
            .unwrap()
            .with_idle_queue_expiry(Duration::from_secs(600))
    };
    // 4,000 messages a second: the send lasts about five seconds, the restart falls inside.
    let sender = Arc::new(Sender {
        store: store.clone(),
        mailer: mailer.clone(),
        rate: Arc::new(RateWindow::per_second(4000.0).unwrap()),
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsIds),
        keys: UnsubscribeKeys::new(&[b"a-test-unsubscribe-secret-of-32-bytes!!"]).unwrap(),
        config: SenderConfig {
            unsubscribe_url: "https://shop.example/v1/unsubscribe".into(),
            ..SenderConfig::default()
        },
    });
    let (stop, stopped) = watch::channel(false);
    let mut consumers = Vec::new();
    for k in 0..2 {
        let (q, sender, stopped, name) = (connect().await, sender.clone(), stopped.clone(), name.clone());
        consumers.push(tokio::spawn(async move { consume_email(&q, &name, &sender, stopped, k).await }));
    }
    // The publisher, run again after each failure (the broker is down for a while).
    let (held, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let publisher = {
        let q =
            Held { inner: connect().await, batches: AtomicUsize::new(0), held: held.clone(), release: release.clone() };
        let (store, id, name) = (store.clone(), id.clone(), name.clone());
        tokio::spawn(async move {
            let mut runs = 0;
            loop {
                runs += 1;
                match email_send::publish(&*store, &q, &name, &SystemClock, "pub", &id).await {
                    Ok(_) => return runs,
                    Err(e) => {
                        eprintln!("publisher run {runs} failed: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        })
    };
    held.notified().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sent_count(&outbox_dir) < 1000 {
        assert!(tokio::time::Instant::now() < deadline, "sending did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = email_send::progress(&*store, &id, chrono::Utc::now()).await.unwrap();
    tokio::task::spawn_blocking(|| rabbitmqctl(&["stop_app"])).await.unwrap();
    // The held batch goes to a broker that is down; the publisher fails and runs again.
    release.notify_one();
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::spawn_blocking(|| {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    })
    .await
    .unwrap();
    let runs = publisher.await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let p = loop {
        let p = email_send::progress(&*store, &id, chrono::Utc::now()).await.unwrap();
        assert_eq!(p.audience, p.sent + p.skipped + p.failed + p.uncertain + p.pending, "{p:?}");
        if p.finished {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "not finished 3 minutes after the restart: {p:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.send(true).unwrap();
    for c in consumers {
        c.await.unwrap();
    }
    eprintln!(
        "restarted with {} of {N} sent and {} enqueued; publisher ran {runs} time(s)",
        before.sent, before.enqueued
    );
    assert!(before.sent < N as u64 && before.enqueued < N as u64, "the restart came too late: {before:?}");
    assert!(runs > 1, "the publisher never met the restart");
    assert_eq!((p.audience, p.sent, p.failed, p.uncertain), (N as u64, N as u64, 0, 0), "{p:?}");
    let mail = support::outbox_by_address(&outbox_dir);
    assert_eq!(mail.len(), N, "everybody mailed");
    assert!(mail.values().all(|&n| n == 1), "nobody twice");
}
