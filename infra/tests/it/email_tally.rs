//! A send's tallies (issue 29, item 2): the counts `campaign status` reads move in the same
//! transactions as the delivery records, so racing claims, settles, releases and requeues on
//! the real stores leave them equal to a count of the records; `--recount` rebuilds them; and
//! the time of a status both ways (ignored benches that print the figures).

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use promo_shared::domain::ids::{CampaignId, UserId};
use promo_shared::email::delivery::{self as email_delivery, Claim, LEASE};
use promo_shared::email::items::audience::bucket;
use promo_shared::email::items::delivery::{self as record, Status};
use promo_shared::email::items::send::{self as send_item, Send, SendState};
use promo_shared::email::items::tally as tally_item;
use promo_shared::email::send as email_send;
use promo_shared::email::tally as email_tally;
use promo_shared::ports::store::Store;
use promoctl::embedded::SqliteStore;

fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    (dir, store)
}

fn users(n: usize) -> Vec<UserId> {
    (0..n).map(|i| UserId::parse(format!("u-{i:07}")).unwrap()).collect()
}

/// Both counts at `now`, which must agree.
async fn agree(store: &dyn Store, id: &CampaignId, now: DateTime<Utc>) -> BTreeMap<&'static str, u64> {
    let records = email_delivery::counts(store, id, now).await.unwrap();
    let tallies = email_tally::counts(store, id, now).await.unwrap();
    assert_eq!(tallies, records, "the tallies disagree with the records at {now}");
    records
}

