//! Limited events against a real store adapter: reservations, the waitlist, expiry and
//! promotion, payments and the scheduler's ticks (`promo_shared::events` and
//! `event_scheduler`), with the clock driven explicitly. The invariants are checked against
//! every reservation item after each race, not against the counters alone:
//!
//! - `taken` = RESERVED + CONFIRMED reservations ≤ stock, `confirmed` = CONFIRMED;
//! - `waiting` = WAITING reservations; waiting positions are distinct, and every promoted
//!   position is ahead of every position still waiting;
//! - nobody holds two active reservations of one event.
//!
//! ```ignore
//! promo_conformance::events_conformance_tests!(store, 1); // 1: full size; 5: a fifth
//! ```
//!
//! The factory gives each case a store of its own: the due index is global and each case
//! drives its own clock, so one case's tick must not meet another's due work.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Duration;
use futures::future::join_all;
use promo_shared::campaigns;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::ids::{EventId, PaymentId, UserId};
use promo_shared::domain::limited_event::{EventStatus, ReservationStatus};
use promo_shared::domain::money::{Currency, Money};
use promo_shared::domain::payment::PaymentEvent;
use promo_shared::events::items::{self as ev, DUE_SHARDS, EventState, Reservation};
use promo_shared::events::lines::{self, Lines};
use promo_shared::events::scheduler::{self as event_scheduler, Budget, TickReport};
use promo_shared::events::{EventError, Events, Paid, PlacePayment, Released};
use promo_shared::payments::issuer::Issuer;
use promo_shared::ports::clock::{Clock, ManualClock};
use promo_shared::ports::store::{Cond, Item, ItemExt, Key, Page, Query, Store, StoreError, TxOp, Update, query_all};
use promo_shared::testing::at;
use serde_json::json;

use crate::claims::SeededIds;
pub use crate::events_lines::*;
use crate::store::{DynStore, ns};

/// The event's window: 2026-11-20 10:00 to 12:00 UTC.
pub const OPENS: &str = "2026-11-20T10:00:00Z";
pub const ENDS: &str = "2026-11-20T12:00:00Z";

/// A campaign `id` with one event `<id>-drop` of `stock` places held `hold`.
pub fn event_campaign(id: &str, stock: u32, hold: &str, per_user_limit: u32) -> Campaign {
    event_campaign_in_lines(id, stock, hold, per_user_limit, 1)
}

/// The same, its waitlist split over `lines` lines (`events::lines`).
pub fn event_campaign_in_lines(id: &str, stock: u32, hold: &str, per_user_limit: u32, lines: u32) -> Campaign {
    serde_json::from_value(json!({
        "id": id, "name": "Drops", "currency": "KRW",
        "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
        "events": [{"id": format!("{id}-drop"), "name": "Signed edition", "starts_at": OPENS, "ends_at": ENDS,
                    "stock": stock, "hold": hold, "per_user_limit": per_user_limit, "price": 50000,
                    "waitlist_lines": lines}]
    }))
    .unwrap()
}

/// A payment `id` of the event's price (50,000 KRW), without lines.
pub fn paid_in_full(id: &str) -> PlacePayment {
    paid(id, 50_000, "KRW")
}

pub fn paid(id: &str, minor: i64, currency: &str) -> PlacePayment {
    let amount = Money::new(minor, Currency::parse(currency).unwrap()).unwrap();
    PlacePayment::new(PaymentId::parse(id).unwrap(), amount)
}

/// One case's world: the store, a clock it drives, ids, and its deployed event.
pub struct World {
    pub store: DynStore,
    pub clock: Arc<ManualClock>,
    pub ids: Arc<SeededIds>,
    pub event: EventId,
    pub prefix: String,
}

impl World {
    /// Deploys an event of `stock` places (hold 10 minutes) and opens it: the clock at `OPENS`.
    pub async fn new(store: DynStore, case: &str, stock: u32) -> World {
        World::with(store, case, stock, "10m", 1).await
    }

    pub async fn with(store: DynStore, case: &str, stock: u32, hold: &str, limit: u32) -> World {
        World::in_lines(store, case, stock, hold, limit, 1).await
    }

    /// An event whose waitlist is split over `lines` lines.
    pub async fn in_lines(store: DynStore, case: &str, stock: u32, hold: &str, limit: u32, lines: u32) -> World {
        let prefix = ns(case);
        let campaign = event_campaign_in_lines(&prefix, stock, hold, limit, lines);
        campaigns::deploy(&*store, &ManualClock::new(at("2026-11-10T00:00:00Z")), &campaign).await.unwrap();
        let w = World {
            store,
            clock: Arc::new(ManualClock::new(at(OPENS))),
            ids: Arc::new(SeededIds::default()),
            event: campaign.events[0].id.clone(),
            prefix,
        };
        w.clock.set(at(OPENS));
        w
    }

