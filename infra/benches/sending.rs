//! Campaign email, sending side, on real components: the audience in the embedded store,
//! jobs through real RabbitMQ, four senders (`email::sender::Sender`, what the sender
//! Lambda runs) sending through the real AWS SDK to the SES v2 stand-in.
//!
//! 1. **Rate accuracy**: the account's rate set to `RATE`/s (a `RateWindow` shared by the
//!    four senders, as one sender instance's share would be): every bulk call's start and
//!    size recorded; reported are the largest count in any 1-second window (sliding, from
//!    each call), the rate sustained from the first call to the last, nothing lost, and the
//!    delay from the trigger to the first SES call.
//! 2. **End to end with no limit**: recipients/s, and where the time goes — the time spent
//!    inside SES calls and inside store operations (summed over the concurrent senders), and
//!    the store operations per recipient.
//!
//! 3. **Sender memory** (`-- memory`): the senders' peak resident memory over a send of
//!    100,000 and of 1,000,000 recipients to a provider that accepts at once.
//!
//! ```text
//! infra/test.sh --services-only && source ~/.cache/promo/test-state/env
//! cargo bench -p promoctl --bench sending [-- RATE RATE_RECIPIENTS E2E_RECIPIENTS]   # 200 4000 20000
//! cargo bench -p promoctl --bench sending -- memory
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a failure is a failed run
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)] // reporting rates

#[path = "support/memory.rs"]
mod memory;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use promo_lambdas::rabbitmq::{RabbitConfig, RabbitQueue};
use promo_lambdas::ses::SesMailer;
use promo_lambdas::ses::send_rate::RateWindow;
use promo_shared::campaigns;
use promo_shared::domain::audience::Member;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::email::EmailAddress;
use promo_shared::domain::ids::{CampaignId, UserId};
use promo_shared::email::items::audience as audience_item;
use promo_shared::email::send as email_send;
use promo_shared::email::sender::{Sender, SenderConfig};
use promo_shared::email::unsubscribe::UnsubscribeKeys;
use promo_shared::ports::mail::{BulkEntry, BulkMailer, MailError, SendRate, Template, Unlimited};
use promo_shared::ports::store::{Cond, Item, Key, Page, Query, Store, StoreError, TxOp, Update};
use promoctl::embedded::{OsIds, SqliteStore, SystemClock};
use promoctl::runtime::consume_email;
use tokio::sync::watch;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .filter(|a| !a.starts_with("--") && a != "memory")
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: infra/test.sh --services-only, then source its env"))
}

/// A new RabbitMQ connection (each sender has its own, as each Lambda instance would).
async fn connect() -> RabbitQueue {
    RabbitQueue::connect(&env("PROMO_TEST_RABBITMQ_URL"), RabbitConfig { max_attempts: 5, prefetch: 16 })
        .await
        .unwrap()
        .with_idle_queue_expiry(Duration::from_secs(120))
}

/// Records each bulk call: when it started (since `t0`), its size and how long SES took.
struct Recording {
    inner: SesMailer,
    t0: Instant,
    calls: Mutex<Vec<(Duration, usize)>>,
    busy_ns: AtomicU64,
}

#[async_trait]
impl BulkMailer for Recording {
    async fn put_template(&self, t: &Template) -> Result<(), MailError> {
        self.inner.put_template(t).await
    }
    async fn send_bulk(
        &self,
        from: &str,
        template: &str,
        entries: &[BulkEntry],
        tags: &[(String, String)],
    ) -> Result<Vec<Result<String, MailError>>, MailError> {
        let start = Instant::now();
        self.calls.lock().unwrap().push((start - self.t0, entries.len()));
        let r = self.inner.send_bulk(from, template, entries, tags).await;
        self.busy_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
}

/// Times every store operation (summed over concurrent callers) and counts them.
struct Timed {
    inner: Arc<SqliteStore>,
    ops: AtomicU64,
    busy_ns: AtomicU64,
}

impl Timed {
    async fn time<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let r = f.await;
        self.ops.fetch_add(1, Ordering::Relaxed);
        self.busy_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
}

#[async_trait]
impl Store for Timed {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.time(self.inner.get(key)).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.time(self.inner.put(item, cond)).await
    }
    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        self.time(self.inner.update(key, updates, cond)).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        self.time(self.inner.delete(key, cond)).await
    }
    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        self.time(self.inner.transact(ops, token)).await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.time(self.inner.query(q)).await
    }
}

struct Run {
    took: Duration,
    sent: u64,
    first_call: Duration,
    calls: Vec<(Duration, usize)>,
    ses_busy: Duration,
    store_busy: Duration,
    store_ops: u64,
}

