//! Limited events: reservations, the waitlist, expiry and promotion, payments — exact under
//! any concurrency and whenever the scheduler last ran.
//!
//! # How the places are counted
//!
//! One item per event carries `taken` (places held or paid), `confirmed`, and the waitlist's
//! `tail` (positions handed out), `head` (the next position to promote) and `waiting`.
//! Every write that moves a place is one transaction conditioned on that item and on the
//! **current time**, which the writer reads from the injected clock and puts in the
//! condition itself:
//!
//! - **Reserve** (a place is free): `taken < stock`, ACTIVE, `starts_at <= now < ends_at`;
//!   with it the reservation, the shopper's marker (no other active reservation, fewer
//!   places bought than `per_user_limit`), the open-hold entry and the hold's due entry.
//! - **Wait** (none is free): the position comes from `ADD tail 1` under `taken >= stock`
//!   (so nobody waits while a place is free), then the waitlist entry is put under
//!   `NotExists`. A position whose entry never lands (a crash, a duplicate request) is voided
//!   by whoever reaches it at the head, which makes a late landing fail and retry: nobody is
//!   promoted into a position that is not there, nobody waits behind a hole.
//! - **Release** (a hold expired, `hold_until <= now` in the condition, or its shopper
//!   cancelled): one transaction ends the hold and either promotes the head of the waitlist
//!   into the place (`head` advanced under `head = what was read`, the event still open at
//!   `now`: `taken` unchanged) or gives the place back (`taken − 1` under `head` and `tail`
//!   as read: nobody is waiting). A hold is never extended: a retried reservation finds the
//!   shopper's marker and gets the same reservation back.
//! - **Confirm** (a payment carrying the reservation): only a payment that covers the place's
//!   price in the event's currency, under `hold_until > now` and `ends_at > now`, and while
//!   the payment is not cancelled or refunded (a check on its state item, so a refund that
//!   lands first wins); the confirmation records which place the payment paid for. A payment
//!   after its hold expired takes a place only if one is free, nobody waits for it and the
//!   event has not ended. Any other payment — short, in another currency, after the end, for
//!   a place no longer there, for a reservation nobody has — takes nothing and is reported
//!   for refund (the hold left as it was).
//! - **Refund** (the place's payment cancelled or fully refunded): the place is freed like a
//!   cancelled hold — the head of the waitlist is promoted into it, or it goes back to stock
//!   — and `confirmed − 1` in the same transaction.
//!
//! So `0 <= taken <= stock`, `confirmed <= taken` and positions are promoted in order, at
//! most once, only while the event is open — by construction of the conditions, whatever
//! runs concurrently and however late the scheduler is. The scheduler (`events::scheduler`)
//! only finds the work that is due; the request path does the same work when it meets it
//! (a reservation on a full event first releases the expired holds it finds).

pub mod items;
pub mod lines;
pub mod scheduler;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use thiserror::Error;

use crate::domain::campaign::Campaign;
use crate::domain::ids::{EventId, PaymentId, ReservationId, UserId};
use crate::domain::limited_event::{EventSpec, EventStatus, ReservationStatus, hold_expired};
use crate::domain::money::Money;
use crate::domain::payment::PaymentEvent;
use crate::events::items::{
    self as ev, ACTIVE, ARRIVED_AT, BOUGHT, CONFIRMED, Due, DueEntry, EventState, FULL, HEAD, HOLD_UNTIL, Notice,
    Reservation, STATUS, TAIL, TAKEN, WAITING, WAITLIST_CLOSED,
};
use crate::events::lines::{Line, Lines};
use crate::payments::items::payment as payment_state;
use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::store::{Cond, Item, ItemExt, Key, Store, StoreError, Tx, TxOp, Update, query_all};

/// How often a write that lost a race (another writer moved the event meanwhile) reads and
/// tries again before answering 503.
const ATTEMPTS: u32 = 200;
/// How often a reservation whose write the store throttled (its item past its write capacity)
/// tries again before answering 503: a hot event is not made hotter by its own retries (the
/// store's client has retried with backoff already).
const THROTTLED_ATTEMPTS: u32 = 3;

#[derive(Debug, Error)]
pub enum EventError {
    #[error("event `{0}` does not exist")]
    NotFound(EventId),
    #[error("event `{event}` is not open for reservations: {why}")]
    NotActive { event: EventId, status: EventStatus, why: String },
    #[error("event `{0}` is sold out")]
    SoldOut(EventId),
    #[error("you already have reservation `{rid}` for event `{event}`")]
    AlreadyReserved { event: EventId, rid: String },
    #[error("you have bought the {limit} place(s) event `{event}` allows per shopper")]
    LimitReached { event: EventId, limit: u32 },
    #[error("reservation `{0}` does not exist")]
    ReservationNotFound(String),
    #[error("reservation `{rid}` is {status}: only a RESERVED or WAITING reservation can be cancelled")]
    NotCancellable { rid: ReservationId, status: &'static str },
    #[error("event `{event}` is {}: {why}", status.as_str())]
    Refused { event: EventId, status: EventStatus, why: String },
    /// Lost the race too many times in a row: retry shortly.
    #[error("`{0}` is busy; retry shortly")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The use cases over one store, clock and id source.
pub struct Events<'a, S: ?Sized> {
    pub store: &'a S,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn IdGen,
}

/// What a release did with the freed place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Released {
    /// The head of the waitlist now holds it.
    Promoted(ReservationId),
    /// Back in stock (nobody waiting, or the event no longer open).
    ToStock,
    /// Someone else released it first, or it was paid meanwhile.
    AlreadyDone,
}

/// Why a place is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// A hold not paid in time.
    Expired,
    /// A hold its shopper (or the event's cancellation) gave up.
    Cancelled,
    /// A paid place whose payment was cancelled or fully refunded.
    Refunded,
}

/// What a payment brings to a place: its id, its total and its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacePayment {
    pub payment_id: PaymentId,
    /// The payment's total, in its currency.
    pub amount: Money,
    /// Its lines as (product id, unit price × quantity), when it carries any.
    pub lines: Vec<(String, i64)>,
}

impl PlacePayment {
    /// A payment of `amount` without lines.
    pub fn new(payment_id: PaymentId, amount: Money) -> PlacePayment {
        PlacePayment { payment_id, amount, lines: Vec::new() }
    }

    pub fn of(event: &PaymentEvent) -> PlacePayment {
        PlacePayment {
            payment_id: event.payment_id.clone(),
            amount: event.amount,
            lines: event
                .items
                .iter()
                .map(|i| {
                    (i.product_id.as_str().to_string(), i.unit_price.minor().saturating_mul(i64::from(i.quantity)))
                })
                .collect(),
        }
    }

    /// Why this payment does not pay for a place of `e`, if it does not: it must be in the
    /// event's currency and cover the price of the place — by the event's line where the
    /// payment carries one (its product id is the event id), else by its total.
    pub fn shortfall(&self, e: &EventState) -> Option<String> {
        if self.amount.currency.code() != e.currency {
            return Some(format!("paid in {} for a place priced in {}", self.amount.currency.code(), e.currency));
        }
        let price = e.spec.price.minor();
        let line: Option<i64> = self
            .lines
            .iter()
            .filter(|(product, _)| product == e.id().as_str())
            .map(|(_, total)| *total)
            .reduce(i64::saturating_add);
        let paid = line.unwrap_or(self.amount.amount.minor());
        (paid < price).then(|| {
            let price = Money { amount: e.spec.price, currency: self.amount.currency };
            let paid = Money::new(paid, self.amount.currency).map_or_else(|_| paid.to_string(), |m| m.display());
            format!("paid {paid} for a place priced {}", price.display())
        })
    }
}