    pub fn events(&self) -> Events<'_, dyn Store> {
        Events::new(&*self.store, &*self.clock, &*self.ids)
    }

    pub fn user(&self, n: usize) -> UserId {
        UserId::parse(format!("{}-u{n}", self.prefix)).unwrap()
    }

    /// The event item as stored, `waiting` counted over every line.
    pub async fn state(&self) -> EventState {
        let mut e = self.events().read(&self.event).await.unwrap().unwrap();
        e.waiting = Lines::read(&*self.store, &e).await.unwrap().waiting();
        e
    }

    /// The waitlist's lines as stored.
    pub async fn lines(&self) -> Lines {
        let e = self.events().read(&self.event).await.unwrap().unwrap();
        Lines::read(&*self.store, &e).await.unwrap()
    }

    pub async fn tick(&self) -> TickReport {
        event_scheduler::tick(&self.events(), None, Budget::default()).await.unwrap()
    }

    /// Every reservation of shoppers `0..shoppers`.
    pub async fn reservations(&self, shoppers: usize) -> Vec<Reservation> {
        let mut out = Vec::new();
        for chunk in (0..shoppers).collect::<Vec<_>>().chunks(64) {
            let reads = chunk.iter().map(|n| {
                let (store, user) = (self.store.clone(), self.user(*n));
                async move { query_all(&*store, ev::reservations_of(&user)).await.unwrap() }
            });
            for items in join_all(reads).await {
                out.extend(items.iter().map(|i| Reservation::from_item(i).unwrap()));
            }
        }
        out.retain(|r| r.event_id == self.event);
        out
    }

    /// Checks the invariants (module docs) against every reservation item; returns the count
    /// by status.
    pub async fn check(&self, shoppers: usize) -> BTreeMap<ReservationStatus, usize> {
        let e = self.state().await;
        let rs = self.reservations(shoppers).await;
        let mut by = BTreeMap::new();
        for r in &rs {
            *by.entry(r.status).or_insert(0usize) += 1;
        }
        let n = |s| by.get(&s).copied().unwrap_or(0) as i64;
        assert!(e.taken <= e.stock(), "taken {} over stock {}", e.taken, e.stock());
        assert_eq!(e.taken, n(ReservationStatus::Reserved) + n(ReservationStatus::Confirmed), "taken: {by:?}");
        assert_eq!(e.confirmed, n(ReservationStatus::Confirmed), "confirmed: {by:?}");
        assert_eq!(e.waiting, n(ReservationStatus::Waiting), "waiting: {by:?}");
        let mut active = BTreeSet::new();
        for r in rs.iter().filter(|r| r.status.is_active()) {
            assert!(active.insert(r.user_id.clone()), "{} holds two active reservations", r.user_id);
        }
        let waiting: Vec<i64> =
            rs.iter().filter(|r| r.status == ReservationStatus::Waiting).filter_map(|r| r.position).collect();
        let distinct: BTreeSet<i64> = waiting.iter().copied().collect();
        assert_eq!(distinct.len(), waiting.len(), "waiting positions are distinct");
        // Each line is served in order: every promoted position of a line is ahead of every
        // position still waiting in it, and none waits behind its line's head.
        for line in &self.lines().await.lines {
            let of_line = |p: &i64| lines::line_of(*p, e.lines) == line.index;
            let Some(first_waiting) = distinct.iter().find(|p| of_line(p)) else { continue };
            for r in rs.iter().filter(|r| r.promoted_at.is_some() && r.position.as_ref().is_some_and(of_line)) {
                assert!(r.position.unwrap() < *first_waiting, "promoted {:?} behind a waiting position", r.position);
            }
            let head = lines::position(line.head, line.index, e.lines);
            assert!(*first_waiting >= head, "a waiting position behind the head of line {}", line.index);
        }
        by
    }
}

fn count(by: &BTreeMap<ReservationStatus, usize>, s: ReservationStatus) -> usize {
    by.get(&s).copied().unwrap_or(0)
}

/// Concurrent reservations on a stock a tenth their number: exactly `stock` RESERVED, the rest
/// WAITING at positions 1..=rest, distinct and gap-free. `scale` divides the sizes (10,000 on
/// 1,000 at 1).
pub async fn events_reservations_race_fill_stock_then_waitlist(s: DynStore, scale: usize) {
    let (w, shoppers, stock, positions) = race_fill(s, scale, 1).await;
    assert_eq!(positions, (1..=(shoppers - stock) as i64).collect::<Vec<_>>(), "positions 1..=N, no gap, no twin");
    let e = w.state().await;
    assert_eq!((e.taken, e.tail, e.head), (stock as i64, (shoppers - stock) as i64, 1));
}

