//! Coupon issuance on each store: the exactly-once issuer against a plain write, same run.
//!
//! For every store it measures, on fresh payments:
//! - **plain write**: one unconditional `put` of the same wallet coupon item the issuer
//!   writes — what a naive issuer does, with no protection against a second delivery;
//! - **exactly-once**: `Issuer::handle_payment` — the reward marker, wallet coupon and code
//!   reservation puts under their conditions plus the payment-state check, in one
//!   transaction with a client token;
//! - **the same writes without the machinery**: the marker, coupon and code items put in one
//!   transaction with no conditions and no client token;
//! - **the machinery added piece by piece** to that transaction: the puts' `NotExists`
//!   conditions, then the payment-state check, then the client token — the last step is the
//!   issuer's own transaction, so the ladder shows where the cost of exactly-once goes;
//! - **replay**: the same payment handled again (answered from the marker, nothing written);
//! - **a rule with a stock**: `Issuer::handle_payment` for a rule limited to a stock (one
//!   shard, never running out here): the same transaction plus the shard's decrement.
//!
//! Latency (p50/p99, one request at a time) is measured with all of them interleaved, one of
//! each per round, so machine noise lands on all of them alike; throughput with 32
//! concurrent tasks, one operation at a time. Stores: the embedded SQLite store (file in a
//! temp dir, synchronous commits) and, when `PROMO_TEST_DYNAMODB_ENDPOINT` is set, DynamoDB
//! through the real SDK against that stand-in (moto behind its global lock: a functional
//! stand-in, its absolute numbers say nothing about DynamoDB's).
//!
//! ```text
//! source infra/services/env.sh   # for the DynamoDB stand-in (infra/test.sh --services-only)
//! cargo bench -p promoctl --bench issuance [-- SEQUENTIAL CONCURRENT_TOTAL]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a failure is a failed run
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)] // reporting rates and ratios

use std::sync::Arc;
use std::time::{Duration, Instant};

use promo_lambdas::dynamodb::DynamoStore;

use promo_lambdas::dynamodb::create_table;
use promo_shared::campaigns;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::coupon::CouponCode;
use promo_shared::domain::coupon::CouponStatus;
use promo_shared::domain::coupon::IssueSource;
use promo_shared::domain::coupon::IssuedCoupon;
use promo_shared::domain::ids::UserId;
use promo_shared::payments::issuer;
use promo_shared::payments::issuer::Issuer;
use promo_shared::{payments, wallet};

use promo_shared::ports::clock::ManualClock;
use promo_shared::ports::ids::IdGen;
use promo_shared::ports::store::Cond;
use promo_shared::ports::store::Store;
use promo_shared::ports::store::TxOp;
use promo_shared::testing::at;
use promo_shared::testing::campaign_json;
use promo_shared::testing::paid_event;
#[path = "support/timing.rs"]
mod timing;
use timing::{CONCURRENCY, concurrent, percentiles};

use promoctl::embedded::{OsIds, SqliteStore};

const ROWS_PER_STORE: usize = 8;

/// How much of the exactly-once machinery a transaction of the issuer's three items carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Machinery {
    None,
    Conditions,
    Check,
    Token,
}

struct Row {
    store: &'static str,
    op: &'static str,
    /// (p50, p99)
    lat: (Duration, Duration),
    per_second: f64,
}

