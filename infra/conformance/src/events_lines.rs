//! Limited events whose waitlist is split over lines (`promo_shared::events::lines`): the
//! same exactness as with one line — no place oversold, nobody waiting while a place is free,
//! each line served in order and the smallest position first — and the rate a hot drop gets
//! under a per-item write limit, against one line in the same run.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use chrono::Duration;
use futures::future::join_all;
use promo_shared::campaigns;
use promo_shared::domain::limited_event::{EventStatus, ReservationStatus};
use promo_shared::events::lines;
use promo_shared::events::{EventError, Events, Released, Why};
use promo_shared::ports::clock::ManualClock;
use promo_shared::ports::store::{Cond, Item, Key, Page, Query, Store, StoreError, TxOp, Update};
use promo_shared::testing::at;

use crate::claims::ThrottlingStore;
use crate::events::{OPENS, World, event_campaign_in_lines, mixed, race_fill};
use crate::store::DynStore;

/// Lines of the waitlist in these cases.
const LINES: u32 = 8;

/// Concurrent reservations on a stock a tenth their number (half the one-line race's sizes:
/// the moto stand-in is slow), the waitlist in 8 lines: exactly
/// `stock` RESERVED; every waiting position names its line and each line's positions are its
/// `1..=tail` with no gap or twin; the random choice keeps the lines about level.
pub async fn events_in_lines_race_fill_stock_then_waitlist(s: DynStore, scale: usize) {
    let (w, shoppers, stock, positions) = race_fill(s, scale * 2, LINES).await;
    let e = w.state().await;
    assert_eq!(e.lines, i64::from(LINES));
    let waitlist = w.lines().await;
    let mut by_line: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for p in &positions {
        by_line.entry(lines::line_of(*p, e.lines)).or_default().push(*p);
    }
    for line in &waitlist.lines {
        let expected: Vec<i64> = (1..=line.tail).map(|k| lines::position(k, line.index, e.lines)).collect();
        assert_eq!(by_line.remove(&line.index).unwrap_or_default(), expected, "line {}", line.index);
        assert_eq!((line.head, line.waiting), (1, line.tail), "line {}", line.index);
    }
    assert!(by_line.is_empty(), "positions on no line: {by_line:?}");
    assert_eq!(waitlist.waiting(), (shoppers - stock) as i64);
    let tails: Vec<i64> = waitlist.lines.iter().map(|l| l.tail).collect();
    let spread = tails.iter().max().unwrap() - tails.iter().min().unwrap();
    eprintln!("{} arrivals over {LINES} lines: tails {tails:?} (spread {spread})", shoppers - stock);
    // A uniform random choice: each line's count is within a few standard deviations
    // (√(arrivals per line)) of the mean; a spread over 6 of them has odds below one in a
    // million, while a biased choice (all to a few lines) is far beyond it.
    let mean = (shoppers - stock) as i64 / i64::from(LINES);
    assert!(spread * spread <= 36 * mean, "the lines stay level: {tails:?}");
}

/// Reservations, cancellations, payments in and after their holds and ticks at once, the
/// waitlist in 8 lines (half the one-line case's sizes): the invariants hold after every round.
pub async fn events_in_lines_concurrent_cancellations_payments_and_expiries_stay_exact(s: DynStore, scale: usize) {
    mixed(s, scale * 2, LINES).await;
}