/// The race of [`events_reservations_race_fill_stock_then_waitlist`] on an event whose
/// waitlist has `lines` lines: exactly `stock` RESERVED; returns the world, the sizes and the
/// waiting positions, sorted.
pub(crate) async fn race_fill(s: DynStore, scale: usize, lines: u32) -> (Arc<World>, usize, usize, Vec<i64>) {
    let _alone = crate::claims::exclusive().await;
    let (shoppers, stock) = (10_000 / scale, 1_000 / scale);
    let w = Arc::new(World::in_lines(s, "ev-race", stock as u32, "10m", 1, lines).await);
    let tasks = (0..shoppers).map(|n| {
        let w = w.clone();
        tokio::spawn(async move { w.events().reserve(&w.event, &w.user(n)).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    let held = results.iter().filter(|r| r.status == ReservationStatus::Reserved).count();
    let mut positions: Vec<i64> =
        results.iter().filter(|r| r.status == ReservationStatus::Waiting).map(|r| r.position.unwrap()).collect();
    positions.sort_unstable();
    assert_eq!(held, stock, "exactly the stock is RESERVED");
    let by = w.check(shoppers).await;
    assert_eq!(count(&by, ReservationStatus::Waiting), shoppers - stock);
    (w, shoppers, stock, positions)
}

/// What must be refused, refused with nothing written.
pub async fn events_bad_input_is_refused_and_writes_nothing(s: DynStore) {
    let w = World::new(s, "ev-bad", 2).await;
    let events = w.events();
    // Not open yet.
    w.clock.set(at(OPENS) - Duration::seconds(1));
    let err = events.reserve(&w.event, &w.user(0)).await.unwrap_err();
    assert!(matches!(err, EventError::NotActive { status: EventStatus::Inactive, .. }), "{err:?}");
    assert!(w.reservations(1).await.is_empty(), "nothing written before the opening");
    w.clock.set(at(OPENS));
    // Unknown event.
    let unknown = EventId::parse(format!("{}-nope", w.prefix)).unwrap();
    assert!(matches!(events.reserve(&unknown, &w.user(0)).await, Err(EventError::NotFound(_))));
    // A second reservation by the same shopper.
    let first = events.reserve(&w.event, &w.user(0)).await.unwrap();
    let err = events.reserve(&w.event, &w.user(0)).await.unwrap_err();
    assert!(matches!(&err, EventError::AlreadyReserved { rid, .. } if rid == first.reservation_id.as_str()), "{err:?}");
    // Someone else's reservation, unknown and malformed ids.
    let rid = first.reservation_id.as_str();
    assert!(matches!(events.cancel(&w.event, &w.user(1), rid).await, Err(EventError::ReservationNotFound(_))));
    assert!(matches!(events.cancel(&w.event, &w.user(0), "nope").await, Err(EventError::ReservationNotFound(_))));
    assert!(matches!(events.cancel(&w.event, &w.user(0), "bad id!").await, Err(EventError::ReservationNotFound(_))));
    let e = w.state().await;
    assert_eq!((e.taken, e.tail), (1, 0), "the refusals wrote nothing");
    // Cancelled by a marketer: no more reservations; a payment for a hold is refunded.
    events.cancel_event(&w.event, "test").await.unwrap();
    let err = events.reserve(&w.event, &w.user(2)).await.unwrap_err();
    assert!(matches!(err, EventError::NotActive { status: EventStatus::Cancelled, .. }), "{err:?}");
    let paid = events.pay(&w.user(0), &first.reservation_id, &paid_in_full("pay-after-cancel")).await.unwrap();
    assert!(matches!(paid, Paid::RefundDue(_)), "{paid:?}");
    let r = events.reservation(&w.user(0), &first.reservation_id).await.unwrap().unwrap();
    assert_eq!(r.status, ReservationStatus::RefundDue);
    assert_eq!(query_all(&*w.store, ev::refunds(&w.event)).await.unwrap().len(), 1, "reported");
    assert_eq!(w.state().await.taken, 0, "the place went back");
    // After the end.
    w.check(3).await;
}

/// Holds expire at their deadline and the head of the waitlist is promoted into each place,
/// in order, with a fresh hold; the place count never moves; notices are due.
pub async fn events_expiry_promotes_the_waitlist_in_order(s: DynStore) {
    let w = World::new(s, "ev-promote", 2).await;
    let events = w.events();
    for n in 0..5 {
        w.clock.advance(Duration::seconds(1));
        events.reserve(&w.event, &w.user(n)).await.unwrap();
    }
    let before = w.check(5).await;
    assert_eq!((count(&before, ReservationStatus::Reserved), count(&before, ReservationStatus::Waiting)), (2, 3));
    // One second before the first deadline: nothing is due.
    w.clock.set(at(OPENS) + Duration::seconds(600));
    assert_eq!(w.tick().await.expired, 0, "the hold of user 0 runs until OPENS+601s");
    w.clock.set(at(OPENS) + Duration::seconds(602));
    let report = w.tick().await;
    assert_eq!((report.expired, report.promoted), (2, 2), "{report:?}");
    let rs = w.reservations(5).await;
    let of = |n: usize| rs.iter().find(|r| r.user_id == w.user(n)).unwrap().clone();
    assert_eq!((of(0).status, of(1).status), (ReservationStatus::Expired, ReservationStatus::Expired));
    assert_eq!(
        (of(2).status, of(3).status, of(4).status),
        (ReservationStatus::Reserved, ReservationStatus::Reserved, ReservationStatus::Waiting)
    );
    assert_eq!(of(2).hold_until, Some(at(OPENS) + Duration::seconds(602 + 600)), "a fresh hold from the promotion");
    let e = w.state().await;
    assert_eq!((e.taken, e.head, e.waiting), (2, 3, 1), "the place count unchanged");
    w.check(5).await;
    // A second tick does nothing more.
    assert_eq!(w.tick().await.promoted, 0);
    // The promoted shopper who cancels hands the place on at once (no tick).
    events.cancel(&w.event, &w.user(2), of(2).reservation_id.as_str()).await.unwrap();
    let rs = w.reservations(5).await;
    assert_eq!(rs.iter().find(|r| r.user_id == w.user(4)).unwrap().status, ReservationStatus::Reserved);
    w.check(5).await;
}

/// Everything at once on one event: reservations, cancellations of held and waiting places,
/// payments inside and after their holds, and ticks, while the clock passes deadlines — the
/// invariants hold after every round.
pub async fn events_concurrent_cancellations_payments_and_expiries_stay_exact(s: DynStore, scale: usize) {
    mixed(s, scale, 1).await;
}

/// [`events_concurrent_cancellations_payments_and_expiries_stay_exact`] on an event whose
/// waitlist has `lines` lines.
pub(crate) async fn mixed(s: DynStore, scale: usize, lines: u32) {
    let _alone = crate::claims::exclusive().await;
    let shoppers = 1_500 / scale;
    let stock = (100 / scale) as u32;
    let w = Arc::new(World::in_lines(s, "ev-mixed", stock, "60s", 1, lines).await);
    let first: Vec<_> = join_all((0..shoppers).map(|n| {
        let w = w.clone();
        tokio::spawn(async move { w.events().reserve(&w.event, &w.user(n)).await.unwrap() })
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    w.check(shoppers).await;
    for round in 0..4 {
        w.clock.advance(Duration::seconds(31));
        let mut tasks = Vec::new();
        for (n, r) in first.iter().enumerate() {
            let (w, r) = (w.clone(), r.clone());
            let job = (n + round) % 5;
            tasks.push(tokio::spawn(async move {
                let events = w.events();
                match job {
                    0 => {
                        let _ = events.cancel(&w.event, &r.user_id, r.reservation_id.as_str()).await;
                    }
                    1 | 2 => {
                        let pay = format!("pay-{}", r.reservation_id);
                        events.pay(&r.user_id, &r.reservation_id, &paid_in_full(&pay)).await.unwrap();
                    }
                    _ => {}
                }
            }));
        }
        for _ in 0..3 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.tick().await;
            }));
        }
        join_all(tasks).await.into_iter().for_each(|r| r.unwrap());
        let by = w.check(shoppers).await;
        let e = w.state().await;
        assert!(e.confirmed <= e.stock());
        if e.waiting > 0 {
            assert_eq!(e.taken, e.stock(), "nobody waits while a place is free (round {round}): {by:?}");
        }
    }
}

/// Eight ticks at once do exactly what one does: every expired hold released once, each
/// freed place given to one shopper, in order.
pub async fn events_eight_concurrent_ticks_change_nothing_more_than_one(s: DynStore) {
    let _alone = crate::claims::exclusive().await;
    let stock = 40;
    let shoppers = 120;
    let w = Arc::new(World::new(s, "ev-ticks", stock).await);
    for n in 0..shoppers {
        w.events().reserve(&w.event, &w.user(n)).await.unwrap();
    }
    w.clock.advance(Duration::seconds(601));
    let reports: Vec<TickReport> = join_all((0..8).map(|_| {
        let w = w.clone();
        tokio::spawn(async move { w.tick().await })
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let promoted: usize = reports.iter().map(|r| r.promoted).sum();
    let expired: usize = reports.iter().map(|r| r.expired).sum();
    assert_eq!((expired, promoted), (40, 40), "{reports:?}");
    let by = w.check(shoppers).await;
    assert_eq!(count(&by, ReservationStatus::Expired), 40);
    assert_eq!(count(&by, ReservationStatus::Reserved), 40);
    assert_eq!(count(&by, ReservationStatus::Waiting), 40);
    let e = w.state().await;
    assert_eq!((e.taken, e.head, e.tail), (40, 41, 80));
}

/// The scheduler down for a day: the next tick ends the event, releases every expired hold
/// to stock (nobody is promoted after the end), closes the waitlist and tells those waiting;
/// requests meanwhile already saw the truth.
pub async fn events_a_tick_after_a_day_of_downtime(s: DynStore) {
    let w = World::new(s, "ev-downtime", 3).await;
    let events = w.events();
    for n in 0..6 {
        events.reserve(&w.event, &w.user(n)).await.unwrap();
    }
    w.clock.set(at(ENDS) + Duration::hours(24));
    // A request before any tick: the event has ended, whatever the stored status said.
    let err = events.reserve(&w.event, &w.user(9)).await.unwrap_err();
    assert!(matches!(err, EventError::NotActive { .. }), "{err:?}");
    assert_eq!(w.state().await.status, EventStatus::Ended, "the request applied the due transition");
    // A payment of an expired hold after the end: refund, no place.
    let rs = w.reservations(6).await;
    let held = rs.iter().find(|r| r.status == ReservationStatus::Reserved).unwrap();
    let paid = events.pay(&held.user_id, &held.reservation_id, &paid_in_full("late-pay")).await.unwrap();
    assert!(matches!(paid, Paid::RefundDue(_)), "{paid:?}");
    let report = w.tick().await;
    assert_eq!(report.promoted, 0, "nobody promoted after the end: {report:?}");
    assert_eq!(report.waitlist_closed, 3, "{report:?}");
    let by = w.check(6).await;
    assert_eq!(count(&by, ReservationStatus::Closed), 3);
    assert_eq!(count(&by, ReservationStatus::Expired), 2);
    assert_eq!(count(&by, ReservationStatus::RefundDue), 1);
    let e = w.state().await;
    assert_eq!((e.taken, e.waiting, e.status), (0, 0, EventStatus::Ended));
    let refunds = query_all(&*w.store, ev::refunds(&w.event)).await.unwrap();
    assert_eq!(refunds.len(), 1, "the late payment is reported");
    // The closed shoppers' notices came due during the tick; the next settles them.
    w.tick().await;
    assert_eq!(due_left(&w).await, 0, "everything due is settled");
}

async fn due_left(w: &World) -> usize {
    let mut n = 0;
    for shard in 0..DUE_SHARDS {
        let items = query_all(&*w.store, ev::due_shard(shard)).await.unwrap();
        n += items.iter().filter(|i| i.str_attr("sk").is_some_and(|sk| sk.contains(w.prefix.as_str()))).count();
    }
    n
}

/// A tick works within its budget and leaves the rest due: the next ticks continue where
/// it stopped, and together they do exactly what one unbounded tick would.
pub async fn events_a_tick_stops_at_its_budget_and_the_next_continues(s: DynStore) {
    let w = World::new(s, "ev-budget", 30).await;
    for n in 0..60 {
        w.events().reserve(&w.event, &w.user(n)).await.unwrap();
    }
    w.clock.advance(Duration::seconds(601));
    let mut reports = Vec::new();
    loop {
        let r = event_scheduler::tick(&w.events(), None, Budget { items: 7, deadline: None }).await.unwrap();
        assert!(r.settled <= 7, "{r:?}");
        let more = r.due_left;
        reports.push(r);
        if !more {
            break;
        }
        assert!(reports.len() < 100, "the ticks make progress");
    }
    assert!(reports.len() > 4, "the budget split the work: {}", reports.len());
    let promoted: usize = reports.iter().map(|r| r.promoted).sum();
    assert_eq!(promoted, 30);
    let by = w.check(60).await;
    assert_eq!((count(&by, ReservationStatus::Expired), count(&by, ReservationStatus::Reserved)), (30, 30));
    // A deadline already passed: the tick starts nothing and says work is left.
    w.clock.advance(Duration::seconds(601));
    let stop =
        event_scheduler::tick(&w.events(), None, Budget { items: 100, deadline: Some(w.clock.now()) }).await.unwrap();
    assert_eq!((stop.settled, stop.due_left), (0, true));
}

/// A payment racing its own expiry: the payer's clock just before the deadline, the
/// scheduler's just after. Each hold ends exactly one way — paid in time, or expired and
/// then paid late into a free place or marked for refund — and never both.
pub async fn events_a_payment_racing_its_own_expiry(s: DynStore) {
    let _alone = crate::claims::exclusive().await;
    let stock = 30;
    let shoppers = 60;
    let w = Arc::new(World::new(s, "ev-payrace", stock).await);
    for n in 0..shoppers {
        w.events().reserve(&w.event, &w.user(n)).await.unwrap();
    }
    let held: Vec<Reservation> =
        w.reservations(shoppers).await.into_iter().filter(|r| r.status == ReservationStatus::Reserved).collect();
    let payer_clock = Arc::new(ManualClock::new(at(OPENS) + Duration::seconds(599)));
    w.clock.set(at(OPENS) + Duration::seconds(600));
    let mut tasks = Vec::new();
    for r in held.clone() {
        let (w, clock) = (w.clone(), payer_clock.clone());
        tasks.push(tokio::spawn(async move {
            let events = Events::new(&*w.store, &*clock, &*w.ids);
            events.pay(&r.user_id, &r.reservation_id, &paid_in_full(&format!("p-{}", r.reservation_id))).await.unwrap()
        }));
    }
    let ticks: Vec<_> = (0..4)
        .map(|_| {
            let w = w.clone();
            tokio::spawn(async move { w.tick().await })
        })
        .collect();
    let paid: Vec<Paid> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    join_all(ticks).await.into_iter().for_each(|r| {
        r.unwrap();
    });
    let by = w.check(shoppers).await;
    let confirmed = paid.iter().filter(|p| matches!(p, Paid::Confirmed | Paid::ConfirmedLate)).count();
    let refunds = paid.iter().filter(|p| matches!(p, Paid::RefundDue(_))).count();
    assert_eq!(confirmed + refunds, held.len(), "every payment answered: {paid:?}");
    assert_eq!(count(&by, ReservationStatus::Confirmed), confirmed);
    assert_eq!(count(&by, ReservationStatus::RefundDue), refunds);
    let e = w.state().await;
    assert!(e.taken <= e.stock());
}

/// Time is in every condition: a stored ACTIVE status does not let a reservation in after
/// the end; a retried reservation never extends its hold; a hold is not confirmed at its
/// deadline.
pub async fn events_time_is_in_the_conditions(s: DynStore) {
    let w = World::new(s, "ev-time", 1).await;
    let events = w.events();
    let r = events.reserve(&w.event, &w.user(0)).await.unwrap();
    w.clock.advance(Duration::seconds(300));
    let again = events.reserve(&w.event, &w.user(0)).await.unwrap_err();
    assert!(matches!(again, EventError::AlreadyReserved { .. }));
    let still = events.reservation(&w.user(0), &r.reservation_id).await.unwrap().unwrap();
    assert_eq!(still.hold_until, r.hold_until, "a retry never extends the hold");
    // At the deadline exactly: not confirmed in time; the place is free (nobody waits), so
    // the late payment takes it.
    w.clock.set(r.hold_until.unwrap());
    assert_eq!(events.pay(&w.user(0), &r.reservation_id, &paid_in_full("p0")).await.unwrap(), Paid::ConfirmedLate);
    assert_eq!(
        events.pay(&w.user(0), &r.reservation_id, &paid_in_full("p0")).await.unwrap(),
        Paid::AlreadyConfirmed,
        "redelivered"
    );
    let e = w.state().await;
    assert_eq!((e.taken, e.confirmed, e.sold_out()), (1, 1, true));
    // Sold out: the next shopper is told so, not queued.
    let err = events.reserve(&w.event, &w.user(1)).await.unwrap_err();
    assert!(matches!(err, EventError::SoldOut(_)), "{err:?}");
    // An event whose stored status is still ACTIVE after its end (no tick) takes nobody.
    let w2 = World::new(w.store.clone(), "ev-time2", 5).await;
    w2.events().reserve(&w2.event, &w2.user(0)).await.unwrap();
    assert_eq!(w2.state().await.status, EventStatus::Active);
    w2.clock.set(at(ENDS));
    let err = w2.events().reserve(&w2.event, &w2.user(1)).await.unwrap_err();
    assert!(matches!(err, EventError::NotActive { .. }), "{err:?}");
    w2.check(2).await;
}

/// A store that moves the event's end to `at` (a redeploy's edit, item and spec) right before
/// the first transaction it passes on: the reservation read the event open, and writes after
/// its end.
struct EndsBeforeFirstWrite {
    inner: DynStore,
    event: EventId,
    at: chrono::DateTime<chrono::Utc>,
    done: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Store for EndsBeforeFirstWrite {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.inner.put(item, cond).await
    }
    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        self.inner.update(key, updates, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        self.inner.delete(key, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let key = ev::event_key(&self.event);
            let mut item = self.inner.get(&key).await?.unwrap();
            item["spec"]["ends_at"] = json!(self.at);
            item.insert(ev::ENDS_AT.into(), self.at.timestamp().into());
            self.inner.put(item, None).await?;
        }
        self.inner.transact(ops, token).await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.inner.query(q).await
    }
}

/// The time is in the write's own condition: a reservation whose read found the event open,
/// but whose write comes after the event's end moved to now, is refused and writes nothing.
pub async fn events_a_stale_read_cannot_reserve_after_the_end(s: DynStore) {
    let w = World::new(s, "ev-stale", 5).await;
    w.events().get(&w.event).await.unwrap(); // opened
    let racing =
        EndsBeforeFirstWrite { inner: w.store.clone(), event: w.event.clone(), at: w.clock.now(), done: false.into() };
    let err = Events::new(&racing, &*w.clock, &*w.ids).reserve(&w.event, &w.user(0)).await.unwrap_err();
    assert!(matches!(err, EventError::NotActive { status: EventStatus::Ended, .. }), "{err:?}");
    assert!(w.reservations(1).await.is_empty(), "nothing reserved");
    assert_eq!(w.state().await.taken, 0);
}

/// A payment must cover the place: a short payment, one in another currency, or one whose
/// line for the event is short takes nothing and is listed for refund, the hold left as it
/// was; the full price (or more) confirms.
pub async fn events_a_payment_must_cover_the_place(s: DynStore) {
    let w = World::new(s, "ev-price", 2).await;
    let events = w.events();
    let r = events.reserve(&w.event, &w.user(0)).await.unwrap();
    let short = events.pay(&w.user(0), &r.reservation_id, &paid("short-1", 100, "KRW")).await.unwrap();
    assert!(matches!(&short, Paid::RefundDue(why) if why.contains("priced KRW 50000")), "{short:?}");
    let usd = events.pay(&w.user(0), &r.reservation_id, &paid("usd-1", 50_000, "USD")).await.unwrap();
    assert!(matches!(&usd, Paid::RefundDue(why) if why.contains("USD")), "{usd:?}");
    let mut line = paid_in_full("line-1");
    line.lines = vec![(w.event.as_str().to_string(), 100), ("p-other".into(), 49_900)];
    let by_line = events.pay(&w.user(0), &r.reservation_id, &line).await.unwrap();
    assert!(matches!(&by_line, Paid::RefundDue(why) if why.contains("paid KRW 100")), "{by_line:?}");
    let still = events.reservation(&w.user(0), &r.reservation_id).await.unwrap().unwrap();
    assert_eq!(
        (still.status, still.hold_until),
        (ReservationStatus::Reserved, r.hold_until),
        "the hold is left as it was"
    );
    assert_eq!(w.state().await.confirmed, 0, "no place taken by a short payment");
    let reported: BTreeSet<String> = query_all(&*w.store, ev::refunds(&w.event))
        .await
        .unwrap()
        .iter()
        .filter_map(|i| i.str_attr("sk").map(str::to_string))
        .collect();
    assert_eq!(reported, ["line-1", "short-1", "usd-1"].map(String::from).into(), "listed for refund");
    assert_eq!(events.pay(&w.user(0), &r.reservation_id, &paid_in_full("full-1")).await.unwrap(), Paid::Confirmed);
    let r1 = events.reserve(&w.event, &w.user(1)).await.unwrap();
    let more = events.pay(&w.user(1), &r1.reservation_id, &paid("more-1", 60_000, "KRW")).await.unwrap();
    assert_eq!(more, Paid::Confirmed, "paying more than the price confirms");
    let e = w.state().await;
    assert_eq!((e.taken, e.confirmed), (2, 2));
    w.check(2).await;
}

/// A payment after the event's end takes no place even while the scheduler is behind (the
/// end is in the confirmation's condition), and a payment for a reservation nobody has is
/// reported for refund.
pub async fn events_a_payment_after_the_end_or_for_nobody_is_refunded(s: DynStore) {
    let w = World::new(s, "ev-late-end", 2).await;
    w.clock.set(at(ENDS) - Duration::minutes(5));
    let r = w.events().reserve(&w.event, &w.user(0)).await.unwrap();
    assert!(r.hold_until.unwrap() > at(ENDS), "the hold runs past the end");
    // The read finds the event open, the end moves to now before the write.
    let racing =
        EndsBeforeFirstWrite { inner: w.store.clone(), event: w.event.clone(), at: w.clock.now(), done: false.into() };
    let paid = Events::new(&racing, &*w.clock, &*w.ids)
        .pay(&w.user(0), &r.reservation_id, &paid_in_full("after-end-1"))
        .await
        .unwrap();
    assert!(matches!(&paid, Paid::RefundDue(why) if why.contains("ended")), "{paid:?}");
    assert_eq!(w.state().await.confirmed, 0, "nothing confirmed after the end");
    // With the scheduler behind (still ACTIVE) past the end.
    let w = World::new(w.store.clone(), "ev-late-end2", 2).await;
    w.clock.set(at(ENDS) - Duration::minutes(5));
    let r = w.events().reserve(&w.event, &w.user(0)).await.unwrap();
    w.clock.set(at(ENDS) + Duration::minutes(1));
    assert_eq!(w.state().await.status, EventStatus::Active, "no tick yet");
    let paid = w.events().pay(&w.user(0), &r.reservation_id, &paid_in_full("after-end-2")).await.unwrap();
    assert!(matches!(&paid, Paid::RefundDue(why) if why.contains("ended")), "{paid:?}");
    assert_eq!(w.state().await.confirmed, 0);
    assert_eq!(query_all(&*w.store, ev::refunds(&w.event)).await.unwrap().len(), 1, "listed for refund");
    // A reservation nobody has.
    let nobody = promo_shared::domain::ids::ReservationId::parse(format!("{}-nope", w.prefix)).unwrap();
    let paid = w.events().pay(&w.user(1), &nobody, &paid_in_full(&format!("{}-unmatched", w.prefix))).await.unwrap();
    assert_eq!(paid, Paid::UnknownReservation);
    let unmatched = query_all(&*w.store, ev::unmatched_refunds()).await.unwrap();
    let mine: Vec<_> =
        unmatched.iter().filter(|i| i.str_attr("sk") == Some(&format!("{}-unmatched", w.prefix))).collect();
    assert_eq!(mine.len(), 1, "reported for refund");
    assert_eq!(mine[0].str_attr("reservation_id"), Some(nobody.as_str()));
}

/// A payment event for `user` of the event's price carrying reservation `rid`.
fn payment_event(
    kind: &str,
    id: &str,
    user: &UserId,
    rid: &str,
    amount: i64,
    paid_amount: Option<i64>,
) -> PaymentEvent {
    let mut v = json!({"type": kind, "payment_id": id, "order_id": format!("o-{id}"), "user_id": user.as_str(),
        "amount": amount, "currency": "KRW", "occurred_at": OPENS, "reservation_id": rid});
    if let Some(p) = paid_amount {
        v["paid_amount"] = json!(p);
    }
    serde_json::from_value(v).unwrap()
}

/// A full refund or cancellation of a place's payment frees the place at once — the next in
/// line is promoted into it — and the counts add up; a partial refund keeps it; a refund that
/// lands before its payment leaves the payment nothing to confirm.
pub async fn events_a_refunded_payment_frees_its_place(s: DynStore) {
    let w = World::new(s, "ev-refund", 2).await;
    let issuer = Issuer::new(w.store.clone(), w.clock.clone(), w.ids.clone());
    let events = w.events();
    let a = events.reserve(&w.event, &w.user(0)).await.unwrap();
    let b = events.reserve(&w.event, &w.user(1)).await.unwrap();
    let waiting = events.reserve(&w.event, &w.user(2)).await.unwrap();
    assert_eq!(waiting.status, ReservationStatus::Waiting);
    let (pa, pb) = (format!("{}-pa", w.prefix), format!("{}-pb", w.prefix));
    let a_rid = a.reservation_id.as_str();
    let out = issuer.handle_payment(&payment_event("paid", &pa, &w.user(0), a_rid, 50_000, None)).await.unwrap();
    assert_eq!(out.reservation.unwrap().outcome, "confirmed");
    let b_rid = b.reservation_id.as_str();
    issuer.handle_payment(&payment_event("paid", &pb, &w.user(1), b_rid, 50_000, None)).await.unwrap();
    // A partial refund keeps the place.
    let partial = payment_event("refunded", &pb, &w.user(1), b_rid, 1_000, Some(50_000));
    assert_eq!(issuer.handle_payment(&partial).await.unwrap().reservation, None);
    assert_eq!(w.state().await.confirmed, 2);
    // A full refund frees it: the waiting shopper is promoted into it.
    let refund = payment_event("refunded", &pa, &w.user(0), a_rid, 50_000, None);
    let out = issuer.handle_payment(&refund).await.unwrap();
    assert_eq!(out.reservation.unwrap().outcome, "place_released");
    let a_now = events.reservation(&w.user(0), &a.reservation_id).await.unwrap().unwrap();
    assert_eq!(a_now.status, ReservationStatus::Refunded);
    let promoted = events.reservation(&w.user(2), &waiting.reservation_id).await.unwrap().unwrap();
    assert_eq!(promoted.status, ReservationStatus::Reserved, "the next in line holds the place");
    let e = w.state().await;
    assert_eq!((e.taken, e.confirmed, e.waiting), (2, 1, 0));
    let reports = query_all(&*w.store, ev::refunds(&w.event)).await.unwrap();
    assert!(reports.iter().any(|r| r.str_attr("sk") == Some(pa.as_str())), "listed in the event's refunds");
    // Again (a redelivery): nothing more moves.
    let out = issuer.handle_payment(&refund).await.unwrap();
    assert_eq!(out.reservation.unwrap().outcome, "already_released");
    assert_eq!(w.state().await.taken, 2);
    // A cancellation with nobody waiting gives the place back to stock.
    let cancel = payment_event("cancelled", &pb, &w.user(1), b_rid, 50_000, None);
    assert_eq!(issuer.handle_payment(&cancel).await.unwrap().reservation.unwrap().outcome, "place_released");
    let e = w.state().await;
    assert_eq!((e.taken, e.confirmed), (1, 0));
    // A refund that lands before its payment: the payment confirms nothing.
    let d = events.reserve(&w.event, &w.user(3)).await.unwrap();
    let pd = format!("{}-pd", w.prefix);
    let d_rid = d.reservation_id.as_str();
    issuer.handle_payment(&payment_event("cancelled", &pd, &w.user(3), d_rid, 50_000, None)).await.unwrap();
    let out = issuer.handle_payment(&payment_event("paid", &pd, &w.user(3), d_rid, 50_000, None)).await.unwrap();
    assert_eq!(out.reservation.unwrap().outcome, "payment_cancelled");
    let d_now = events.reservation(&w.user(3), &d.reservation_id).await.unwrap().unwrap();
    assert_eq!(d_now.status, ReservationStatus::Reserved, "the hold is left as it was");
    assert_eq!(w.state().await.confirmed, 0);
    assert!(matches!(events.release(&d_now, promo_shared::events::Why::Cancelled).await, Ok(Released::ToStock)));
    w.check(4).await;
}

/// Deploys: a new event is INACTIVE with its due entries; the same file again writes
/// nothing; a stock below the places taken and an id another campaign owns are refused.
pub async fn events_deploys_create_redefine_and_refuse(s: DynStore) {
    let w = World::new(s, "ev-deploy", 3).await;
    assert_eq!(w.state().await.status, EventStatus::Inactive, "deployed INACTIVE");
    let before = w.events().get(&w.event).await.unwrap();
    assert_eq!(before.status, EventStatus::Active, "a read at the opening applies the due transition");
    let deploy_clock = ManualClock::new(at("2026-11-10T00:00:00Z"));
    let c = event_campaign(&w.prefix, 3, "10m", 1);
    let again = campaigns::deploy_as(&*w.store, &deploy_clock, &c, "t").await.unwrap();
    assert!(again.unchanged(), "the same file changes nothing");
    for n in 0..2 {
        w.events().reserve(&w.event, &w.user(n)).await.unwrap();
    }
    let smaller = event_campaign(&w.prefix, 1, "10m", 1);
    let err = campaigns::deploy(&*w.store, &deploy_clock, &smaller).await.unwrap_err().to_string();
    assert!(err.contains("below the 2 places already taken"), "{err}");
    let bigger = event_campaign(&w.prefix, 5, "10m", 1);
    campaigns::deploy(&*w.store, &deploy_clock, &bigger).await.unwrap();
    assert_eq!(w.state().await.stock(), 5);
    let mut thief: serde_json::Value =
        serde_json::to_value(event_campaign(&format!("{}-b", w.prefix), 1, "1m", 1)).unwrap();
    thief["events"][0]["id"] = json!(w.event.as_str());
    let thief: Campaign = serde_json::from_value(thief).unwrap();
    let err = campaigns::deploy(&*w.store, &deploy_clock, &thief).await.unwrap_err().to_string();
    assert!(err.contains("already used by campaign"), "{err}");
    // Dropping an event that is still open is refused.
    let mut gone = serde_json::to_value(&bigger).unwrap();
    gone["events"] = json!([]);
    let gone: Campaign = serde_json::from_value(gone).unwrap();
    let err = campaigns::deploy(&*w.store, &deploy_clock, &gone).await.unwrap_err().to_string();
    assert!(err.contains("cancel it"), "{err}");
}

#[macro_export]
macro_rules! events_conformance_tests {
    ($factory:path, $scale:expr $(, #[$attr:meta])* $(,)?) => {
        $crate::events_conformance_tests!(@scaled $factory, $scale, [$(#[$attr])*],
            events_reservations_race_fill_stock_then_waitlist,
            events_concurrent_cancellations_payments_and_expiries_stay_exact);
        $crate::events_conformance_tests!(@cases $factory, [$(#[$attr])*],
            events_bad_input_is_refused_and_writes_nothing, events_expiry_promotes_the_waitlist_in_order,
            events_eight_concurrent_ticks_change_nothing_more_than_one, events_a_tick_after_a_day_of_downtime,
            events_a_tick_stops_at_its_budget_and_the_next_continues, events_a_stale_read_cannot_reserve_after_the_end,
            events_a_payment_racing_its_own_expiry, events_time_is_in_the_conditions,
            events_deploys_create_redefine_and_refuse, events_a_payment_must_cover_the_place,
            events_a_payment_after_the_end_or_for_nobody_is_refunded, events_a_refunded_payment_frees_its_place);
        $crate::events_conformance_tests!(@scaled $factory, $scale, [$(#[$attr])*],
            events_in_lines_race_fill_stock_then_waitlist,
            events_in_lines_concurrent_cancellations_payments_and_expiries_stay_exact,
            events_in_lines_nobody_waits_while_a_place_is_free, events_a_hot_drop_under_a_per_item_write_limit);
        $crate::events_conformance_tests!(@cases $factory, [$(#[$attr])*], events_in_lines_promote_in_arrival_order,
            events_in_lines_a_place_freed_before_joining_a_line_is_taken,
            events_in_lines_a_shopper_joining_while_a_place_is_given_back_gets_it);
    };
    (@scaled $factory:path, $scale:expr, $attrs:tt, $($case:ident),* $(,)?) => {
        $( $crate::events_conformance_tests!(@one_scaled $factory, $scale, $attrs, $case); )*
    };
    (@cases $factory:path, $attrs:tt, $($case:ident),* $(,)?) => {
        $( $crate::events_conformance_tests!(@one $factory, $attrs, $case); )*
    };
    (@one_scaled $factory:path, $scale:expr, [$(#[$attr:meta])*], $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn $case() {
            $crate::events::$case($factory().await, $scale).await;
        }
    };
    (@one $factory:path, [$(#[$attr:meta])*], $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn $case() {
            $crate::events::$case($factory().await).await;
        }
    };
}