/// What a payment carrying a reservation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paid {
    /// Paid within its hold.
    Confirmed,
    /// Already confirmed by this payment (a redelivery).
    AlreadyConfirmed,
    /// Paid after the hold expired, and a place was free: confirmed.
    ConfirmedLate,
    /// No place for it (late, short, after the end, no place left): reported for refund.
    RefundDue(String),
    /// No such reservation of this shopper: reported for refund.
    UnknownReservation,
    /// The payment was cancelled or refunded before it could confirm: nothing taken.
    PaymentCancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Event,
    Marker,
    Reservation,
    Other,
    Promoted,
    Wait,
}

fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// The shopper marker may take a new active reservation: none active, fewer bought than the limit.
fn marker_free(limit: u32) -> Cond {
    Cond::Or(vec![
        Cond::NotExists,
        Cond::And(vec![
            Cond::AttrNotExists(ACTIVE.into()),
            Cond::Or(vec![Cond::AttrNotExists(BOUGHT.into()), Cond::Lt(BOUGHT.into(), i64::from(limit))]),
        ]),
    ])
}

impl<'a, S: Store + ?Sized> Events<'a, S> {
    pub fn new(store: &'a S, clock: &'a dyn Clock, ids: &'a dyn IdGen) -> Self {
        Events { store, clock, ids }
    }

    pub async fn read(&self, id: &EventId) -> Result<Option<EventState>, StoreError> {
        match self.store.get(&ev::event_key(id)).await? {
            Some(item) => Ok(Some(EventState::from_item(&item)?)),
            None => Ok(None),
        }
    }

    async fn read_eventual(&self, id: &EventId) -> Result<EventState, EventError> {
        match self.store.get_eventual(&ev::event_key(id)).await? {
            Some(item) => Ok(EventState::from_item(&item)?),
            None => Err(EventError::NotFound(id.clone())),
        }
    }

    async fn read_some(&self, id: &EventId) -> Result<EventState, EventError> {
        self.read(id).await?.ok_or_else(|| EventError::NotFound(id.clone()))
    }

    /// The event as it stands now, its due status transition applied first (so a late
    /// scheduler never shows a stale status).
    /// `waiting` counts every line of the waitlist.
    pub async fn get(&self, id: &EventId) -> Result<EventState, EventError> {
        let mut e = self.read_some(id).await?;
        if e.spec.due_transition(e.status, self.clock.now()).is_some() {
            self.advance(&e).await?;
            e = self.read_some(id).await?;
        }
        if e.lines > 1 {
            e.waiting = Lines::read(self.store, &e).await?.waiting();
        }
        Ok(e)
    }

    /// Applies the transition due at now, if any, by a write conditioned on the status read
    /// and on the time; ENDED also schedules the waitlist's closing. Returns the status after.
    pub async fn advance(&self, e: &EventState) -> Result<EventStatus, StoreError> {
        let now = self.clock.now();
        let n = secs(now);
        let Some(to) = e.spec.due_transition(e.status, now) else { return Ok(e.status) };
        let time = match to {
            EventStatus::Active => Cond::And(vec![Cond::Le(ev::STARTS_AT.into(), n), Cond::Gt(ev::ENDS_AT.into(), n)]),
            _ => Cond::Le(ev::ENDS_AT.into(), n),
        };
        let mut ops = vec![TxOp::Update {
            key: ev::event_key(e.id()),
            updates: vec![Update::set(STATUS, to.as_str()), Update::set("updated_at", n)],
            cond: Some(Cond::And(vec![ev::is(e.status), time])),
        }];
        if to == EventStatus::Ended {
            ops.push(DueEntry { at: n, what: Due::CloseWaitlist(e.id().clone()) }.put());
        }
        match self.store.transact(ops, None).await {
            Ok(()) => {
                tracing::info!(event = %e.id(), from = e.status.as_str(), to = to.as_str(), "event status changed");
                Ok(to)
            }
            // Someone else moved it first (or the definition changed): what is stored stands.
            Err(StoreError::TransactionCancelled { .. }) => Ok(self.read(e.id()).await?.map_or(to, |x| x.status)),
            Err(err) => Err(err),
        }
    }

    /// Cancels the event (a marketer): INACTIVE or ACTIVE → CANCELLED; no more reservations,
    /// promotions or late places; the waitlist closes (its shoppers told). Paid places stay
    /// paid: `confirmed` says how many to refund.
    pub async fn cancel_event(&self, id: &EventId, by: &str) -> Result<EventState, EventError> {
        for _ in 0..ATTEMPTS {
            let e = self.read_some(id).await?;
            if e.status == EventStatus::Cancelled {
                return Ok(e);
            }
            if e.status == EventStatus::Ended {
                return Err(EventError::Refused {
                    event: id.clone(),
                    status: e.status,
                    why: "it has ended and can no longer be cancelled".into(),
                });
            }
            let n = secs(self.clock.now());
            let ops = vec![
                TxOp::Update {
                    key: ev::event_key(id),
                    updates: vec![
                        Update::set(STATUS, EventStatus::Cancelled.as_str()),
                        Update::set("cancelled_by", by),
                        Update::set("updated_at", n),
                    ],
                    cond: Some(ev::is(e.status)),
                },
                DueEntry { at: n, what: Due::CloseWaitlist(id.clone()) }.put(),
            ];
            match self.store.transact(ops, None).await {
                Ok(()) => {
                    tracing::info!(event = %id, by, "event cancelled");
                    return self.read_some(id).await;
                }
                Err(err) if err.is_retryable() => self.pause().await,
                Err(err) => return Err(err.into()),
            }
        }
        Err(EventError::Busy(id.to_string()))
    }

    /// Reserves a place for `user`: RESERVED with `hold_until` while places last, otherwise
    /// WAITING with a position. One active reservation per shopper and event.
    pub async fn reserve(&self, id: &EventId, user: &UserId) -> Result<Reservation, EventError> {
        let mut throttled = 0;
        for attempt in 0..ATTEMPTS {
            if throttled >= THROTTLED_ATTEMPTS {
                break;
            }
            // The first read only chooses what to try (a hold or a place in line; the write's
            // conditions decide), so it may lag: a hot event item serves twice as many such
            // reads. After a failed try, a consistent one.
            let mut e = match attempt {
                0 => self.read_eventual(id).await?,
                _ => self.read_some(id).await?,
            };
            let now = self.clock.now();
            if e.spec.due_transition(e.status, now).is_some() {
                self.advance(&e).await?;
                e = self.read_some(id).await?;
            }
            self.check_open(&e, now)?;
            if e.taken < e.stock() {
                // The transaction checks the shopper's marker itself.
                match self.try_hold(&e, user, now).await? {
                    Attempt::Done(r) => return Ok(r),
                    Attempt::Again => continue,
                    Attempt::Throttled => {
                        throttled += 1;
                        continue;
                    }
                }
            }
            // Full. A shopper who may not reserve is told so before taking a position (a
            // position taken and then refused would only be voided later).
            let marker = self.store.get(&ev::shopper_key(id, user)).await?;
            if let Some(err) = marker_refusal(&e, marker.as_ref()) {
                return Err(err);
            }
            // An expired hold found here frees its place at once.
            if self.release_expired_holds(&e, 4).await? > 0 {
                continue;
            }
            match self.try_wait(&e, user, now).await? {
                Attempt::Done(r) => return Ok(r),
                Attempt::Again => {}
                Attempt::Throttled => throttled += 1,
            }
        }
        Err(EventError::Busy(id.to_string()))
    }

