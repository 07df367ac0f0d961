//! Campaign email fan-out, publishing side: the publisher (`email::send::publish`: the
//! audience paged bucket by bucket from the store, jobs of up to 50 recipients, published to
//! RabbitMQ with publisher confirms awaited per window, a checkpoint per page) against the
//! obvious publisher (one message per recipient, each confirm awaited before the next),
//! same run, same broker, same store.
//!
//! The audience lives in the embedded SQLite store (a temp dir): `N` members, a tenth of them
//! `gold`. Two campaigns are published: one whose segment selects the gold tenth (`N/10`
//! recipients) and one selecting everybody (`N`), each with the process's peak resident
//! memory sampled every 10 ms while it publishes — flat memory from `N/10` to `N` is the
//! claim. The baseline publishes `BASELINE` recipients one by one (a million would take
//! minutes) and its rate is extrapolated.
//!
//! ```text
//! infra/test.sh --services-only && source ~/.cache/promo/test-state/env
//! cargo bench -p promoctl --bench fanout [-- N BASELINE]     # defaults 1000000 20000
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a failure is a failed run
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)] // reporting rates

#[path = "support/memory.rs"]
mod memory;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use promo_lambdas::rabbitmq::{RabbitConfig, RabbitQueue};
use promo_shared::campaigns;
use promo_shared::domain::audience::Member;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::email::{EmailAddress, OneOrMany};
use promo_shared::domain::ids::{CampaignId, UserId};
use promo_shared::email::items::audience::{self as audience_item, BUCKETS};
use promo_shared::email::send::{self as email_send, Job, Recipient};
use promo_shared::ports::queue::Queue;
use promo_shared::ports::store::{Store, TxOp, query_all};
use promoctl::embedded::{OsIds, OutboxMailer, SqliteStore, SystemClock};

use memory::{Sampler, rss_kib};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args().filter(|a| !a.starts_with("--")).nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

async fn import(store: &SqliteStore, n: u64) {
    let t = Instant::now();
    let batches: Vec<Vec<u64>> = (0..n).collect::<Vec<_>>().chunks(100).map(<[u64]>::to_vec).collect();
    futures::stream::iter(batches)
        .map(|batch| async move {
            let ops = batch
                .iter()
                .map(|i| {
                    let m = Member {
                        user_id: UserId::parse(format!("u-{i:08}")).unwrap(),
                        email: EmailAddress::parse(&format!("shopper{i}@example.com")).unwrap(),
                        opted_in: true,
                        attributes: [
                            ("tier".to_string(), if i % 10 == 0 { "gold" } else { "silver" }.to_string()),
                            ("first_name".to_string(), format!("N{i}")),
                        ]
                        .into(),
                    };
                    TxOp::Put { item: audience_item::to_item(&m).unwrap(), cond: None }
                })
                .collect();
            store.transact(ops, None).await.unwrap();
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    eprintln!("imported {n} members in {:.1} s", t.elapsed().as_secs_f64());
}

async fn deploy(store: &SqliteStore, id: &str, tiers: &[&str]) -> CampaignId {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/black-friday.toml");
    let mut spec = promoctl::campaign_file::load(&example, chrono::Utc::now()).unwrap().spec().clone();
    spec.id = CampaignId::parse(id).unwrap();
    let email = spec.email.as_mut().unwrap();
    email.send_window = None;
    email.segment = [("tier".to_string(), OneOrMany::Many(tiers.iter().map(|t| t.to_string()).collect()))].into();
    spec.starts_at = chrono::Utc::now() - chrono::Duration::days(1);
    spec.ends_at = chrono::Utc::now() + chrono::Duration::days(7);
    let campaign = Campaign::new(spec).unwrap();
    campaigns::deploy(store, &SystemClock, &campaign).await.unwrap();
    campaign.id.clone()
}

fn queue_name(what: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    format!("bench-fanout-{what}-{t}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = arg(1, 1_000_000);
    let baseline_n = arg(2, 20_000);
    let url = std::env::var("PROMO_TEST_RABBITMQ_URL")
        .expect("PROMO_TEST_RABBITMQ_URL is not set: infra/test.sh --services-only, then source its env file");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    let outbox = OutboxMailer::open(&dir.path().join("outbox")).unwrap();
    import(&store, n).await;
    let config = RabbitConfig { max_attempts: 5, prefetch: 100 };
    let queue = RabbitQueue::connect(&url, config).await.unwrap().with_idle_queue_expiry(Duration::from_secs(120));

    println!("fan-out publishing: {n} members in the store, RabbitMQ with publisher confirms");
    for (id, tiers) in [("bench-tenth", &["gold"][..]), ("bench-all", &["gold", "silver"][..])] {
        let id = deploy(&store, id, tiers).await;
        email_send::trigger(&*store, &outbox, &SystemClock, &OsIds, &id, "bench").await.unwrap();
        let name = queue_name(id.as_str());
        let sampler = Sampler::start();
        let before = rss_kib();
        let t = Instant::now();
        let published = email_send::publish(&*store, &queue, &name, &SystemClock, "bench", &id).await.unwrap();
        let took = t.elapsed();
        let peak = sampler.stop();
        let p = email_send::progress(&*store, &id, chrono::Utc::now()).await.unwrap();
        assert_eq!((p.enqueued, p.buckets_published), (published.recipients, BUCKETS));
        println!(
            "  publisher, {:>8} recipients: {:>6.2} s, {:>9.0} recipients/s, {:>6} jobs; RSS {} → peak {} KiB (+{} KiB)",
            published.recipients,
            took.as_secs_f64(),
            published.recipients as f64 / took.as_secs_f64(),
            published.jobs,
            before,
            peak,
            peak.saturating_sub(before),
        );
    }

    // The baseline: one message per recipient, each confirm awaited before the next.
    let id = CampaignId::parse("bench-all").unwrap();
    let name = queue_name("baseline");
    let mut members = Vec::new();
    'buckets: for b in 0..BUCKETS {
        for it in query_all(&*store, audience_item::bucket_query(b)).await.unwrap() {
            members.push(audience_item::from_item(&it).unwrap());
            if members.len() as u64 >= baseline_n {
                break 'buckets;
            }
        }
    }
    let t = Instant::now();
    for m in &members {
        let job = Job {
            campaign_id: id.clone(),
            bucket: audience_item::bucket(&m.user_id),
            recipients: vec![Recipient {
                user_id: m.user_id.clone(),
                email: m.email.clone(),
                data: Default::default(),
            }],
        };
        queue.publish(&name, &serde_json::to_vec(&job).unwrap()).await.unwrap();
    }
    let took = t.elapsed();
    let rate = members.len() as f64 / took.as_secs_f64();
    println!(
        "  baseline (one message per recipient, each confirm awaited), {} recipients: {:.2} s, {:.0} recipients/s → {:.0} s for {n}",
        members.len(),
        took.as_secs_f64(),
        rate,
        n as f64 / rate
    );
}