/// Each freed place goes to the earliest arrival at the front of any line, so the waitlist is
/// served in arrival order across lines, whatever their lengths; with nobody waiting a freed place goes
/// back to stock and the next shopper holds it (no line is left marked full); the last place
/// taken marks the lines full again. The line count cannot change once the event is open.
pub async fn events_in_lines_promote_in_arrival_order(s: DynStore) {
    let w = World::in_lines(s, "ev-lines-order", 3, "10m", 1, 4).await;
    let events = w.events();
    for n in 0..23 {
        w.clock.advance(Duration::seconds(1));
        events.reserve(&w.event, &w.user(n)).await.unwrap();
    }
    let rs = w.reservations(23).await;
    // Arrival order: each shopper came a second after the one before.
    let mut waiting: Vec<(chrono::DateTime<chrono::Utc>, i64, String)> = rs
        .iter()
        .filter(|r| r.status == ReservationStatus::Waiting)
        .map(|r| (r.created_at, r.position.unwrap(), r.reservation_id.to_string()))
        .collect();
    waiting.sort();
    assert_eq!(waiting.len(), 20);
    let used: BTreeSet<i64> = waiting.iter().map(|(_, p, _)| lines::line_of(*p, 4)).collect();
    assert!(used.len() >= 3, "arrivals spread over the lines: {waiting:?}");
    let mut promoted = Vec::new();
    for _ in 0..20 {
        let holder = w.reservations(23).await.into_iter().find(|r| r.status == ReservationStatus::Reserved).unwrap();
        match events.release(&holder, Why::Cancelled).await.unwrap() {
            Released::Promoted(rid) => promoted.push(rid.to_string()),
            other => panic!("expected a promotion, got {other:?}"),
        }
        w.check(23).await;
    }
    let order: Vec<String> = waiting.iter().map(|(_, _, rid)| rid.clone()).collect();
    assert_eq!(promoted, order, "promoted in arrival order across the lines");
    // Nobody waits now: a freed place goes back to stock and the next shopper holds it.
    let holder = w.reservations(23).await.into_iter().find(|r| r.status == ReservationStatus::Reserved).unwrap();
    assert_eq!(events.release(&holder, Why::Cancelled).await.unwrap(), Released::ToStock);
    let next = events.reserve(&w.event, &w.user(23)).await.unwrap();
    assert_eq!(next.status, ReservationStatus::Reserved, "no line is left marked full");
    // That was the last place: the next arrival waits, on whichever line.
    let after = events.reserve(&w.event, &w.user(24)).await.unwrap();
    assert_eq!(after.status, ReservationStatus::Waiting);
    w.check(25).await;
    // The line count is fixed once the event is open.
    let changed = event_campaign_in_lines(&w.prefix, 3, "10m", 1, 8);
    let err = campaigns::deploy(&*w.store, &ManualClock::new(at(OPENS)), &changed).await.unwrap_err().to_string();
    assert!(err.contains("waitlist_lines"), "{err}");
}