    fn check_open(&self, e: &EventState, now: DateTime<Utc>) -> Result<(), EventError> {
        let why = match e.status {
            EventStatus::Active if now < e.spec.ends_at && now >= e.spec.starts_at => return Ok(()),
            EventStatus::Inactive | EventStatus::Active if now < e.spec.starts_at => {
                format!("it opens at {}", e.spec.starts_at.to_rfc3339())
            }
            EventStatus::Cancelled => "it was cancelled".to_string(),
            _ => format!("it ended at {}", e.spec.ends_at.to_rfc3339()),
        };
        Err(EventError::NotActive { event: e.id().clone(), status: e.status, why })
    }

    async fn try_hold(&self, e: &EventState, user: &UserId, now: DateTime<Utc>) -> Result<Attempt, EventError> {
        let n = secs(now);
        let rid = ReservationId::parse(self.ids.new_id()).map_err(|err| StoreError::Invalid(err.to_string()))?;
        let hold_until = n + e.spec.hold.seconds();
        let r = Reservation {
            reservation_id: rid.clone(),
            event_id: e.id().clone(),
            user_id: user.clone(),
            status: ReservationStatus::Reserved,
            created_at: at(n),
            hold_until: Some(at(hold_until)),
            position: None,
            payment_id: None,
            promoted_at: None,
        };
        // With the waitlist in lines, the hold that takes the last place marks every line full
        // (see `lines`): it is the one that read `taken` one short of the stock and is
        // conditioned on exactly that; any other leaves the last place alone.
        let last = e.lines > 1 && e.taken + 1 == e.stock();
        let taken = match (e.lines > 1, last) {
            (false, _) => Cond::Lt(TAKEN.into(), e.stock()),
            (true, true) => Cond::eq(TAKEN, e.taken),
            (true, false) => Cond::Lt(TAKEN.into(), e.stock() - 1),
        };
        let mut tx = Tx::new()
            .with(
                Slot::Event,
                TxOp::Update {
                    key: ev::event_key(e.id()),
                    updates: vec![Update::Add(TAKEN.into(), 1)],
                    cond: Some(Cond::And(vec![ev::open_at(n), taken])),
                },
            )
            .with(Slot::Marker, self.take_marker(e, user, &rid))
            .with(Slot::Reservation, TxOp::Put { item: r.to_item(), cond: Some(Cond::NotExists) })
            .with(Slot::Other, TxOp::Put { item: hold_item(e.id(), hold_until, user, &rid), cond: None })
            .with(Slot::Wait, expire_entry(e.id(), user, &rid, hold_until).put());
        if last {
            for op in lines::set_full(e, true) {
                tx.push(Slot::Other, op);
            }
        }
        let (ops, slots) = tx.split();
        match self.store.transact(ops, None).await {
            Ok(()) => Ok(Attempt::Done(r)),
            Err(err) if slots.failed(&err, Slot::Marker) => {
                Err(marker_refusal(e, slots.found(&err, Slot::Marker)).unwrap_or(EventError::Busy(e.id().to_string())))
            }
            Err(err) if slots.failed(&err, Slot::Event) => {
                // Full now, or no longer open: read again and decide.
                Ok(Attempt::Again)
            }
            Err(StoreError::Throttled(_)) => {
                self.pause().await;
                Ok(Attempt::Throttled)
            }
            Err(err) if err.is_retryable() => {
                self.pause().await;
                Ok(Attempt::Again)
            }
            Err(err) => Err(err.into()),
        }
    }

    fn take_marker(&self, e: &EventState, user: &UserId, rid: &ReservationId) -> TxOp {
        TxOp::Update {
            key: ev::shopper_key(e.id(), user),
            updates: vec![Update::set(ACTIVE, rid.as_str())],
            cond: Some(marker_free(e.spec.per_user_limit)),
        }
    }

    async fn try_wait(&self, e: &EventState, user: &UserId, now: DateTime<Utc>) -> Result<Attempt, EventError> {
        let n = secs(now);
        if e.waitlist_closed || e.sold_out() {
            return Err(EventError::SoldOut(e.id().clone()));
        }
        let line = self.pick_line(e);
        // One line is the event item, whose own counters say the event is full and open; a
        // line item's `full` flag is never set while a place is free (see `lines`).
        let cond = match e.lines {
            ..=1 => Cond::And(vec![
                ev::open_at(n),
                Cond::Ge(TAKEN.into(), e.stock()),
                Cond::Lt(CONFIRMED.into(), e.stock()),
                Cond::AttrNotExists(WAITLIST_CLOSED.into()),
            ]),
            _ => Cond::And(vec![Cond::eq(FULL, 1), Cond::AttrNotExists(WAITLIST_CLOSED.into())]),
        };
        let taken = self
            .store
            .update(
                &lines::key(e.id(), line, e.lines),
                &[Update::Add(TAIL.into(), 1), Update::Add(WAITING.into(), 1)],
                Some(cond),
            )
            .await;
        let position = match taken {
            Ok(item) => lines::position(item.i64_attr(TAIL).unwrap_or(0), line, e.lines),
            Err(StoreError::ConditionFailed { found }) => {
                // A line whose flag disagrees with the event read as full (a deploy changed the
                // stock, or the line was never written): repaired from the event item.
                let closed = found.as_ref().is_some_and(|i| i.get(WAITLIST_CLOSED).is_some());
                if e.lines > 1 && !closed {
                    lines::sync_full(self.store, e).await?;
                }
                return Ok(Attempt::Again);
            }
            Err(StoreError::Throttled(_)) => {
                self.pause().await;
                return Ok(Attempt::Throttled);
            }
            Err(err) if err.is_retryable() => {
                self.pause().await;
                return Ok(Attempt::Again);
            }
            Err(err) => return Err(err.into()),
        };
        let rid = ReservationId::parse(self.ids.new_id()).map_err(|err| StoreError::Invalid(err.to_string()))?;
        let r = Reservation {
            reservation_id: rid.clone(),
            event_id: e.id().clone(),
            user_id: user.clone(),
            status: ReservationStatus::Waiting,
            created_at: at(n),
            hold_until: None,
            position: Some(position),
            payment_id: None,
            promoted_at: None,
        };
        let mut wait = ev::wait_key(e.id(), position).item();
        wait.insert(STATUS.into(), "WAITING".into());
        wait.insert("user_id".into(), user.as_str().into());
        wait.insert("reservation_id".into(), rid.as_str().into());
        wait.insert(ARRIVED_AT.into(), now.timestamp_millis().into());
        let tx = Tx::new()
            .with(Slot::Marker, self.take_marker(e, user, &rid))
            .with(Slot::Reservation, TxOp::Put { item: r.to_item(), cond: Some(Cond::NotExists) })
            .with(Slot::Wait, TxOp::Put { item: wait, cond: Some(Cond::NotExists) });
        let (ops, slots) = tx.split();
        for _ in 0..ATTEMPTS {
            match self.store.transact(ops.clone(), None).await {
                Ok(()) => return Ok(Attempt::Done(r)),
                // The position is left for the head to void.
                Err(err) if slots.failed(&err, Slot::Marker) => {
                    return Err(marker_refusal(e, slots.found(&err, Slot::Marker))
                        .unwrap_or(EventError::Busy(e.id().to_string())));
                }
                // Voided before it landed (a place came free meanwhile): start again.
                Err(err) if slots.failed(&err, Slot::Wait) => return Ok(Attempt::Again),
                Err(err) if err.is_retryable() => self.pause().await,
                Err(err) => return Err(err.into()),
            }
        }
        Err(EventError::Busy(e.id().to_string()))
    }

