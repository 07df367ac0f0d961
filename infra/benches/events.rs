//! Limited events: reservations against a plain conditional put, a tick catching up a large
//! backlog of due holds, and how soon a freed place reaches the next in line.
//!
//! ```text
//! source infra/services/env.sh   # for the DynamoDB stand-in (infra/test.sh --services-only)
//! cargo bench -p promoctl --bench events -- reserve          # reservations/s, p50/p99, both stores
//! cargo bench -p promoctl --bench events -- catchup [N]      # a tick after N holds came due (default 100,000)
//! cargo bench -p promoctl --bench events -- latency [TICK]   # promotion latency in promoctl dev (tick 1 s)
//! ```
//!
//! - **reserve**: one request at a time, interleaved so noise lands on all alike — a plain
//!   conditional put of a reservation-shaped item (`NotExists`, one item: the baseline),
//!   `Events::reserve` taking a place (one transaction of five items after one read), and
//!   `Events::reserve` joining the waitlist (a counter update, then a transaction of three
//!   items); then each with 32 concurrent tasks, on its own event. The embedded SQLite store
//!   and, when `PROMO_TEST_DYNAMODB_ENDPOINT` is set, DynamoDB through the real SDK against
//!   that stand-in (moto behind one lock: its absolute numbers say nothing about DynamoDB's).
//! - **catchup**: N reservations holding places in N/1,000 events (1,000 places each), the
//!   clock moved past their holds, then one unbounded tick over the embedded store: its time
//!   and its store round trips per due entry; then the same with half of each event waiting,
//!   so every expiry promotes the next in line.
//! - **latency**: `promoctl dev`'s runtime on the real clock with a TICK-second schedule:
//!   holds of 10 s run out and the time from each deadline until the waiting shopper holds
//!   the place is taken (polling the store every 10 ms); then cancellations over HTTP, timed
//!   from the request until the next in line holds the place (the answer comes after).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a failure is a failed run
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)] // reporting rates and ratios

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound as _, Utc};
use promo_conformance::counting::Counting;
use promo_lambdas::auth::ShopperAuth;
use promo_lambdas::dynamodb::{DynamoStore, create_table};
use promo_shared::campaigns;
use promo_shared::config::EdgeConfig;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::ids::{EventId, UserId};
use promo_shared::domain::limited_event::ReservationStatus;
use promo_shared::events::Events;
use promo_shared::events::items::{self as ev, Reservation};
use promo_shared::events::scheduler::{self as event_scheduler, Budget};
use promo_shared::ports::clock::{Clock, ManualClock};
use promo_shared::ports::ids::IdGen;
use promo_shared::ports::store::{Cond, Store, TxOp};
use promo_shared::testing::at;
#[path = "support/timing.rs"]
mod timing;
use timing::{concurrent, percentiles};

use promoctl::embedded::{OsIds, SqliteStore, SystemClock};
use promoctl::runtime::{self, Platform, RunOptions};
use serde_json::json;

const OPENS: &str = "2026-11-20T10:00:00Z";

/// A campaign `id` whose events are `events` (id, stock), open from `opens` for an hour,
/// holds of `hold`.
fn campaign(id: &str, events: &[(String, u32)], opens: DateTime<Utc>, hold: &str) -> Campaign {
    let list: Vec<_> = events
        .iter()
        .map(|(e, stock)| {
            json!({"id": e, "name": e, "starts_at": opens, "ends_at": opens + chrono::Duration::hours(1),
                   "stock": stock, "hold": hold, "price": 50000})
        })
        .collect();
    serde_json::from_value(json!({
        "id": id, "name": id, "currency": "KRW",
        "starts_at": opens - chrono::Duration::days(1), "ends_at": opens + chrono::Duration::days(1),
        "events": list
    }))
    .unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    (dir, store)
}

async fn dynamo() -> Option<Arc<dyn Store>> {
    let endpoint = std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT").ok()?;
    let name = format!("promo-bench-events-{}", std::process::id());
    let store = DynamoStore::from_env(name.clone(), Some(&endpoint)).await;
    create_table(store.client(), &name).await.unwrap();
    Some(Arc::new(store))
}