type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A store that runs `hook` once, just before the first update of a waitlist line (an
/// arrival joining it) or, with `on_transaction`, the first transaction that writes a line
/// (a place given back clearing the lines' flags).
struct BeforeJoining {
    inner: DynStore,
    on_transaction: bool,
    hook: tokio::sync::Mutex<Option<Hook>>,
}

impl BeforeJoining {
    async fn run_hook(&self) {
        let hook = self.hook.lock().await.take();
        if let Some(hook) = hook {
            hook.await;
        }
    }
}

#[async_trait]
impl Store for BeforeJoining {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.inner.put(item, cond).await
    }
    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        if !self.on_transaction && key.pk.ends_with("#LINES") {
            self.run_hook().await;
        }
        self.inner.update(key, updates, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        self.inner.delete(key, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        if self.on_transaction && ops.iter().any(|op| op.key().is_ok_and(|k| k.pk.ends_with("#LINES"))) {
            self.run_hook().await;
        }
        self.inner.transact(ops, token).await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.inner.query(q).await
    }
}

/// The race a place given back can lose, made to happen: a shopper reads the event full, the
/// only place is given back before they join a line, and their join must fail (the line is
/// no longer `full`), so they read again and hold the place instead of waiting for nothing.
pub async fn events_in_lines_a_place_freed_before_joining_a_line_is_taken(s: DynStore) {
    let w = World::in_lines(s, "ev-lines-join", 1, "10m", 1, 4).await;
    let holder = w.events().reserve(&w.event, &w.user(0)).await.unwrap();
    assert_eq!(holder.status, ReservationStatus::Reserved);
    let (store, clock, ids, event) = (w.store.clone(), w.clock.clone(), w.ids.clone(), w.event.clone());
    let give_back = async move {
        let events = Events::new(&*store, &*clock, &*ids);
        events.cancel(&event, &holder.user_id, holder.reservation_id.as_str()).await.unwrap();
    };
    let gated = BeforeJoining {
        inner: w.store.clone(),
        on_transaction: false,
        hook: tokio::sync::Mutex::new(Some(Box::pin(give_back))),
    };
    let late = Events::new(&gated, &*w.clock, &*w.ids).reserve(&w.event, &w.user(1)).await.unwrap();
    assert!(gated.hook.lock().await.is_none(), "the place was given back between the read and the join");
    assert_eq!(late.status, ReservationStatus::Reserved, "the freed place is taken, not waited for: {late:?}");
    let e = w.state().await;
    assert_eq!((e.taken, e.waiting), (1, 0));
    w.check(2).await;
}

/// The other side of that race: a place is being given back (nobody waiting when it read the
/// lines) and a shopper joins a line before it commits; the give-back must fail (a line
/// moved), read again and promote that shopper rather than put the place back on sale.
pub async fn events_in_lines_a_shopper_joining_while_a_place_is_given_back_gets_it(s: DynStore) {
    let w = World::in_lines(s, "ev-lines-back", 1, "10m", 1, 4).await;
    let holder = w.events().reserve(&w.event, &w.user(0)).await.unwrap();
    let (store, clock, ids, event, user) =
        (w.store.clone(), w.clock.clone(), w.ids.clone(), w.event.clone(), w.user(1));
    let join = async move {
        let joined = Events::new(&*store, &*clock, &*ids).reserve(&event, &user).await.unwrap();
        assert_eq!(joined.status, ReservationStatus::Waiting, "the event was full when they came");
    };
    let gated = BeforeJoining {
        inner: w.store.clone(),
        on_transaction: true,
        hook: tokio::sync::Mutex::new(Some(Box::pin(join))),
    };
    let released = Events::new(&gated, &*w.clock, &*w.ids).release(&holder, Why::Cancelled).await.unwrap();
    assert!(gated.hook.lock().await.is_none(), "the shopper joined between the read and the commit");
    assert!(matches!(released, Released::Promoted(_)), "the place goes to the shopper who joined: {released:?}");
    let e = w.state().await;
    assert_eq!((e.taken, e.waiting), (1, 0));
    w.check(2).await;
}

/// Held places given back while fewer new shoppers arrive, the waitlist in 8 lines: every
/// arrival ends up holding a place — one who joined a line is promoted by a later place given
/// back, and none joins a line after the last (the lines' `full` flags and the unmoved-lines
/// condition of a place given back serialize the two).
pub async fn events_in_lines_nobody_waits_while_a_place_is_free(s: DynStore, scale: usize) {
    let _alone = crate::claims::exclusive().await;
    // Fewer arrivals than places freed: every one of them must end up holding a place.
    let (stock, arrivals) = (40 / scale, 20 / scale);
    let w = Arc::new(World::in_lines(s, "ev-lines-free", stock as u32, "10m", 1, LINES).await);
    for round in 0..6 {
        let base = round * (stock + arrivals);
        // The stock taken by holders of this round (earlier rounds' shoppers cancelled).
        let holders: Vec<_> = join_all((0..stock).map(|n| {
            let w = w.clone();
            tokio::spawn(async move { w.events().reserve(&w.event, &w.user(base + n)).await.unwrap() })
        }))
        .await
        .into_iter()
        .map(Result::unwrap)
        .filter(|r| r.status == ReservationStatus::Reserved)
        .collect();
        let mut tasks = Vec::new();
        for r in holders {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.events().cancel(&w.event, &r.user_id, r.reservation_id.as_str()).await.unwrap();
            }));
        }
        for n in 0..arrivals {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                let r = w.events().reserve(&w.event, &w.user(base + stock + n)).await.unwrap();
                assert!(matches!(r.status, ReservationStatus::Reserved | ReservationStatus::Waiting));
            }));
        }
        join_all(tasks).await.into_iter().for_each(|r| r.unwrap());
        let by = w.check(base + stock + arrivals).await;
        let e = w.state().await;
        assert_eq!(
            (e.waiting, e.taken),
            (0, arrivals as i64),
            "nobody waits while a place is free: each arrival holds one (round {round}): {by:?}"
        );
        // Clear the event for the next round: everyone active cancels.
        for r in w.reservations(base + stock + arrivals).await.into_iter().filter(|r| r.status.is_active()) {
            w.events().cancel(&w.event, &r.user_id, r.reservation_id.as_str()).await.unwrap();
        }
        let e = w.state().await;
        assert_eq!((e.taken, e.waiting), (0, 0), "round {round} cleared");
    }
}