    /// The line an arrival joins: one at random (no read: under a burst every read would see
    /// the same lines and send everyone to the same one). Promotion follows arrival time
    /// across lines, so how long each line is does not decide who is served first.
    fn pick_line(&self, e: &EventState) -> i64 {
        match e.lines {
            ..=1 => 0,
            n => (self.ids.random_u64() % n.unsigned_abs()) as i64,
        }
    }

    /// Releases up to `limit` holds of `e` whose deadline has passed; how many it released.
    pub async fn release_expired_holds(&self, e: &EventState, limit: usize) -> Result<usize, EventError> {
        let now = self.clock.now();
        let page = self.store.query(&ev::holds(e.id()).limit(limit)).await?;
        let mut released = 0;
        for item in page.items {
            let Some(until) = item.i64_attr(HOLD_UNTIL) else { continue };
            if until > secs(now) {
                break;
            }
            let (Some(user), Some(rid)) = (item.str_attr("user_id"), item.str_attr("reservation_id")) else { continue };
            let (Ok(user), Ok(rid)) = (UserId::parse(user), ReservationId::parse(rid)) else { continue };
            match self.reservation(&user, &rid).await? {
                Some(r) if r.status == ReservationStatus::Reserved => {
                    if self.release(&r, Why::Expired).await? != Released::AlreadyDone {
                        released += 1;
                    }
                }
                // A stale entry (paid or released without it): drop it.
                _ => {
                    self.store.delete(&Key::of(&item)?, None).await?;
                }
            }
        }
        Ok(released)
    }

    pub async fn reservation(&self, user: &UserId, rid: &ReservationId) -> Result<Option<Reservation>, StoreError> {
        match self.store.get(&ev::reservation_key(user, rid)).await? {
            Some(item) => Ok(Some(Reservation::from_item(&item)?)),
            None => Ok(None),
        }
    }

    /// A shopper's reservations, oldest first.
    pub async fn reservations_of(&self, user: &UserId) -> Result<Vec<Reservation>, StoreError> {
        query_all(self.store, ev::reservations_of(user)).await?.iter().map(Reservation::from_item).collect()
    }