/// Workers racing over the same chunks, as redelivered jobs do: each claims a chunk, then
/// settles its claims (sent, skipped, failed, uncertain), gives some back, or leaves some
/// unsettled (a crash); then the marketer requeues the uncertain ones, twice at once, and
/// two workers race to claim them again. The tallies equal the records' count throughout.
async fn races(store: Arc<dyn Store>) {
    let id = CampaignId::parse("tally-race").unwrap();
    let all = users(400);
    let chunks: Vec<Vec<UserId>> = all.chunks(8).map(<[UserId]>::to_vec).collect();
    let now = Utc::now();
    let worker = |w: usize| {
        let store = store.clone();
        let id = id.clone();
        let chunks = chunks.clone();
        async move {
            let mut order: Vec<usize> = (0..chunks.len()).collect();
            order.rotate_left(w * 7 % chunks.len());
            for c in order {
                let run = format!("run-{w}-{c}");
                let at = now + chrono::Duration::milliseconds(c as i64);
                let claims = email_delivery::claim_many(&*store, &id, &chunks[c], &run, at).await.unwrap();
                let mine: Vec<&UserId> =
                    chunks[c].iter().zip(&claims).filter(|(_, cl)| **cl == Claim::Claimed).map(|(u, _)| u).collect();
                let n = |u: &UserId| u.as_str()[2..].parse::<usize>().unwrap();
                let settles: Vec<(UserId, Status, String)> = mine
                    .iter()
                    .filter(|u| !n(u).is_multiple_of(7) && !n(u).is_multiple_of(5))
                    .map(|u| {
                        let s = [Status::Sent, Status::Skipped, Status::Failed, Status::Uncertain][n(u) % 4];
                        ((*u).clone(), s, "why".to_string())
                    })
                    .collect();
                let back: Vec<UserId> = mine
                    .iter()
                    .filter(|u| n(u).is_multiple_of(5) && w.is_multiple_of(2))
                    .map(|u| (*u).clone())
                    .collect();
                let at = record::claimed_at(at);
                let settled = email_delivery::settle_many(&*store, &id, &run, &at, &settles, now).await.unwrap();
                assert!(settled.iter().all(|s| *s), "a run settles its own claims");
                email_delivery::release_many(&*store, &id, &run, &at, &back).await.unwrap();
                // A stranger's settle of the same chunk changes nothing.
                let stolen = email_delivery::settle_many(&*store, &id, "intruder", &at, &settles, now).await.unwrap();
                assert!(stolen.iter().all(|s| !*s));
            }
        }
    };
    futures::future::join_all((0..6).map(worker)).await;
    let counts = agree(&*store, &id, now).await;
    assert!(counts["in_flight"] > 0 && counts["sent"] > 0 && counts["uncertain"] > 0, "{counts:?}");
    let later = now + LEASE + chrono::Duration::seconds(1);
    let counts = agree(&*store, &id, later).await;
    assert_eq!(counts["in_flight"], 0, "{counts:?}");

    // The marketer requeues the uncertain ones (settled UNCERTAIN, or never settled), twice
    // at once.
    let uncertain = email_delivery::uncertain(&*store, &id, later).await.unwrap();
    assert!(!uncertain.is_empty());
    futures::stream::iter(uncertain.iter().chain(uncertain.iter()))
        .for_each_concurrent(32, |u| {
            let store = store.clone();
            let id = id.clone();
            async move {
                assert!(email_delivery::requeue(&*store, &id, u).await.unwrap());
            }
        })
        .await;
    let counts = agree(&*store, &id, later).await;
    assert_eq!((counts["requeued"], counts["uncertain"]), (uncertain.len() as u64, 0), "{counts:?}");

    // Two workers race to claim them again, and send them.
    let again: Vec<UserId> = uncertain.iter().map(|u| u.user.clone()).collect();
    let sent = futures::future::join_all((0..2).map(|w| {
        let store = store.clone();
        let id = id.clone();
        let again = again.clone();
        async move {
            let run = format!("again-{w}");
            let claims = email_delivery::claim_many(&*store, &id, &again, &run, later).await.unwrap();
            let mine: Vec<(UserId, Status, String)> = again
                .iter()
                .zip(claims)
                .filter(|(_, c)| *c == Claim::Claimed)
                .map(|(u, _)| (u.clone(), Status::Sent, "m".to_string()))
                .collect();
            email_delivery::settle_many(&*store, &id, &run, &record::claimed_at(later), &mine, later).await.unwrap();
            mine.len()
        }
    }))
    .await;
    assert_eq!(sent.iter().sum::<usize>(), again.len(), "each requeued recipient is claimed once");
    let counts = agree(&*store, &id, later).await;
    assert_eq!(counts["requeued"], 0, "{counts:?}");
    eprintln!("after the races: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_settles_and_requeues_keep_the_tallies_equal_to_the_records_on_sqlite() {
    let (_dir, store) = sqlite();
    races(store).await;
}

#[cfg(feature = "prod")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the DynamoDB stand-in (moto): infra/test.sh runs it with --include-ignored"]
async fn racing_claims_settles_and_requeues_keep_the_tallies_equal_to_the_records_on_dynamodb() {
    let (table, endpoint) = support::prod_table("promo-tally").await;
    let store = Arc::new(promo_lambdas::dynamodb::DynamoStore::from_env(table, Some(&endpoint)).await);
    races(store).await;
}

/// The `STATE` of a send triggered at `now`, tallied or not (one triggered before tallies).
async fn state(store: &dyn Store, id: &CampaignId, now: DateTime<Utc>, tallied: bool) {
    let send = Send {
        campaign_id: id.clone(),
        state: SendState::Sending,
        run: "trigger-run".into(),
        triggered_at: now,
        triggered_by: "ana".into(),
        version: 1,
        template: "t".into(),
        reason: None,
        updated_at: now,
    };
    let mut it = send_item::to_item(&send).unwrap();
    if tallied {
        it.insert(email_tally::TALLIED.into(), true.into());
    }
    store.put(it, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recount_rebuilds_lost_or_missing_tallies_from_the_records() {
    let (_dir, store) = sqlite();
    let id = CampaignId::parse("tally-recount").unwrap();
    let now = Utc::now();
    state(&*store, &id, now, false).await;
    let all = users(200);
    email_delivery::claim_many(&*store, &id, &all, "run-1", now).await.unwrap();
    let settles: Vec<_> = all[..150].iter().map(|u| (u.clone(), Status::Sent, "m".to_string())).collect();
    email_delivery::settle_many(&*store, &id, "run-1", &record::claimed_at(now), &settles, now).await.unwrap();
    let counts = agree(&*store, &id, now).await;
    assert_eq!((counts["sent"], counts["in_flight"]), (150, 50));

    // The tallies of two buckets are lost (a repair's case; or a send triggered before them).
    for b in [bucket(&all[0]), bucket(&all[1])] {
        store.delete(&tally_item::counts_key(&id, b), None).await.unwrap();
    }
    let open =
        promo_shared::ports::store::query_all(&*store, tally_item::bucket_query(&id, bucket(&all[199]))).await.unwrap();
    for it in open {
        store.delete(&promo_shared::ports::store::Key::of(&it).unwrap(), None).await.unwrap();
    }
    assert_ne!(email_tally::counts(&*store, &id, now).await.unwrap(), counts);
    // An untallied send is counted from its records.
    let p = email_send::progress(&*store, &id, now).await.unwrap();
    assert_eq!((p.sent, p.in_flight), (150, 50), "{p:?}");

    let recounted = email_tally::recount(&*store, &id, now).await.unwrap();
    assert_eq!(recounted, counts);
    agree(&*store, &id, now).await;
    agree(&*store, &id, now + LEASE).await;
    let it = store.get(&send_item::state_key(&id)).await.unwrap().unwrap();
    assert!(email_tally::kept(&it), "the recount marks the send tallied");
    let p = email_send::progress(&*store, &id, now).await.unwrap();
    assert_eq!((p.sent, p.in_flight), (150, 50), "{p:?}");
    // And they stay exact as the send goes on.
    let settles: Vec<_> = all[150..].iter().map(|u| (u.clone(), Status::Failed, "no".to_string())).collect();
    email_delivery::settle_many(&*store, &id, "run-1", &record::claimed_at(now), &settles, now).await.unwrap();
    let counts = agree(&*store, &id, now).await;
    assert_eq!((counts["sent"], counts["failed"], counts["in_flight"]), (150, 50, 0));
}

/// Seeds `n` settled deliveries of a tallied send (claimed and settled as senders do, one
/// transaction per bucket chunk), then times a status both ways: counting every record, and
/// reading the tallies.
async fn status_both_ways(store: Arc<dyn Store>, label: &str, n: usize) {
    let id = CampaignId::parse(format!("tally-bench-{n}")).unwrap();
    let now = Utc::now();
    state(&*store, &id, now, true).await;
    let t = Instant::now();
    let mut by_bucket: BTreeMap<u32, Vec<UserId>> = BTreeMap::new();
    for u in users(n) {
        by_bucket.entry(bucket(&u)).or_default().push(u);
    }
    let chunks: Vec<Vec<UserId>> = by_bucket.values().flat_map(|us| us.chunks(98).map(<[UserId]>::to_vec)).collect();
    futures::stream::iter(chunks.into_iter().enumerate())
        .for_each_concurrent(8, |(c, chunk)| {
            let store = store.clone();
            let id = id.clone();
            async move {
                let run = format!("run-{c}");
                email_delivery::claim_many(&*store, &id, &chunk, &run, now).await.unwrap();
                let status = [Status::Sent, Status::Sent, Status::Sent, Status::Skipped, Status::Failed][c % 5];
                let settles: Vec<_> = chunk.into_iter().map(|u| (u, status, "m".to_string())).collect();
                email_delivery::settle_many(&*store, &id, &run, &record::claimed_at(now), &settles, now).await.unwrap();
            }
        })
        .await;
    eprintln!("{label}: seeded {n} deliveries in {:.1?}", t.elapsed());
    let t = Instant::now();
    let scan = email_delivery::counts(&*store, &id, now).await.unwrap();
    let scan_t = t.elapsed();
    let t = Instant::now();
    let tallies = email_tally::counts(&*store, &id, now).await.unwrap();
    let tally_t = t.elapsed();
    let t = Instant::now();
    let p = email_send::progress(&*store, &id, now).await.unwrap();
    let progress_t = t.elapsed();
    assert_eq!(tallies, scan);
    assert_eq!(p.sent + p.skipped + p.failed, n as u64);
    eprintln!(
        "{label}: status of {n} recipients: records counted {scan_t:.3?}, tallies read {tally_t:.3?} \
         (whole progress {progress_t:.3?}), {}x",
        scan_t.as_micros() / tally_t.as_micros().max(1)
    );
}

fn bench_size(default: usize) -> usize {
    std::env::var("PROMO_BENCH_RECIPIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints the figures (BENCHMARKS.md); PROMO_BENCH_RECIPIENTS sets the size"]
async fn bench_status_of_a_large_send_on_sqlite() {
    let (_dir, store) = sqlite();
    status_both_ways(store, "sqlite", bench_size(1_000_000)).await;
}

#[cfg(feature = "prod")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark on the DynamoDB stand-in: prints the figures (BENCHMARKS.md)"]
async fn bench_status_of_a_large_send_on_dynamodb() {
    let (table, endpoint) = support::prod_table("promo-tally-bench").await;
    let store = Arc::new(promo_lambdas::dynamodb::DynamoStore::from_env(table, Some(&endpoint)).await);
    status_both_ways(store, "dynamodb stand-in", bench_size(20_000)).await;
}

/// `promoctl campaign status ID --recount`: rebuilds the tallies and prints the status.
#[test]
fn status_recount_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cli = |args: &[&str]| {
        let out = support::promoctl_in(&data).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let campaign = support::email_campaign_file(dir.path());
    cli(&["audience", "import", concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/audience.csv")]);
    cli(&["campaign", "deploy", campaign.to_str().unwrap()]);
    cli(&["campaign", "trigger", "black-friday", "--detach"]);
    let out = cli(&["campaign", "status", "black-friday", "--recount", "--json"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("recounted"), "{}", String::from_utf8_lossy(&out.stderr));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(p["audience"].as_u64().unwrap() > 0 && p["pending"] == p["audience"], "{p}");
}