/// A hot drop under a per-item write limit: rounds of arrivals at an event of 4 places, one
/// round per window of the throttling store (K write units per item; a transaction's write
/// costs 2, as on DynamoDB), with one waitlist line and with 16. One line answers at most K
/// arrivals a window (each writes the event item, and a write that fails its condition costs
/// its units too); 16 lines answer many times more. The stock is never oversold and every
/// shopper answered holds a place or a distinct position. At `scale` > 1 (the moto stand-in):
/// 80 arrivals a round, 2 places and K = 4, the same ratios at a fraction of the size.
pub async fn events_a_hot_drop_under_a_per_item_write_limit(s: DynStore, scale: usize) {
    let _alone = crate::claims::exclusive().await;
    const ROUNDS: usize = 4;
    let (k, arrivals, stock): (usize, usize, u32) = if scale == 1 { (10, 200, 4) } else { (4, 80, 2) };
    let mut answered_by = Vec::new();
    for lines in [1u32, 16] {
        let w = World::in_lines(s.clone(), &format!("ev-hot-{lines}"), stock, "10m", 1, lines).await;
        // Opened before the doors: the arrivals meet an ACTIVE event (the scheduler's job).
        assert_eq!(w.events().get(&w.event).await.unwrap().status, EventStatus::Active);
        let throttled = Arc::new(ThrottlingStore::new(s.clone(), k).with_transaction_units(2));
        let store: DynStore = throttled.clone();
        let mut per_window = Vec::new();
        for round in 0..ROUNDS {
            let tasks = (0..arrivals).map(|n| {
                let (store, clock, ids) = (store.clone(), w.clock.clone(), w.ids.clone());
                let (event, user) = (w.event.clone(), w.user(round * arrivals + n));
                tokio::spawn(async move { Events::new(&*store, &*clock, &*ids).reserve(&event, &user).await })
            });
            let mut answered = 0;
            for outcome in join_all(tasks).await {
                match outcome.unwrap() {
                    Ok(_) => answered += 1,
                    // Throttled past its retries: a 503 the shopper retries.
                    Err(EventError::Busy(_)) | Err(EventError::Store(StoreError::Throttled(_))) => {}
                    Err(e) => panic!("unexpected reservation error: {e}"),
                }
            }
            per_window.push(answered);
            throttled.next_window();
        }
        let by = w.check(ROUNDS * arrivals).await;
        let held = by.get(&ReservationStatus::Reserved).copied().unwrap_or(0);
        let waiting = by.get(&ReservationStatus::Waiting).copied().unwrap_or(0);
        assert_eq!(held + waiting, per_window.iter().sum::<usize>(), "every answer is a hold or a position: {by:?}");
        assert!(held <= stock as usize, "never oversold: {by:?}");
        let per_second: Vec<usize> = per_window.iter().map(|n| n * 1_000 / k).collect();
        eprintln!(
            "hot drop, {lines} line(s): answered per window {per_window:?} of {arrivals} arrivals \
             (limit {k} write units per item per window) = {per_second:?} reservations/s at DynamoDB's \
             1,000 units/s per item"
        );
        if lines == 1 {
            assert!(per_window.iter().all(|n| *n <= k), "one line: each answer writes the event item: {per_window:?}");
        }
        answered_by.push(per_window.iter().sum::<usize>());
    }
    let (one, many) = (answered_by[0], answered_by[1]);
    assert!(many >= 5 * one, "16 lines answered {many}, one line {one}");
    assert!(many * 1_000 / k / ROUNDS >= 5_000, "16 lines: {many} answers in {ROUNDS} windows of {k} units");
}