    /// Ends RESERVED `r` (expired at now, or cancelled) — or CONFIRMED `r` whose payment was
    /// refunded — and hands its place to the head of the waitlist, or back to stock; see the
    /// module docs.
    pub async fn release(&self, r: &Reservation, why: Why) -> Result<Released, EventError> {
        let id = &r.event_id;
        let hold_until = r.hold_until.map_or(0, secs);
        let refunded = why == Why::Refunded;
        for _ in 0..ATTEMPTS {
            let e = self.read_some(id).await?;
            let now = self.clock.now();
            let n = secs(now);
            if why == Why::Expired && r.hold_until.is_some_and(|h| !hold_expired(h, now)) {
                return Ok(Released::AlreadyDone);
            }
            let (from, to, also) = match why {
                Why::Expired => {
                    (ReservationStatus::Reserved, ReservationStatus::Expired, Some(Cond::Le(HOLD_UNTIL.into(), n)))
                }
                Why::Cancelled => (ReservationStatus::Reserved, ReservationStatus::Cancelled, None),
                Why::Refunded => (
                    ReservationStatus::Confirmed,
                    ReservationStatus::Refunded,
                    Some(Cond::eq("payment_id", r.payment_id.as_deref().unwrap_or_default())),
                ),
            };
            let mut end_cond = vec![Cond::eq(STATUS, from.as_str())];
            end_cond.extend(also);
            // A paid place counts in `bought` and `confirmed`; a hold in the shopper's `active`.
            let marker = if refunded {
                TxOp::Update {
                    key: ev::shopper_key(id, &r.user_id),
                    updates: vec![Update::Add(BOUGHT.into(), -1)],
                    cond: Some(Cond::Ge(BOUGHT.into(), 1)),
                }
            } else {
                TxOp::Update {
                    key: ev::shopper_key(id, &r.user_id),
                    updates: vec![Update::Remove(ACTIVE.into())],
                    cond: Some(Cond::eq(ACTIVE, r.reservation_id.as_str())),
                }
            };
            let unconfirm = refunded.then(|| Update::Add(CONFIRMED.into(), -1));
            let mut tx = Tx::new()
                .with(
                    Slot::Reservation,
                    TxOp::Update {
                        key: r.key(),
                        updates: vec![Update::set(STATUS, to.as_str()), Update::set("ended_at", n)],
                        cond: Some(Cond::And(end_cond)),
                    },
                )
                .with(Slot::Marker, marker);
            if refunded {
                let payment = r.payment_id.as_deref().unwrap_or_default();
                let why = "the payment was cancelled or refunded: the place was freed";
                let mut report = refund_report(ev::refund_key(id, payment), &r.user_id, &r.reservation_id, why, n);
                report.insert("refunded".into(), true.into());
                tx.push(Slot::Other, TxOp::Put { item: report, cond: None });
            } else {
                tx.push(Slot::Other, TxOp::Delete { key: ev::hold_key(id, hold_until, &r.reservation_id), cond: None });
            }
            let promotable = e.status == EventStatus::Active && now < e.spec.ends_at && !e.waitlist_closed;
            let waitlist = Lines::read(self.store, &e).await?;
            let next = match promotable && !waitlist.is_empty() {
                true => Some(self.next_in_line(&e, &waitlist).await?),
                false => None,
            };
            let outcome = if let Some((line, next)) = next {
                match next {
                    Head::Moved => continue,
                    Head::Waiting { user, rid } => {
                        let promoted_until = n + e.spec.hold.seconds();
                        tx.push(
                            Slot::Promoted,
                            TxOp::Update {
                                key: ev::reservation_key(&user, &rid),
                                updates: vec![
                                    Update::set(STATUS, ReservationStatus::Reserved.as_str()),
                                    Update::set(HOLD_UNTIL, promoted_until),
                                    Update::set("promoted_at", n),
                                ],
                                cond: Some(Cond::eq(STATUS, ReservationStatus::Waiting.as_str())),
                            },
                        );
                        tx.push(
                            Slot::Wait,
                            TxOp::Update {
                                key: ev::wait_key(id, lines::position(line.head, line.index, e.lines)),
                                updates: vec![Update::set(STATUS, "PROMOTED")],
                                cond: Some(Cond::eq(STATUS, "WAITING")),
                            },
                        );
                        // The event stays open and its waitlist too; `taken` is unchanged (the
                        // place passes from one shopper to the next).
                        let open = vec![ev::open_at(n), Cond::AttrNotExists(WAITLIST_CLOSED.into())];
                        let (line_key, mut moved, line_cond) = line.advance(-1);
                        if line.on_event() {
                            moved.extend(unconfirm.clone());
                            let cond = [line_cond].into_iter().chain(open).collect();
                            tx.push(
                                Slot::Event,
                                TxOp::Update { key: line_key, updates: moved, cond: Some(Cond::And(cond)) },
                            );
                        } else {
                            tx.push(
                                Slot::Event,
                                event_write(id, unconfirm.clone().into_iter().collect(), Cond::And(open)),
                            );
                            tx.push(Slot::Other, TxOp::Update { key: line_key, updates: moved, cond: Some(line_cond) });
                        }
                        tx.push(
                            Slot::Other,
                            TxOp::Put { item: hold_item(id, promoted_until, &user, &rid), cond: None },
                        );
                        tx.push(Slot::Other, expire_entry(id, &user, &rid, promoted_until).put());
                        tx.push(
                            Slot::Other,
                            DueEntry { at: n, what: Due::Notify { user, rid: rid.clone(), what: Notice::Promoted } }
                                .put(),
                        );
                        Released::Promoted(rid)
                    }
                }
            } else {
                tx.push(
                    Slot::Event,
                    TxOp::Update {
                        key: ev::event_key(id),
                        updates: [Update::Add(TAKEN.into(), -1)].into_iter().chain(unconfirm.clone()).collect(),
                        cond: Some(Cond::And(vec![
                            Cond::eq(HEAD, e.head),
                            Cond::eq(TAIL, e.tail),
                            Cond::eq(STATUS, e.status.as_str()),
                            match e.waitlist_closed {
                                true => Cond::AttrExists(WAITLIST_CLOSED.into()),
                                false => Cond::AttrNotExists(WAITLIST_CLOSED.into()),
                            },
                        ])),
                    },
                );
                // A place back in stock: no line is full any more, and none moved since read
                // (so nobody joined a line while this place was being freed).
                for op in waitlist.set_full_as_read(false) {
                    tx.push(Slot::Other, op);
                }
                Released::ToStock
            };
            let (ops, slots) = tx.split();
            match self.store.transact(ops, None).await {
                Ok(()) => {
                    tracing::info!(event = %id, reservation = %r.reservation_id, ?why, outcome = ?outcome, "place released");
                    // The due entry of the ended hold is dropped by the scheduler when it comes up.
                    return Ok(outcome);
                }
                Err(err) if slots.failed(&err, Slot::Reservation) => return Ok(Released::AlreadyDone),
                Err(err) if err.is_retryable() => self.pause().await,
                // The event or the head moved: read again.
                Err(StoreError::TransactionCancelled { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Err(EventError::Busy(id.to_string()))
    }

    /// The waitlist entry at the front of `line` of `e`, skipping (and advancing past) entries
    /// that left, and voiding a position whose entry never landed.
    async fn head_entry(&self, e: &EventState, line: &Line) -> Result<Head, EventError> {
        match self.front_entry(e, line).await? {
            Front::Waiting { user, rid, .. } => Ok(Head::Waiting { user, rid }),
            other => self.move_past(e, line, other).await,
        }
    }

    /// The next shopper to promote: the earliest arrival at the front of any line (positions
    /// break ties). A front that left is skipped and one that never landed is voided first
    /// (then `Moved`: read again).
    async fn next_in_line(&self, e: &EventState, waitlist: &Lines) -> Result<(Line, Head), EventError> {
        let mut best: Option<((i64, i64), Line, UserId, ReservationId)> = None;
        for line in waitlist.lines.iter().filter(|l| !l.is_empty()) {
            match self.front_entry(e, line).await? {
                Front::Waiting { user, rid, arrived_at } => {
                    let rank = (arrived_at, lines::position(line.head, line.index, e.lines));
                    if best.as_ref().is_none_or(|(r, ..)| rank < *r) {
                        best = Some((rank, line.clone(), user, rid));
                    }
                }
                other => return Ok((line.clone(), self.move_past(e, line, other).await?)),
            }
        }
        match best {
            Some((_, line, user, rid)) => Ok((line, Head::Waiting { user, rid })),
            None => Ok((Line::of_event(e), Head::Moved)),
        }
    }

    async fn front_entry(&self, e: &EventState, line: &Line) -> Result<Front, EventError> {
        let at = ev::wait_key(e.id(), lines::position(line.head, line.index, e.lines));
        let entry = self.store.get(&at).await?;
        Ok(match entry.as_ref().and_then(|w| w.str_attr(STATUS)) {
            Some("WAITING") => {
                let w = entry.as_ref().ok_or_else(|| StoreError::Invalid("waitlist entry".into()))?;
                let user = UserId::parse(w.str_attr("user_id").unwrap_or_default())
                    .map_err(|err| StoreError::Invalid(err.to_string()))?;
                let rid = ReservationId::parse(w.str_attr("reservation_id").unwrap_or_default())
                    .map_err(|err| StoreError::Invalid(err.to_string()))?;
                Front::Waiting { user, rid, arrived_at: w.i64_attr(ARRIVED_AT).unwrap_or(0) }
            }
            None => Front::NeverLanded,
            Some(_) => Front::Left,
        })
    }

    /// Moves `line`'s front past an entry that left, or voids one that never landed.
    async fn move_past(&self, e: &EventState, line: &Line, front: Front) -> Result<Head, EventError> {
        let id = e.id();
        let advance = |waiting_delta: i64| {
            let (key, updates, cond) = line.advance(waiting_delta);
            TxOp::Update { key, updates, cond: Some(cond) }
        };
        let ops = match front {
            Front::Waiting { user, rid, .. } => return Ok(Head::Waiting { user, rid }),
            // Never landed (a crash, a duplicate request, or still in flight): void it, so a
            // late landing fails and its shopper starts again.
            Front::NeverLanded => {
                let mut void = ev::wait_key(id, lines::position(line.head, line.index, e.lines)).item();
                void.insert(STATUS.into(), "VOID".into());
                vec![TxOp::Put { item: void, cond: Some(Cond::NotExists) }, advance(-1)]
            }
            // Left (cancelled), promoted or closed: already counted out of `waiting`.
            Front::Left => vec![advance(0)],
        };
        match self.store.transact(ops, None).await {
            Ok(()) | Err(StoreError::TransactionCancelled { .. }) => Ok(Head::Moved),
            Err(err) if err.is_retryable() => Ok(Head::Moved),
            Err(err) => Err(err.into()),
        }
    }

    /// Cancels the shopper's own reservation `rid` of event `id`: a held place goes to the
    /// next in line at once; a waiting one leaves the waitlist. Cancelling again answers the
    /// cancelled reservation.
    pub async fn cancel(&self, id: &EventId, user: &UserId, rid: &str) -> Result<Reservation, EventError> {
        let not_found = || EventError::ReservationNotFound(rid.to_string());
        let rid = ReservationId::parse(rid).map_err(|_| not_found())?;
        for _ in 0..ATTEMPTS {
            let r = self.reservation(user, &rid).await?.filter(|r| &r.event_id == id).ok_or_else(not_found)?;
            match r.status {
                ReservationStatus::Cancelled => return Ok(r),
                ReservationStatus::Reserved => {
                    self.release(&r, Why::Cancelled).await?;
                }
                ReservationStatus::Waiting => {
                    let pos = r.position.unwrap_or(0);
                    let lines = self.read_some(id).await?.lines;
                    let ops = vec![
                        TxOp::Update {
                            key: r.key(),
                            updates: vec![
                                Update::set(STATUS, ReservationStatus::Cancelled.as_str()),
                                Update::set("ended_at", secs(self.clock.now())),
                            ],
                            cond: Some(Cond::eq(STATUS, ReservationStatus::Waiting.as_str())),
                        },
                        TxOp::Update {
                            key: ev::wait_key(id, pos),
                            updates: vec![Update::set(STATUS, "LEFT")],
                            cond: Some(Cond::eq(STATUS, "WAITING")),
                        },
                        TxOp::Update {
                            key: ev::shopper_key(id, user),
                            updates: vec![Update::Remove(ACTIVE.into())],
                            cond: Some(Cond::eq(ACTIVE, rid.as_str())),
                        },
                        TxOp::Update {
                            key: lines::key(id, lines::line_of(pos, lines), lines),
                            updates: vec![Update::Add(WAITING.into(), -1)],
                            cond: None,
                        },
                    ];
                    match self.store.transact(ops, None).await {
                        Ok(()) | Err(StoreError::TransactionCancelled { .. }) => {}
                        Err(err) if err.is_retryable() => self.pause().await,
                        Err(err) => return Err(err.into()),
                    }
                }
                status => return Err(EventError::NotCancellable { rid, status: status.as_str() }),
            }
            // Read again: cancelled now, or promoted meanwhile (then release that hold).
            if let Some(r) = self.reservation(user, &rid).await?
                && r.status == ReservationStatus::Cancelled
            {
                return Ok(r);
            }
        }
        Err(EventError::Busy(id.to_string()))
    }

    /// A paid payment carrying reservation `rid` of `user`: confirms it within its hold when it
    /// covers the place's price (see [`PlacePayment::shortfall`]) and the event has not ended;
    /// after the hold, takes a free place if there is one; otherwise reports the payment for
    /// refund, the hold left as it was.
    pub async fn pay(&self, user: &UserId, rid: &ReservationId, payment: &PlacePayment) -> Result<Paid, EventError> {
        let id_of_payment = &payment.payment_id;
        let pid = id_of_payment.as_str();
        for _ in 0..ATTEMPTS {
            let Some(r) = self.reservation(user, rid).await? else {
                return self.unmatched(user, rid, pid).await;
            };
            let id = &r.event_id;
            let now = self.clock.now();
            let n = secs(now);
            match r.status {
                ReservationStatus::Confirmed if r.payment_id.as_deref() == Some(pid) => {
                    return Ok(Paid::AlreadyConfirmed);
                }
                ReservationStatus::RefundDue if r.payment_id.as_deref() == Some(pid) => {
                    return Ok(Paid::RefundDue("already marked for refund".into()));
                }
                ReservationStatus::Reserved if r.hold_until.is_some_and(|h| !hold_expired(h, now)) => {
                    let e = self.read_some(id).await?;
                    if e.status == EventStatus::Cancelled {
                        // A cancelled event sells nothing: free the place, then report the payment.
                        self.release(&r, Why::Cancelled).await?;
                        continue;
                    }
                    if let Some(why) = payment.shortfall(&e) {
                        return self.refund_due(&r, pid, &why).await;
                    }
                    if now >= e.spec.ends_at {
                        return self.refund_due(&r, pid, "paid after the event ended").await;
                    }
                    let hold_until = r.hold_until.map_or(0, secs);
                    let ops = vec![
                        TxOp::Update {
                            key: r.key(),
                            updates: confirmed(pid, n, false),
                            cond: Some(Cond::And(vec![
                                Cond::eq(STATUS, ReservationStatus::Reserved.as_str()),
                                Cond::Gt(HOLD_UNTIL.into(), n),
                            ])),
                        },
                        self.bought(&r),
                        TxOp::Update {
                            key: ev::event_key(id),
                            updates: vec![Update::Add(CONFIRMED.into(), 1)],
                            cond: Some(Cond::And(vec![
                                Cond::Ne(STATUS.into(), EventStatus::Cancelled.as_str().into()),
                                Cond::Gt(ev::ENDS_AT.into(), n),
                            ])),
                        },
                        TxOp::Delete { key: ev::hold_key(id, hold_until, rid), cond: None },
                        not_revoked(id_of_payment),
                        paid_place(&r, id_of_payment),
                    ];
                    if let Some(paid) = self.commit_payment(id, id_of_payment, ops, Paid::Confirmed).await? {
                        return Ok(paid);
                    }
                }
                ReservationStatus::Reserved => {
                    self.release(&r, Why::Expired).await?;
                }
                ReservationStatus::Expired => {
                    let e = self.read_some(id).await?;
                    if let Some(why) = payment.shortfall(&e) {
                        return self.refund_due(&r, pid, &why).await;
                    }
                    let waitlist = Lines::read(self.store, &e).await?;
                    let free =
                        e.taken < e.stock() && waitlist.is_empty() && !e.status.is_final() && now < e.spec.ends_at;
                    if !free {
                        return self.refund_due(&r, pid, "paid after the hold expired; no place left").await;
                    }
                    let mut ops = vec![
                        TxOp::Update {
                            key: r.key(),
                            updates: confirmed(pid, n, true),
                            cond: Some(Cond::eq(STATUS, ReservationStatus::Expired.as_str())),
                        },
                        TxOp::Update {
                            key: ev::shopper_key(id, user),
                            updates: vec![Update::Add(BOUGHT.into(), 1)],
                            cond: None,
                        },
                        TxOp::Update {
                            key: ev::event_key(id),
                            updates: vec![Update::Add(TAKEN.into(), 1), Update::Add(CONFIRMED.into(), 1)],
                            cond: Some(Cond::And(vec![
                                // Exactly as read: the last place marks the lines full.
                                Cond::eq(TAKEN, e.taken),
                                Cond::eq(HEAD, e.head),
                                Cond::eq(TAIL, e.tail),
                                Cond::eq(STATUS, e.status.as_str()),
                                Cond::Gt(ev::ENDS_AT.into(), n),
                            ])),
                        },
                        not_revoked(id_of_payment),
                        paid_place(&r, id_of_payment),
                    ];
                    // Nobody joined another line meanwhile (they would be waiting for this place).
                    ops.extend(match e.taken + 1 == e.stock() {
                        true => waitlist.set_full_as_read(true),
                        false => waitlist.unmoved(),
                    });
                    if let Some(paid) = self.commit_payment(id, id_of_payment, ops, Paid::ConfirmedLate).await? {
                        tracing::info!(event = %id, reservation = %rid, "late payment took a free place");
                        return Ok(paid);
                    }
                }
                status => {
                    let why = format!("paid for a {} reservation", status.as_str());
                    return self.refund_due(&r, pid, &why).await;
                }
            }
        }
        Err(EventError::Busy(rid.to_string()))
    }

    /// Commits a payment's transaction: `Some(outcome)` once written (the waitlist closed if
    /// that sold the event out), `Some(PaymentCancelled)` when the payment was cancelled or
    /// refunded first, `None` to read again (the reservation or the event moved).
    async fn commit_payment(
        &self,
        id: &EventId,
        payment: &PaymentId,
        ops: Vec<TxOp>,
        outcome: Paid,
    ) -> Result<Option<Paid>, EventError> {
        match self.store.transact(ops, None).await {
            Ok(()) => {
                self.close_if_sold_out(id).await?;
                Ok(Some(outcome))
            }
            Err(err) if err.is_retryable() => {
                self.pause().await;
                Ok(None)
            }
            Err(StoreError::TransactionCancelled { .. }) => {
                let state = self.store.get(&payment_state::key(payment)).await?;
                if state.as_ref().map(payment_state::PaymentState::from_item).is_some_and(|s| s.is_full()) {
                    tracing::warn!(event = %id, payment = %payment, "payment cancelled or refunded before it confirmed its place");
                    return Ok(Some(Paid::PaymentCancelled));
                }
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The place `payment` paid for, freed because the payment was cancelled or fully
    /// refunded: promoted to the head of the waitlist or back to stock (see [`Self::release`]),
    /// and reported in the event's refunds. `None` when the payment paid for no place.
    pub async fn payment_refunded(&self, payment: &PaymentId) -> Result<Option<(ReservationId, Released)>, EventError> {
        let Some(place) = self.store.get(&ev::paid_place_key(payment)).await? else { return Ok(None) };
        let bad = |what: &str| StoreError::Invalid(format!("paid place of {payment}: {what}"));
        let user = UserId::parse(place.str_attr("user_id").unwrap_or_default()).map_err(|_| bad("user_id"))?;
        let rid = ReservationId::parse(place.str_attr("reservation_id").unwrap_or_default())
            .map_err(|_| bad("reservation"))?;
        let Some(r) = self.reservation(&user, &rid).await? else { return Ok(None) };
        if r.status != ReservationStatus::Confirmed || r.payment_id.as_deref() != Some(payment.as_str()) {
            return Ok(Some((rid, Released::AlreadyDone)));
        }
        let released = self.release(&r, Why::Refunded).await?;
        Ok(Some((rid, released)))
    }

    fn bought(&self, r: &Reservation) -> TxOp {
        TxOp::Update {
            key: ev::shopper_key(&r.event_id, &r.user_id),
            updates: vec![Update::Remove(ACTIVE.into()), Update::Add(BOUGHT.into(), 1)],
            cond: Some(Cond::eq(ACTIVE, r.reservation_id.as_str())),
        }
    }

    /// Marks `r` for refund (an ended one becomes REFUND_DUE) and reports the payment.
    async fn refund_due(&self, r: &Reservation, payment: &str, why: &str) -> Result<Paid, EventError> {
        let n = secs(self.clock.now());
        let report = refund_report(ev::refund_key(&r.event_id, payment), &r.user_id, &r.reservation_id, why, n);
        let mut ops = vec![TxOp::Put { item: report, cond: Some(Cond::NotExists) }];
        // An ended reservation says it was paid and is to be refunded; an active or confirmed
        // one stays as it is (the report alone says this payment is to be refunded).
        if matches!(r.status, ReservationStatus::Expired | ReservationStatus::Cancelled | ReservationStatus::Closed) {
            ops.push(TxOp::Update {
                key: r.key(),
                updates: vec![
                    Update::set(STATUS, ReservationStatus::RefundDue.as_str()),
                    Update::set("payment_id", payment),
                ],
                cond: Some(Cond::eq(STATUS, r.status.as_str())),
            });
        }
        match self.store.transact(ops, None).await {
            Ok(()) => {
                tracing::warn!(event = %r.event_id, reservation = %r.reservation_id, payment, why, "payment to refund");
            }
            // Reported already (a redelivery), or the reservation moved: the report stands.
            Err(StoreError::TransactionCancelled { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        Ok(Paid::RefundDue(why.to_string()))
    }

    /// Reports a payment for a reservation `user` does not have (`REFUNDS#UNMATCHED`).
    async fn unmatched(&self, user: &UserId, rid: &ReservationId, payment: &str) -> Result<Paid, EventError> {
        let n = secs(self.clock.now());
        let why = "paid for a reservation that does not exist";
        let report = refund_report(ev::unmatched_refund_key(payment), user, rid, why, n);
        match self.store.put(report, Some(Cond::NotExists)).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        tracing::warn!(reservation = %rid, user = %user.masked(), payment, "payment for an unknown reservation: refund it");
        Ok(Paid::UnknownReservation)
    }

    /// Schedules the closing of the waitlist once every place is paid for.
    async fn close_if_sold_out(&self, id: &EventId) -> Result<(), StoreError> {
        if let Some(e) = self.read(id).await?
            && e.sold_out()
            && !e.waitlist_closed
        {
            let n = secs(self.clock.now());
            self.store.transact(vec![DueEntry { at: n, what: Due::CloseWaitlist(id.clone()) }.put()], None).await?;
        }
        Ok(())
    }

    /// Closes the waitlist of an event that ended, was cancelled or sold out: the waiting
    /// reservations become CLOSED and their shoppers are told. Works through at most
    /// `budget` entries; `Ok(true)` when the waitlist is empty.
    pub async fn close_waitlist(&self, id: &EventId, budget: usize) -> Result<(bool, usize), EventError> {
        let Some(e) = self.read(id).await? else { return Ok((true, 0)) };
        let n = secs(self.clock.now());
        if !(e.status.is_final() || e.sold_out()) {
            return Ok((true, 0));
        }
        if !e.waitlist_closed {
            // The event and every line closed in one write: no arrival joins any line after it.
            let mut ops = vec![TxOp::Update {
                key: ev::event_key(id),
                updates: vec![Update::set(WAITLIST_CLOSED, n)],
                cond: Some(Cond::AttrNotExists(WAITLIST_CLOSED.into())),
            }];
            ops.extend((0..e.lines).filter(|_| e.lines > 1).map(|s| TxOp::Update {
                key: ev::line_key(id, s),
                updates: vec![Update::set(WAITLIST_CLOSED, n)],
                cond: None,
            }));
            match self.store.transact(ops, None).await {
                Ok(()) | Err(StoreError::TransactionCancelled { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        let mut closed = 0;
        let mut spent = 0;
        // Line by line (every entry is closed, in whatever order): one read per entry.
        for s in 0..e.lines {
            while spent < budget {
                spent += 1;
                let line = self.line(&e, s).await?;
                if line.is_empty() {
                    break;
                }
                let Head::Waiting { user, rid } = self.head_entry(&e, &line).await? else { continue };
                let (line_key, moved, line_cond) = line.advance(-1);
                let ops = vec![
                    TxOp::Update {
                        key: ev::reservation_key(&user, &rid),
                        updates: vec![
                            Update::set(STATUS, ReservationStatus::Closed.as_str()),
                            Update::set("ended_at", n),
                        ],
                        cond: Some(Cond::eq(STATUS, ReservationStatus::Waiting.as_str())),
                    },
                    TxOp::Update {
                        key: ev::wait_key(id, lines::position(line.head, s, e.lines)),
                        updates: vec![Update::set(STATUS, "CLOSED")],
                        cond: Some(Cond::eq(STATUS, "WAITING")),
                    },
                    TxOp::Update {
                        key: ev::shopper_key(id, &user),
                        updates: vec![Update::Remove(ACTIVE.into())],
                        cond: Some(Cond::eq(ACTIVE, rid.as_str())),
                    },
                    TxOp::Update { key: line_key, updates: moved, cond: Some(line_cond) },
                    DueEntry { at: n, what: Due::Notify { user, rid, what: Notice::Closed } }.put(),
                ];
                match self.store.transact(ops, None).await {
                    Ok(()) => closed += 1,
                    Err(StoreError::TransactionCancelled { .. }) => {}
                    Err(err) if err.is_retryable() => self.pause().await,
                    Err(err) => return Err(err.into()),
                }
            }
        }
        let e = self.read_some(id).await?;
        Ok((Lines::read(self.store, &e).await?.is_empty(), closed))
    }

    /// Line `s` of `e` as stored now (one line: from a fresh read of the event item).
    async fn line(&self, e: &EventState, s: i64) -> Result<Line, EventError> {
        match e.lines {
            ..=1 => Ok(Line::of_event(&self.read_some(e.id()).await?)),
            _ => Ok(lines::read_line(self.store, e.id(), s).await?),
        }
    }

    async fn pause(&self) {
        let jitter = self.ids.random_u64() % 8;
        self.clock.sleep(Duration::from_millis(2 + jitter)).await;
    }
}

enum Attempt {
    Done(Reservation),
    Again,
    /// The store refused the write for its rate (an item past its write capacity).
    Throttled,
}

/// The entry at the front of a line.
enum Front {
    Waiting {
        user: UserId,
        rid: ReservationId,
        arrived_at: i64,
    },
    /// Its shopper left, was promoted or closed: the front moves past it.
    Left,
    /// Taken and never written (a crash, a refusal after the position, or still in flight).
    NeverLanded,
}

enum Head {
    Waiting {
        user: UserId,
        rid: ReservationId,
    },
    /// The head moved (past an entry that left, or a voided position): read again.
    Moved,
}

/// A write of `updates` to the event item under `cond`, or a check of `cond` alone.
fn event_write(id: &EventId, updates: Vec<Update>, cond: Cond) -> TxOp {
    match updates.is_empty() {
        true => TxOp::Check { key: ev::event_key(id), cond },
        false => TxOp::Update { key: ev::event_key(id), updates, cond: Some(cond) },
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// A reservation's updates when `payment` confirms it at `n` (`late`: after its hold).
fn confirmed(payment: &str, n: i64, late: bool) -> Vec<Update> {
    let mut u = vec![
        Update::set(STATUS, ReservationStatus::Confirmed.as_str()),
        Update::set("payment_id", payment),
        Update::set("paid_at", n),
    ];
    if late {
        u.push(Update::set("late", true));
    }
    u
}

/// The confirmation's check that `payment` was not cancelled or refunded before it.
fn not_revoked(payment: &PaymentId) -> TxOp {
    TxOp::Check { key: payment_state::key(payment), cond: payment_state::not_fully_refunded() }
}

/// The record of which place `payment` paid for (read when it is refunded).
fn paid_place(r: &Reservation, payment: &PaymentId) -> TxOp {
    let mut item = ev::paid_place_key(payment).item();
    item.insert("type".into(), "paid_place".into());
    item.insert("event_id".into(), r.event_id.as_str().into());
    item.insert("user_id".into(), r.user_id.as_str().into());
    item.insert("reservation_id".into(), r.reservation_id.as_str().into());
    TxOp::Put { item, cond: None }
}

/// A refund report: which payment, for which reservation of whom, why, when.
fn refund_report(key: Key, user: &UserId, rid: &ReservationId, why: &str, n: i64) -> Item {
    let mut report = key.item();
    report.insert("type".into(), "event_refund".into());
    report.insert("reservation_id".into(), rid.as_str().into());
    report.insert("user_id".into(), user.as_str().into());
    report.insert("reason".into(), why.into());
    report.insert("at".into(), n.into());
    report
}

fn hold_item(id: &EventId, hold_until: i64, user: &UserId, rid: &ReservationId) -> Item {
    let mut item = ev::hold_key(id, hold_until, rid).item();
    item.insert(HOLD_UNTIL.into(), hold_until.into());
    item.insert("user_id".into(), user.as_str().into());
    item.insert("reservation_id".into(), rid.as_str().into());
    item
}

fn expire_entry(id: &EventId, user: &UserId, rid: &ReservationId, hold_until: i64) -> DueEntry {
    DueEntry { at: hold_until, what: Due::Expire { event: id.clone(), user: user.clone(), rid: rid.clone() } }
}

/// Why the shopper's marker refuses a new reservation, if it does.
fn marker_refusal(e: &EventState, marker: Option<&Item>) -> Option<EventError> {
    let m = marker?;
    if let Some(rid) = m.str_attr(ACTIVE) {
        return Some(EventError::AlreadyReserved { event: e.id().clone(), rid: rid.to_string() });
    }
    let limit = e.spec.per_user_limit;
    (m.i64_attr(BOUGHT).unwrap_or(0) >= i64::from(limit))
        .then(|| EventError::LimitReached { event: e.id().clone(), limit })
}

/// The operations a deploy adds for `campaign`'s events over `old` (the deployed campaign):
/// new events are created INACTIVE with their OPEN and CLOSE due entries; changed ones are
/// redefined (their due entries written again when their window moved: an entry for an old
/// instant finds nothing due and is dropped).
pub fn deploy_ops(campaign: &Campaign, old: Option<&Campaign>) -> Vec<TxOp> {
    let mut ops = Vec::new();
    for e in &campaign.events {
        let was: Option<&EventSpec> = old.and_then(|o| o.events.iter().find(|x| x.id == e.id));
        let due = |ops: &mut Vec<TxOp>| {
            ops.push(DueEntry { at: secs(e.starts_at), what: Due::Open(e.id.clone()) }.put());
            ops.push(DueEntry { at: secs(e.ends_at), what: Due::Close(e.id.clone()) }.put());
        };
        match was {
            None => {
                ops.push(ev::create(e, campaign));
                due(&mut ops);
            }
            Some(w) if w == e => {}
            Some(w) => {
                let moved = w.starts_at != e.starts_at || w.ends_at != e.ends_at;
                ops.push(ev::redefine(e, campaign, moved));
                if moved {
                    due(&mut ops);
                }
            }
        }
    }
    ops
}

/// Why a deploy may not remove the events it drops: an event that has not ended or been
/// cancelled stays in its campaign file.
pub async fn removal_refusals<S: Store + ?Sized>(
    store: &S,
    campaign: &Campaign,
    old: Option<&Campaign>,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for gone in old.iter().flat_map(|o| o.events.iter()).filter(|e| !campaign.events.iter().any(|x| x.id == e.id)) {
        if let Some(item) = store.get(&ev::event_key(&gone.id)).await? {
            let state = EventState::from_item(&item)?;
            if !state.status.is_final() {
                out.push(format!(
                    "event `{}` is {}: cancel it (promoctl event cancel {}) before removing it from the file",
                    gone.id,
                    state.status.as_str(),
                    gone.id
                ));
            }
        }
    }
    Ok(out)
}

/// The JSON of a reservation as the API answers it.
pub fn reservation_json(r: &Reservation) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}
