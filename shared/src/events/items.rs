//! Limited events in the store: the event item with its counters, the shoppers'
//! reservations, the waitlist, each event's open holds, and the due index the scheduler
//! reads.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | event (definition, status, counters) | `EVENT#<event>` | `EVENT` |
//! | a shopper's place in an event (active reservation, places bought) | `EVENT#<event>#SHOPPER` | `<user>` |
//! | waitlist entry | `EVENT#<event>#WAIT` | `<position, 10 digits>` |
//! | waitlist line 1.. (`waitlist_lines` > 1; line 0 is the event item) | `EVENT#<event>#LINES` | `<line, 2 digits>` |
//! | open hold (for the request path to find expired ones) | `EVENT#<event>#HOLDS` | `<hold_until, 11 digits>#<reservation>` |
//! | reservation | `USER#<user>#RESERVATIONS` | `<reservation>` |
//! | due work | `DUE#<shard, 2 digits>` | `<at, 11 digits>#<kind>#<what>` |
//! | payment to refund (late, short, after the end), or refunded (its place freed) | `EVENT#<event>#REFUNDS` | `<payment>` |
//! | payment for a reservation that does not exist, to refund | `REFUNDS#UNMATCHED` | `<payment>` |
//! | the place a payment paid for (found again when it is refunded) | `PAYMENT#<payment>` | `RESERVATION` |
//!
//! The event item's counters: `taken` (places held or paid: `taken <= stock` always),
//! `confirmed` (paid), `tail` (the last waitlist position handed out), `head` (the next
//! position to promote: positions below it have left the waitlist) and `waiting` (entries
//! still waiting). Every write that changes them is conditioned on the current time and on
//! what it read (see `events`). An event with `waitlist_lines` > 1 keeps line 0's `tail`,
//! `head` and `waiting` on the event item and those of line `s` on line item `s`, with a
//! `full` flag (= `taken >= stock`) the writes that move `taken` keep true (`events::lines`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::campaign::Campaign;
use crate::domain::ids::{EventId, PaymentId, ReservationId, UserId};
use crate::domain::limited_event::{EventSpec, EventStatus, ReservationStatus};
use crate::ports::store::{Cond, Item, ItemExt, Key, Query, StoreError, TxOp, Update};

const EVENT_KIND: &str = "limited_event";
const RESERVATION_KIND: &str = "reservation";

pub const STATUS: &str = "status";
pub const STARTS_AT: &str = "starts_at";
pub const ENDS_AT: &str = "ends_at";
pub const STOCK: &str = "stock";
pub const TAKEN: &str = "taken";
pub const CONFIRMED: &str = "confirmed";
pub const TAIL: &str = "tail";
pub const HEAD: &str = "head";
pub const WAITING: &str = "waiting";
pub const WAITLIST_CLOSED: &str = "waitlist_closed";
pub const CAMPAIGN: &str = "campaign_id";
pub const HOLD_UNTIL: &str = "hold_until";
pub const ACTIVE: &str = "active";
pub const BOUGHT: &str = "bought";
/// The event's waitlist lines (absent: one).
pub const LINES: &str = "waitlist_lines";
/// On a waitlist entry: when its shopper arrived (epoch milliseconds): promotion takes the
/// earliest arrival at the front of any line.
pub const ARRIVED_AT: &str = "arrived_at";
/// On a line item: every place is taken, so an arrival may join the line.
pub const FULL: &str = "full";

/// Partitions of the due index: each takes a sixteenth of the due writes (holds made,
/// promotions, notices), far under DynamoDB's ~1,000 writes/s per partition at the rate one
/// event item admits.
pub const DUE_SHARDS: u32 = 16;

pub fn event_key(event: &EventId) -> Key {
    Key::new(format!("EVENT#{event}"), "EVENT")
}

pub fn shopper_key(event: &EventId, user: &UserId) -> Key {
    Key::new(format!("EVENT#{event}#SHOPPER"), user.as_str())
}

pub fn wait_key(event: &EventId, position: i64) -> Key {
    Key::new(format!("EVENT#{event}#WAIT"), format!("{position:010}"))
}

/// Line `line` (1..) of the event's waitlist; line 0 is the event item itself.
pub fn line_key(event: &EventId, line: i64) -> Key {
    Key::new(format!("EVENT#{event}#LINES"), format!("{line:02}"))
}

pub fn hold_key(event: &EventId, hold_until: i64, rid: &ReservationId) -> Key {
    Key::new(format!("EVENT#{event}#HOLDS"), format!("{hold_until:011}#{rid}"))
}

/// An event's open holds, earliest deadline first.
pub fn holds(event: &EventId) -> Query {
    Query::partition(format!("EVENT#{event}#HOLDS"))
}