/// The wallet item the issuer writes for a reward, written plainly.
fn wallet_item(
    campaign: &Campaign,
    ids: &OsIds,
    payment: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> promo_shared::ports::store::Item {
    let code = CouponCode::from_random(&ids.random_12());
    let template = campaign.coupons[0].clone();
    let user = UserId::parse("u-1").unwrap();
    let coupon = IssuedCoupon {
        code: code.clone(),
        user_id: user.clone(),
        campaign_id: campaign.id.clone(),
        template,
        currency: campaign.currency,
        status: CouponStatus::Issued,
        source: IssueSource::PaymentReward {
            payment_id: promo_shared::domain::ids::PaymentId::parse(payment).unwrap(),
            rule_id: campaign.rewards[0].id.clone(),
        },
        issued_at: now,
        starts_at: now,
        ends_at: now + chrono::Duration::days(30),
    };
    wallet::items::coupon_item(&coupon).unwrap()
}

async fn bench_store(name: &'static str, store: Arc<dyn Store>, run: &str, seq: usize, total: usize) -> Vec<Row> {
    let clock = Arc::new(ManualClock::new(at("2026-11-25T12:00:00Z")));
    let campaign = Campaign::new(serde_json::from_value(campaign_json()).unwrap()).unwrap();
    campaigns::deploy(&*store, &*clock, &campaign).await.unwrap();
    // The same rule with a stock, in a campaign of its own currency: its payments (JPY) earn
    // only its reward, and the KRW payments of the other rows never touch it.
    let mut limited = campaign_json();
    limited["id"] = "bench-limited".into();
    limited["currency"] = "JPY".into();
    limited["rewards"][0]["stock"] = 100_000_000.into();
    let limited = Campaign::new(serde_json::from_value(limited).unwrap()).unwrap();
    campaigns::deploy(&*store, &*clock, &limited).await.unwrap();
    let issuer = Arc::new(Issuer::new(store.clone(), clock.clone(), Arc::new(OsIds)));
    let campaign = Arc::new(campaign);
    let mut rows = Vec::new();

    // Warm-up: connections, statement caches, the issuer's campaign cache.
    for i in 0..20 {
        issuer.handle_payment(&paid_event(&format!("{run}-warm-{i}"), 60000, "2026-11-25T11:00:00Z")).await.unwrap();
    }

    let plain = |tag: &'static str| {
        let (store, campaign, run) = (store.clone(), campaign.clone(), run.to_string());
        move |i: usize| {
            let (store, campaign) = (store.clone(), campaign.clone());
            let payment = format!("{run}-{tag}-{i}");
            async move {
                let item = wallet_item(&campaign, &OsIds, &payment, at("2026-11-25T12:00:00Z"));
                store.put(item, None).await.unwrap();
            }
        }
    };
    // The same three items the issuer writes (marker, wallet coupon, code) in one transaction,
    // with as much of the machinery as asked for: none (what the writes cost without it), the
    // puts' conditions, the payment-state check, the client token (the issuer's transaction).
    let ladder = |tag: &'static str, step: Machinery| {
        let (store, campaign, run) = (store.clone(), campaign.clone(), run.to_string());
        move |i: usize| {
            let (store, campaign) = (store.clone(), campaign.clone());
            let payment = format!("{run}-{tag}-{i}");
            async move {
                let wallet = wallet_item(&campaign, &OsIds, &payment, at("2026-11-25T12:00:00Z"));
                let code = wallet.get("code").and_then(|c| c.as_str()).unwrap_or_default().to_string();
                let pid = promo_shared::domain::ids::PaymentId::parse(payment.as_str()).unwrap();
                let mut marker = payments::items::reward::key(&pid, &campaign.id, &campaign.rewards[0].id).item();
                marker.insert("code".into(), code.clone().into());
                marker.insert("user_id".into(), "u-1".into());
                let code_item =
                    wallet::items::code_item(&CouponCode::parse(&code).unwrap(), &UserId::parse("u-1").unwrap());
                let cond = || (step >= Machinery::Conditions).then_some(Cond::NotExists);
                let mut ops = vec![
                    TxOp::Put { item: marker, cond: cond() },
                    TxOp::Put { item: wallet, cond: cond() },
                    TxOp::Put { item: code_item, cond: cond() },
                ];
                if step >= Machinery::Check {
                    ops.push(payments::items::payment::still_earns(&pid, 0));
                }
                // The issuer's own check and token: the last step is its transaction.
                let rule = &campaign.rewards[0].id;
                let token = issuer::reward_token(&pid, &campaign.id, rule, &CouponCode::parse(&code).unwrap());
                let token = (step >= Machinery::Token).then_some(token.as_str());
                store.transact(ops, token).await.unwrap();
            }
        }
    };
    let paid = |currency: &'static str| {
        let (issuer, run) = (issuer.clone(), run.to_string());
        move |tag: &'static str| {
            let (issuer, run) = (issuer.clone(), run.clone());
            move |i: usize| {
                let issuer = issuer.clone();
                let mut event = paid_event(&format!("{run}-{tag}-{i}"), 60000, "2026-11-25T11:00:00Z");
                event.amount.currency = promo_shared::domain::money::Currency::parse(currency).unwrap();
                async move {
                    let outcome = issuer.handle_payment(&event).await.unwrap();
                    assert_eq!(outcome.rewards.len(), 1);
                }
            }
        }
    };
    let once = paid("KRW");
    let limited_once = paid("JPY");

    // Latency: the operations interleaved, one of each per round (the replay is of the
    // payment issued just before it), so a slow stretch of the machine or the server hits
    // them all alike instead of whichever phase it fell in.
    let plain_seq = plain("plain-seq");
    let steps = [Machinery::None, Machinery::Conditions, Machinery::Check, Machinery::Token];
    let tags = ["tx-seq", "cond-seq", "check-seq", "token-seq"];
    let ladder_seq: Vec<_> = steps.iter().zip(tags).map(|(step, tag)| ladder(tag, *step)).collect();
    let once_seq = once("once-seq");
    let limited_seq = limited_once("limited-seq");
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); ROWS_PER_STORE];
    for i in 0..seq {
        let t0 = Instant::now();
        plain_seq(i).await;
        times[0].push(t0.elapsed());
        for (k, op) in ladder_seq.iter().enumerate() {
            let t = Instant::now();
            op(i).await;
            times[1 + k].push(t.elapsed());
        }
        let t = Instant::now();
        once_seq(i).await;
        times[5].push(t.elapsed());
        let t = Instant::now();
        once_seq(i).await;
        times[6].push(t.elapsed());
        let t = Instant::now();
        limited_seq(i).await;
        times[7].push(t.elapsed());
    }
    let lat: Vec<(Duration, Duration)> = times.into_iter().map(percentiles).collect();

    // Throughput: each operation on its own, 32 tasks.
    let per_second = concurrent(total, plain("plain-conc")).await;
    rows.push(Row { store: name, op: "plain write (unconditional put)", lat: lat[0], per_second });
    let names = [
        "the same 3 items, unconditional, one transaction",
        "+ their conditions (put if absent)",
        "+ the payment-state check",
        "+ the client token (the issuer's transaction)",
    ];
    let conc_tags = ["tx-conc", "cond-conc", "check-conc", "token-conc"];
    for (k, (step, op)) in steps.iter().zip(names).enumerate() {
        let per_second = concurrent(total, ladder(conc_tags[k], *step)).await;
        rows.push(Row { store: name, op, lat: lat[1 + k], per_second });
    }
    let per_second = concurrent(total, once("once-conc")).await;
    rows.push(Row { store: name, op: "exactly-once issuance (`Issuer::handle_payment`)", lat: lat[5], per_second });
    // Replays of the payments just issued concurrently.
    let per_second = concurrent(total, once("once-conc")).await;
    rows.push(Row { store: name, op: "replay (already issued)", lat: lat[6], per_second });
    let per_second = concurrent(total, limited_once("limited-conc")).await;
    rows.push(Row { store: name, op: "exactly-once issuance, rule with a stock", lat: lat[7], per_second });
    rows
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let seq = args.first().copied().unwrap_or(1000);
    let total = args.get(1).copied().unwrap_or(4000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let run = format!("bench-{}", std::process::id());
        let mut rows = Vec::new();

        let dir = tempfile::tempdir().unwrap();
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).unwrap());
        rows.extend(bench_store("embedded SQLite", sqlite, &run, seq, total).await);

        match std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT") {
            Ok(endpoint) => {
                let table = format!("promo-bench-{}", std::process::id());
                let store = DynamoStore::from_env(table.clone(), Some(&endpoint)).await;
                create_table(store.client(), &table).await.unwrap();
                // Every moto request costs milliseconds of Python: a fifth of the counts.
                let store: Arc<dyn Store> = Arc::new(store);
                rows.extend(bench_store("DynamoDB (moto stand-in)", store, &run, seq / 5, total / 5).await);
                let client = DynamoStore::from_env(table.clone(), Some(&endpoint)).await;
                let _ = client.client().delete_table().table_name(&table).send().await;
            }
            Err(_) => eprintln!("PROMO_TEST_DYNAMODB_ENDPOINT is not set: DynamoDB stand-in not measured"),
        }

        println!(
            "latency: {seq} rounds of all eight (moto: {}); throughput: {total} ops with {CONCURRENCY} tasks (moto: {})",
            seq / 5,
            total / 5
        );
        println!("| store | operation | p50 | p99 | ops/s ({CONCURRENCY} tasks) | p50 vs plain write |");
        println!("| --- | --- | ---: | ---: | ---: | ---: |");
        for chunk in rows.chunks(ROWS_PER_STORE) {
            let base = chunk[0].lat.0.as_secs_f64();
            for r in chunk {
                let (p50, p99) = r.lat;
                println!(
                    "| {} | {} | {:.0} µs | {:.0} µs | {:.0} | {:.2}× |",
                    r.store,
                    r.op,
                    p50.as_secs_f64() * 1e6,
                    p99.as_secs_f64() * 1e6,
                    r.per_second,
                    p50.as_secs_f64() / base
                );
            }
        }
    });
}