/// `n` opted-in members and a campaign emailing them all, at any hour; the store's temp dir
/// lives as long as the returned guard.
async fn setup(n: u64, label: &str) -> (tempfile::TempDir, Arc<SqliteStore>, CampaignId, String) {
    let tag =
        format!("{label}{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    let mut ops = Vec::new();
    for i in 0..n {
        let m = Member {
            user_id: UserId::parse(format!("u-{i:07}")).unwrap(),
            email: EmailAddress::parse(&format!("s{i}@{tag}.example.com")).unwrap(),
            opted_in: true,
            attributes: [("tier".to_string(), "gold".to_string())].into(),
        };
        ops.push(TxOp::Put { item: audience_item::to_item(&m).unwrap(), cond: None });
        if ops.len() == 100 {
            sqlite.transact(std::mem::take(&mut ops), None).await.unwrap();
        }
    }
    if !ops.is_empty() {
        sqlite.transact(ops, None).await.unwrap();
    }
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/black-friday.toml");
    let mut spec = promoctl::campaign_file::load(&example, chrono::Utc::now()).unwrap().spec().clone();
    spec.id = CampaignId::parse(format!("bench-{tag}")).unwrap();
    spec.email.as_mut().unwrap().send_window = None;
    spec.starts_at = chrono::Utc::now() - chrono::Duration::days(1);
    spec.ends_at = chrono::Utc::now() + chrono::Duration::days(7);
    let campaign = Campaign::new(spec).unwrap();
    campaigns::deploy(&*sqlite, &SystemClock, &campaign).await.unwrap();
    let id = campaign.id.clone();
    (dir, sqlite, id, tag)
}

async fn run(n: u64, rate: Arc<dyn SendRate>, label: &str) -> Run {
    let (_dir, sqlite, id, tag) = setup(n, label).await;
    let store = Arc::new(Timed { inner: sqlite.clone(), ops: AtomicU64::new(0), busy_ns: AtomicU64::new(0) });

    let queue_name = format!("bench-send-{tag}");
    let t0 = Instant::now();
    let mailer = Arc::new(Recording {
        inner: SesMailer::from_env(Some(&env("PROMO_TEST_SES_ENDPOINT"))).await,
        t0,
        calls: Mutex::new(Vec::new()),
        busy_ns: AtomicU64::new(0),
    });
    let sender = Arc::new(Sender {
        store: store.clone(),
        mailer: mailer.clone(),
        rate,
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsIds),
        keys: UnsubscribeKeys::new(&[b"a-bench-unsubscribe-secret-of-32-bytes!!"]).unwrap(),
        config: SenderConfig {
            unsubscribe_url: "https://shop.example/v1/unsubscribe".into(),
            ..SenderConfig::default()
        },
    });
    let (stop, stopped) = watch::channel(false);
    let mut consumers = Vec::new();
    for k in 0..4 {
        let (q, sender, stopped, name) = (connect().await, sender.clone(), stopped.clone(), queue_name.clone());
        consumers.push(tokio::spawn(async move { consume_email(&q, &name, &sender, stopped, k).await }));
    }
    let publisher = connect().await;
    // The trigger: from here the clock of "first SES call" runs.
    let t0 = Instant::now();
    email_send::trigger(&*store, &*mailer, &SystemClock, &OsIds, &id, "bench").await.unwrap();
    email_send::publish(&*store, &publisher, &queue_name, &SystemClock, "bench", &id).await.unwrap();
    let p = loop {
        let p = email_send::progress(&*sqlite, &id, chrono::Utc::now()).await.unwrap();
        if p.finished {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = t0.elapsed();
    stop.send(true).unwrap();
    for c in consumers {
        c.await.unwrap();
    }
    assert_eq!((p.sent, p.failed, p.uncertain), (n, 0, 0), "nothing lost: {p:?}");
    let mut calls = mailer.calls.lock().unwrap().clone();
    calls.sort();
    let base = t0 - mailer.t0;
    let calls: Vec<(Duration, usize)> = calls.into_iter().map(|(t, k)| (t.saturating_sub(base), k)).collect();
    Run {
        took,
        sent: p.sent,
        first_call: calls.first().map(|c| c.0).unwrap_or_default(),
        calls,
        ses_busy: Duration::from_nanos(mailer.busy_ns.load(Ordering::Relaxed)),
        store_busy: Duration::from_nanos(store.busy_ns.load(Ordering::Relaxed)),
        store_ops: store.ops.load(Ordering::Relaxed),
    }
}

/// A provider that accepts everything at once (the sender's own memory, without a stand-in
/// holding a million messages).
struct Accepting;

#[async_trait]
impl BulkMailer for Accepting {
    async fn put_template(&self, _t: &Template) -> Result<(), MailError> {
        Ok(())
    }
    async fn send_bulk(
        &self,
        _from: &str,
        _template: &str,
        entries: &[BulkEntry],
        _tags: &[(String, String)],
    ) -> Result<Vec<Result<String, MailError>>, MailError> {
        Ok((0..entries.len()).map(|i| Ok(format!("m-{i}"))).collect())
    }
}

/// The senders' peak resident memory over a whole send of `n` recipients, the jobs all
/// enqueued before the senders start (so nothing else runs meanwhile).
async fn sender_memory(n: u64) -> (u64, u64, Duration) {
    let (_dir, store, id, tag) = setup(n, "mem").await;
    let queue_name = format!("bench-mem-{tag}");
    email_send::trigger(&*store, &Accepting, &SystemClock, &OsIds, &id, "bench").await.unwrap();
    email_send::publish(&*store, &connect().await, &queue_name, &SystemClock, "bench", &id).await.unwrap();
    let sender = Arc::new(Sender {
        store: store.clone(),
        mailer: Arc::new(Accepting),
        rate: Arc::new(Unlimited),
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsIds),
        keys: UnsubscribeKeys::new(&[b"a-bench-unsubscribe-secret-of-32-bytes!!"]).unwrap(),
        config: SenderConfig {
            unsubscribe_url: "https://shop.example/v1/unsubscribe".into(),
            ..SenderConfig::default()
        },
    });
    let before = memory::rss_kib();
    let sampler = memory::Sampler::start();
    let t = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let mut consumers = Vec::new();
    for k in 0..4 {
        let (q, sender, stopped, name) = (connect().await, sender.clone(), stopped.clone(), queue_name.clone());
        consumers.push(tokio::spawn(async move { consume_email(&q, &name, &sender, stopped, k).await }));
    }
    loop {
        // Cheap to read: the feedback item's `sent`, added by the senders per job.
        let fb = store.get(&promo_shared::email::items::send::feedback_key(&id)).await.unwrap();
        let sent = fb.map(|it| promo_shared::email::items::send::read_feedback(&it).0).unwrap_or(0);
        if sent >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = t.elapsed();
    stop.send(true).unwrap();
    for c in consumers {
        c.await.unwrap();
    }
    (before, sampler.stop(), took)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "memory") {
        println!("sender memory, 4 senders, a provider that accepts at once, jobs enqueued beforehand:");
        for n in [100_000, 1_000_000] {
            let (before, peak, took) = sender_memory(n).await;
            println!(
                "  {n:>8} recipients: {:.1} s; RSS {before} → peak {peak} KiB (+{} KiB)",
                took.as_secs_f64(),
                peak.saturating_sub(before)
            );
        }
        return;
    }
    let limit = arg(1, 200);
    let rate_n = arg(2, 4000);
    let e2e_n = arg(3, 20_000);

    let r = run(rate_n, Arc::new(RateWindow::per_second(limit as f64).unwrap()), "rate").await;
    let mut worst = 0;
    for (i, (t, _)) in r.calls.iter().enumerate() {
        let window: usize =
            r.calls[i..].iter().take_while(|(u, _)| *u < *t + Duration::from_secs(1)).map(|c| c.1).sum();
        worst = worst.max(window);
    }
    let span = r.calls.last().unwrap().0 - r.calls.first().unwrap().0;
    // The last call's recipients go out at its start: the span covers all but its size.
    let sustained = (r.sent - r.calls.last().unwrap().1 as u64) as f64 / span.as_secs_f64();
    println!("rate limit {limit}/s, {rate_n} recipients, 4 senders sharing one rate window:");
    println!(
        "  largest count in any 1-second window: {worst} (limit {limit}); sustained {sustained:.1}/s ({:.1} % of the limit)",
        sustained * 100.0 / limit as f64
    );
    println!(
        "  sent {} of {rate_n}, none failed or uncertain; first SES call {:.3} s after the trigger; finished in {:.1} s",
        r.sent,
        r.first_call.as_secs_f64(),
        r.took.as_secs_f64()
    );

    let r = run(e2e_n, Arc::new(Unlimited), "e2e").await;
    let secs = r.took.as_secs_f64();
    println!("no limit, {e2e_n} recipients, 4 senders:");
    println!(
        "  {:.0} recipients/s end to end ({:.1} s from the trigger to the last settle); {} bulk calls",
        r.sent as f64 / secs,
        secs,
        r.calls.len()
    );
    println!(
        "  time inside SES calls {:.1} s, inside store operations {:.1} s (summed over concurrent senders); {:.1} store operations per recipient",
        r.ses_busy.as_secs_f64(),
        r.store_busy.as_secs_f64(),
        r.store_ops as f64 / r.sent as f64
    );
}