pub fn reservation_key(user: &UserId, rid: &ReservationId) -> Key {
    Key::new(format!("USER#{user}#RESERVATIONS"), rid.as_str())
}

/// A shopper's reservations, oldest first (ids are time-ordered).
pub fn reservations_of(user: &UserId) -> Query {
    Query::partition(format!("USER#{user}#RESERVATIONS"))
}

pub fn refund_key(event: &EventId, payment: &str) -> Key {
    Key::new(format!("EVENT#{event}#REFUNDS"), payment)
}

pub fn refunds(event: &EventId) -> Query {
    Query::partition(format!("EVENT#{event}#REFUNDS"))
}

/// A payment that named a reservation nobody has: to refund.
pub fn unmatched_refund_key(payment: &str) -> Key {
    Key::new("REFUNDS#UNMATCHED", payment)
}

pub fn unmatched_refunds() -> Query {
    Query::partition("REFUNDS#UNMATCHED")
}

/// The place `payment` paid for: written with the confirmation, read when the payment is
/// cancelled or refunded (beside the payment's reward markers and state).
pub fn paid_place_key(payment: &PaymentId) -> Key {
    Key::new(crate::payments::items::reward::partition(payment), "RESERVATION")
}

/// An event item as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventState {
    pub spec: EventSpec,
    pub campaign: String,
    pub currency: String,
    pub status: EventStatus,
    pub taken: i64,
    pub confirmed: i64,
    pub tail: i64,
    pub head: i64,
    pub waiting: i64,
    pub waitlist_closed: bool,
    /// The waitlist's lines (line 0's `tail`, `head` and `waiting` are the fields above).
    pub lines: i64,
}

impl EventState {
    pub fn from_item(item: &Item) -> Result<EventState, StoreError> {
        let bad = |what: &str| StoreError::Invalid(format!("event item: {what}"));
        let spec: EventSpec = serde_json::from_value(item.get("spec").cloned().unwrap_or(Value::Null))
            .map_err(|e| bad(&format!("spec: {e}")))?;
        let n = |a: &str| item.i64_attr(a).unwrap_or(0);
        Ok(EventState {
            spec,
            campaign: item.str_attr(CAMPAIGN).unwrap_or_default().to_string(),
            currency: item.str_attr("currency").unwrap_or_default().to_string(),
            status: item.str_attr(STATUS).and_then(EventStatus::parse).ok_or_else(|| bad("status"))?,
            taken: n(TAKEN),
            confirmed: n(CONFIRMED),
            tail: n(TAIL),
            head: item.i64_attr(HEAD).unwrap_or(1),
            waiting: n(WAITING),
            waitlist_closed: item.get(WAITLIST_CLOSED).is_some(),
            lines: item.i64_attr(LINES).unwrap_or(1).max(1),
        })
    }

    pub fn id(&self) -> &EventId {
        &self.spec.id
    }

    pub fn stock(&self) -> i64 {
        i64::from(self.spec.stock)
    }

    /// Every place paid for: nothing more will free up.
    pub fn sold_out(&self) -> bool {
        self.confirmed >= self.stock()
    }

    /// The public view (`GET /v1/events/{id}`).
    pub fn view(&self) -> Value {
        let reserved = self.taken - self.confirmed;
        json!({
            "event_id": self.spec.id,
            "campaign_id": self.campaign,
            "name": self.spec.name,
            "status": self.status,
            "starts_at": self.spec.starts_at,
            "ends_at": self.spec.ends_at,
            "stock": self.stock(),
            "reserved": reserved,
            "confirmed": self.confirmed,
            "available": (self.stock() - self.taken).max(0),
            "waiting": self.waiting.max(0),
            "sold_out": self.sold_out(),
            "waitlist_open": !self.waitlist_closed && self.status == EventStatus::Active && !self.sold_out(),
            "hold_seconds": self.spec.hold.seconds(),
            "per_user_limit": self.spec.per_user_limit,
            "price": {"amount": self.spec.price.minor(), "currency": self.currency},
        })
    }
}

/// The definition attributes a deploy sets on an event item.
fn definition(event: &EventSpec, campaign: &Campaign) -> Vec<(&'static str, Value)> {
    vec![
        ("type", EVENT_KIND.into()),
        ("id", event.id.as_str().into()),
        (CAMPAIGN, campaign.id.as_str().into()),
        ("currency", campaign.currency.to_string().into()),
        ("spec", serde_json::to_value(event).unwrap_or(Value::Null)),
        (STARTS_AT, event.starts_at.timestamp().into()),
        (ENDS_AT, event.ends_at.timestamp().into()),
        (STOCK, i64::from(event.stock).into()),
        (LINES, i64::from(event.waitlist_lines).into()),
    ]
}