/// Reservations against a plain conditional put, one at a time and 32 at once.
async fn reserve(store: Arc<dyn Store>, label: &str, rounds: usize, total: usize) {
    let clock = Arc::new(ManualClock::new(at(OPENS)));
    let ids: Arc<dyn IdGen> = Arc::new(OsIds);
    let tag = format!("b{}", std::process::id());
    let events = [
        (format!("{tag}-held"), 1_000_000),
        (format!("{tag}-wait"), 1),
        (format!("{tag}-held2"), 1_000_000),
        (format!("{tag}-wait2"), 1),
    ];
    let c = campaign(&tag, &events, at(OPENS), "10m");
    campaigns::deploy(&*store, &ManualClock::new(at("2026-11-01T00:00:00Z")), &c).await.unwrap();
    let id = |i: usize| EventId::parse(events[i].0.clone()).unwrap();
    let e = Events::new(&*store, &*clock, &*ids);
    for wait in [1, 3] {
        e.reserve(&id(wait), &UserId::parse(format!("{tag}-first-{wait}")).unwrap()).await.unwrap();
    }
    let plain = |n: String| {
        let mut item = ev::reservation_key(&UserId::parse("plain").unwrap(), &ids_rid(&n)).item();
        item.insert("status".into(), "RESERVED".into());
        item.insert("event_id".into(), "plain".into());
        TxOp::Put { item, cond: Some(Cond::NotExists) }
    };
    let (mut p, mut h, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let TxOp::Put { item, cond } = plain(format!("p-{r}")) else { unreachable!() };
        let t = Instant::now();
        store.put(item, cond).await.unwrap();
        p.push(t.elapsed());
        let t = Instant::now();
        let got = e.reserve(&id(0), &UserId::parse(format!("{tag}-h{r}")).unwrap()).await.unwrap();
        h.push(t.elapsed());
        assert_eq!(got.status, ReservationStatus::Reserved);
        let t = Instant::now();
        let got = e.reserve(&id(1), &UserId::parse(format!("{tag}-w{r}")).unwrap()).await.unwrap();
        w.push(t.elapsed());
        assert_eq!(got.status, ReservationStatus::Waiting);
    }
    let st = store.clone();
    let plain_rate = concurrent(total, move |i| {
        let st = st.clone();
        async move {
            let TxOp::Put { item, cond } = plain(format!("pc-{i}")) else { unreachable!() };
            st.put(item, cond).await.unwrap();
        }
    })
    .await;
    let rate = |event: EventId, kind: &'static str| {
        let (store, clock, ids, tag) = (store.clone(), clock.clone(), ids.clone(), tag.clone());
        concurrent(total, move |i| {
            let (store, clock, ids, event) = (store.clone(), clock.clone(), ids.clone(), event.clone());
            let user = UserId::parse(format!("{tag}-{kind}c{i}")).unwrap();
            async move {
                Events::new(&*store, &*clock, &*ids).reserve(&event, &user).await.unwrap();
            }
        })
    };
    let held_rate = rate(id(2), "h").await;
    let wait_rate = rate(id(3), "w").await;
    for (op, lat, per_s) in [
        ("plain conditional put", percentiles(p), plain_rate),
        ("reserve: a place (RESERVED)", percentiles(h), held_rate),
        ("reserve: the waitlist (WAITING)", percentiles(w), wait_rate),
    ] {
        println!("| {label} | {op} | {} | {} | {per_s:.0} |", ms(lat.0), ms(lat.1));
    }
}

fn ids_rid(s: &str) -> promo_shared::domain::ids::ReservationId {
    promo_shared::domain::ids::ReservationId::parse(s).unwrap()
}