/// A deploy's creation of a new event: INACTIVE, nothing taken, the waitlist empty; only if
/// no event of that id exists (in any campaign).
pub fn create(event: &EventSpec, campaign: &Campaign) -> TxOp {
    let mut item = event_key(&event.id).item();
    for (k, v) in definition(event, campaign) {
        item.insert(k.into(), v);
    }
    item.insert(STATUS.into(), EventStatus::Inactive.as_str().into());
    for counter in [TAKEN, CONFIRMED, TAIL, WAITING] {
        item.insert(counter.into(), 0.into());
    }
    item.insert(HEAD.into(), 1.into());
    TxOp::Put { item, cond: Some(Cond::NotExists) }
}

/// A deploy's change of an event this campaign owns: the new definition, if the stock still
/// covers the places taken and — when the window moved — the event is not over.
pub fn redefine(event: &EventSpec, campaign: &Campaign, window_moved: bool) -> TxOp {
    let updates = definition(event, campaign).into_iter().map(|(k, v)| Update::Set(k.into(), v)).collect();
    let lines = i64::from(event.waitlist_lines);
    let same_lines = match lines {
        1 => Cond::Or(vec![Cond::AttrNotExists(LINES.into()), Cond::eq(LINES, 1)]),
        n => Cond::eq(LINES, n),
    };
    let mut conds = vec![
        Cond::eq(CAMPAIGN, campaign.id.as_str()),
        Cond::Le(TAKEN.into(), i64::from(event.stock)),
        // Positions name their line (`events::lines`): the count changes only before it opens.
        Cond::Or(vec![same_lines, is(EventStatus::Inactive)]),
    ];
    if window_moved {
        conds.push(Cond::Ne(STATUS.into(), EventStatus::Ended.as_str().into()));
        conds.push(Cond::Ne(STATUS.into(), EventStatus::Cancelled.as_str().into()));
    }
    TxOp::Update { key: event_key(&event.id), updates, cond: Some(Cond::And(conds)) }
}

/// What the event is, as a condition: `status` = `s`.
pub fn is(s: EventStatus) -> Cond {
    Cond::eq(STATUS, s.as_str())
}

/// Open for reservations at `now`: ACTIVE and within its window — the time is in the
/// condition, so a late scheduler never lets a reservation in outside the window.
pub fn open_at(now: i64) -> Cond {
    Cond::And(vec![is(EventStatus::Active), Cond::Le(STARTS_AT.into(), now), Cond::Gt(ENDS_AT.into(), now)])
}

/// A reservation as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reservation {
    pub reservation_id: ReservationId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub status: ReservationStatus,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<DateTime<Utc>>,
}

fn instant(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
}

impl Reservation {
    pub fn key(&self) -> Key {
        reservation_key(&self.user_id, &self.reservation_id)
    }

    pub fn to_item(&self) -> Item {
        let mut item = self.key().item();
        item.insert("type".into(), RESERVATION_KIND.into());
        item.insert("event_id".into(), self.event_id.as_str().into());
        item.insert("user_id".into(), self.user_id.as_str().into());
        item.insert(STATUS.into(), self.status.as_str().into());
        item.insert("created_at".into(), self.created_at.timestamp().into());
        if let Some(h) = self.hold_until {
            item.insert(HOLD_UNTIL.into(), h.timestamp().into());
        }
        if let Some(p) = self.position {
            item.insert("position".into(), p.into());
        }
        item
    }

    pub fn from_item(item: &Item) -> Result<Reservation, StoreError> {
        let bad = |what: &str| StoreError::Invalid(format!("reservation item: {what}"));
        let s = |a: &str| item.str_attr(a).ok_or_else(|| bad(a));
        Ok(Reservation {
            reservation_id: ReservationId::parse(item.str_attr("sk").unwrap_or_default()).map_err(|_| bad("sk"))?,
            event_id: EventId::parse(s("event_id")?).map_err(|_| bad("event_id"))?,
            user_id: UserId::parse(s("user_id")?).map_err(|_| bad("user_id"))?,
            status: ReservationStatus::parse(s(STATUS)?).ok_or_else(|| bad(STATUS))?,
            created_at: instant(item.i64_attr("created_at")).ok_or_else(|| bad("created_at"))?,
            hold_until: instant(item.i64_attr(HOLD_UNTIL)),
            position: item.i64_attr("position"),
            payment_id: item.str_attr("payment_id").map(str::to_string),
            promoted_at: instant(item.i64_attr("promoted_at")),
        })
    }
}