/// N holds in N/1,000 events come due at once: one tick settles them.
async fn catchup(n: usize, waiting_half: bool) {
    let (_dir, store) = sqlite().await;
    let per_event = 1_000usize;
    let events = n.div_ceil(per_event);
    let stock = if waiting_half { per_event / 2 } else { per_event } as u32;
    let tag = format!("c{}", std::process::id());
    let names: Vec<(String, u32)> = (0..events).map(|i| (format!("{tag}-e{i}"), stock)).collect();
    for (k, chunk) in names.chunks(16).enumerate() {
        let c = campaign(&format!("{tag}-{k}"), chunk, at(OPENS), "10m");
        campaigns::deploy(&*store, &ManualClock::new(at("2026-11-01T00:00:00Z")), &c).await.unwrap();
    }
    let clock = Arc::new(ManualClock::new(at(OPENS)));
    let ids: Arc<dyn IdGen> = Arc::new(OsIds);
    let t = Instant::now();
    let (st, cl, is, nm) = (store.clone(), clock.clone(), ids.clone(), names.clone());
    concurrent(events * per_event, move |i| {
        let (st, cl, is) = (st.clone(), cl.clone(), is.clone());
        let event = EventId::parse(nm[i % events].0.clone()).unwrap();
        let user = UserId::parse(format!("u{i}")).unwrap();
        async move {
            Events::new(&*st, &*cl, &*is).reserve(&event, &user).await.unwrap();
        }
    })
    .await;
    let setup = t.elapsed();
    clock.advance(chrono::Duration::seconds(601));
    let counting = Counting::over(&store);
    let e = Events::new(&*counting, &*clock, &*ids);
    let t = Instant::now();
    let report = event_scheduler::tick(&e, None, Budget { items: usize::MAX, deadline: None }).await.unwrap();
    let took = t.elapsed();
    let held = stock as usize * events;
    assert_eq!(report.expired, held, "{report:?}");
    assert!(!report.due_left, "{report:?}");
    println!(
        "| {} reservations in {events} events, {} | {held} expired, {} promoted, {} due entries settled | {:.1} s | {:.0}/s | {:.1} | (set up in {:.0} s) |",
        events * per_event,
        if waiting_half { "half of each waiting" } else { "all holding" },
        report.promoted,
        report.settled,
        took.as_secs_f64(),
        report.settled as f64 / took.as_secs_f64(),
        counting.total() as f64 / report.settled as f64,
        setup.as_secs_f64()
    );
}