/// Due work the scheduler finds in the due index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// The event may open.
    Open(EventId),
    /// The event may end (and its waitlist close).
    Close(EventId),
    /// A hold may have expired.
    Expire { event: EventId, user: UserId, rid: ReservationId },
    /// Close the waitlist of an event that sold out, ended or was cancelled: tell those waiting.
    CloseWaitlist(EventId),
    /// Tell a shopper what happened to their reservation (promoted, closed).
    Notify { user: UserId, rid: ReservationId, what: Notice },
}

/// What a notice says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A place came free: pay by the new `hold_until`.
    Promoted,
    /// The waitlist closed before a place came free.
    Closed,
}

impl Notice {
    fn as_str(self) -> &'static str {
        match self {
            Notice::Promoted => "PROMOTED",
            Notice::Closed => "CLOSED",
        }
    }
}

/// A due entry: at `at` (epoch seconds), `what`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueEntry {
    pub at: i64,
    pub what: Due,
}

fn shard_of(s: &str) -> u32 {
    // FNV-1a: stable across processes and versions.
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % DUE_SHARDS
}

impl DueEntry {
    fn suffix(&self) -> String {
        match &self.what {
            Due::Open(e) => format!("OPEN#{e}"),
            Due::Close(e) => format!("CLOSE#{e}"),
            Due::CloseWaitlist(e) => format!("CLOSEWAIT#{e}"),
            Due::Expire { event, user, rid } => format!("EXPIRE#{rid}#{event}#{user}"),
            Due::Notify { user, rid, what } => format!("NOTIFY#{rid}#{}#{user}", what.as_str()),
        }
    }

    pub fn key(&self) -> Key {
        let suffix = self.suffix();
        // Spread by what the entry is about: an event's entries, a reservation's.
        let spread = suffix.split('#').nth(1).unwrap_or_default();
        Key::new(format!("DUE#{:02}", shard_of(spread)), format!("{:011}#{suffix}", self.at.max(0)))
    }

    pub fn put(&self) -> TxOp {
        TxOp::Put { item: self.key().item(), cond: None }
    }

    pub fn from_key(key: &Key) -> Option<DueEntry> {
        let mut parts = key.sk.split('#');
        let at: i64 = parts.next()?.parse().ok()?;
        let kind = parts.next()?;
        let a = parts.next()?;
        let what = match kind {
            "OPEN" => Due::Open(EventId::parse(a).ok()?),
            "CLOSE" => Due::Close(EventId::parse(a).ok()?),
            "CLOSEWAIT" => Due::CloseWaitlist(EventId::parse(a).ok()?),
            "EXPIRE" => {
                let rid = ReservationId::parse(a).ok()?;
                let event = EventId::parse(parts.next()?).ok()?;
                let user = UserId::parse(parts.next()?).ok()?;
                Due::Expire { event, user, rid }
            }
            "NOTIFY" => {
                let rid = ReservationId::parse(a).ok()?;
                let what = match parts.next()? {
                    "PROMOTED" => Notice::Promoted,
                    "CLOSED" => Notice::Closed,
                    _ => return None,
                };
                let user = UserId::parse(parts.next()?).ok()?;
                Due::Notify { user, rid, what }
            }
            _ => return None,
        };
        Some(DueEntry { at, what })
    }
}

/// One shard of the due index, earliest first.
pub fn due_shard(shard: u32) -> Query {
    Query::partition(format!("DUE#{shard:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_round_trip_through_their_keys() {
        let e = EventId::parse("drop-1").unwrap();
        let u = UserId::parse("u-1").unwrap();
        let r = ReservationId::parse("0190-abc").unwrap();
        for what in [
            Due::Open(e.clone()),
            Due::Close(e.clone()),
            Due::CloseWaitlist(e.clone()),
            Due::Expire { event: e.clone(), user: u.clone(), rid: r.clone() },
            Due::Notify { user: u.clone(), rid: r.clone(), what: Notice::Promoted },
            Due::Notify { user: u.clone(), rid: r.clone(), what: Notice::Closed },
        ] {
            let d = DueEntry { at: 1_800_000_000, what };
            let k = d.key();
            assert!(k.pk.starts_with("DUE#") && k.sk.starts_with("01800000000#"), "{k:?}");
            assert_eq!(DueEntry::from_key(&k), Some(d));
        }
    }

    #[test]
    fn due_entries_spread_over_the_shards() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            let rid = ReservationId::parse(format!("r-{i}")).unwrap();
            let d = DueEntry {
                at: 1,
                what: Due::Expire { event: EventId::parse("e").unwrap(), user: UserId::parse("u").unwrap(), rid },
            };
            seen.insert(d.key().pk);
        }
        assert_eq!(seen.len(), DUE_SHARDS as usize);
    }
}