/// Promotion latency in `promoctl dev` on the real clock.
async fn latency(tick: u64) {
    const SECRET: &str = "bench-shopper-secret-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::open_with(
        dir.path(),
        EdgeConfig::from_lookup(|_| None).unwrap(),
        Arc::new(SystemClock),
        Arc::new(OsIds),
    )
    .unwrap()
    .with_shopper_secret(SECRET)
    .unwrap();
    let platform = Arc::new(platform);
    let running = runtime::start(
        platform.clone(),
        "127.0.0.1:0".parse().unwrap(),
        RunOptions { tick: Duration::from_secs(tick), consumers: 0, email_consumers: 0 },
    )
    .await
    .unwrap();
    let store: Arc<dyn Store> = platform.store.clone();
    let opens = SystemClock.now().trunc_subsecs(0);
    // Expiry: `holders` holds of 10 s spread over one tick period, each with a shopper waiting.
    let holders = 60usize;
    let c = campaign("lat", &[("lat-expiry".into(), holders as u32), ("lat-cancel".into(), 50)], opens, "10s");
    campaigns::deploy(&*store, &SystemClock, &c).await.unwrap();
    let expiry = EventId::parse("lat-expiry").unwrap();
    let e = Events::new(&*store, &SystemClock, &OsIds);
    let mut deadlines = Vec::new();
    let spread = Duration::from_secs(tick).max(Duration::from_secs(1)) / holders as u32;
    for i in 0..holders {
        let r = e.reserve(&expiry, &UserId::parse(format!("h{i}")).unwrap()).await.unwrap();
        deadlines.push(r.hold_until.unwrap());
        tokio::time::sleep(spread).await;
    }
    let mut waiting: Vec<Reservation> = Vec::new();
    for i in 0..holders {
        waiting.push(e.reserve(&expiry, &UserId::parse(format!("w{i}")).unwrap()).await.unwrap());
    }
    deadlines.sort();
    let mut seen: Vec<Option<DateTime<Utc>>> = vec![None; holders];
    let t0 = Instant::now();
    while seen.iter().any(Option::is_none) && t0.elapsed() < Duration::from_secs(tick * 3 + 30) {
        for (i, r) in waiting.iter().enumerate() {
            if seen[i].is_none() {
                let now = SystemClock.now();
                let got = e.reservation(&r.user_id, &r.reservation_id).await.unwrap().unwrap();
                if got.status == ReservationStatus::Reserved {
                    seen[i] = Some(now);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Promotions go in order of position, and positions in order of the holds' deadlines.
    let lat: Vec<Duration> = seen
        .iter()
        .zip(&deadlines)
        .map(|(s, d)| (s.expect("promoted") - *d).to_std().unwrap_or(Duration::ZERO))
        .collect();
    let (p50, p99) = percentiles(lat.clone());
    println!(
        "| promoctl dev, {tick} s tick | a hold's deadline → the next in line holds it | {} | {} | {} | {holders} |",
        ms(p50),
        ms(p99),
        ms(*lat.iter().max().unwrap())
    );
    // Cancellation: the request promotes at once.
    let cancel = EventId::parse("lat-cancel").unwrap();
    let mut held = Vec::new();
    let mut queued = Vec::new();
    for i in 0..50 {
        held.push(e.reserve(&cancel, &UserId::parse(format!("ch{i}")).unwrap()).await.unwrap());
    }
    for i in 0..50 {
        queued.push(e.reserve(&cancel, &UserId::parse(format!("cw{i}")).unwrap()).await.unwrap());
    }
    let auth = ShopperAuth::new(SECRET.as_bytes()).unwrap();
    let client = reqwest::Client::new();
    let mut lat = Vec::new();
    for (h, q) in held.iter().zip(&queued) {
        let token = auth.mint(&h.user_id, SystemClock.now(), chrono::Duration::minutes(5));
        let url = format!("http://{}/v1/events/lat-cancel/reservations/{}", running.addr, h.reservation_id);
        let t = Instant::now();
        let resp = client.delete(url).bearer_auth(token).send().await.unwrap();
        let took = t.elapsed();
        assert_eq!(resp.status(), 200);
        let got = e.reservation(&q.user_id, &q.reservation_id).await.unwrap().unwrap();
        assert_eq!(got.status, ReservationStatus::Reserved, "promoted before the answer");
        lat.push(took);
    }
    let (p50, p99) = percentiles(lat.clone());
    println!(
        "| promoctl dev, over HTTP | a cancellation → the next in line holds it | {} | {} | {} | 50 |",
        ms(p50),
        ms(p99),
        ms(*lat.iter().max().unwrap())
    );
    running.shutdown().await.unwrap();
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let what = args.first().map_or("reserve", String::as_str);
    let n = |default: usize| args.get(1).and_then(|a| a.parse().ok()).unwrap_or(default);
    match what {
        "reserve" => {
            println!("| store | operation | p50 | p99 | per second (32 tasks) |");
            println!("| --- | --- | --- | --- | --- |");
            let (_dir, s) = sqlite().await;
            reserve(s, "embedded SQLite", 2_000, 10_000).await;
            if let Some(d) = dynamo().await {
                reserve(d, "DynamoDB stand-in (moto)", 300, 1_000).await;
            }
        }
        "catchup" => {
            let n = n(100_000);
            println!("| due work | settled | tick | rate | round trips per entry | |");
            println!("| --- | --- | --- | --- | --- | --- |");
            catchup(n, false).await;
            catchup(n, true).await;
        }
        "latency" => {
            println!("| runtime | promotion | p50 | p99 | max | holds |");
            println!("| --- | --- | --- | --- | --- | --- |");
            latency(n(1) as u64).await;
        }
        other => panic!("unknown section `{other}`: reserve, catchup or latency"),
    }
}
