//! Limited events (a signed edition of 100, a 500-piece drop): a stock of places sold from
//! `starts_at` until `ends_at`, each place held for `hold` while the shopper pays, a waitlist
//! behind the stock, and the status schedule INACTIVE → ACTIVE → ENDED (or CANCELLED by a
//! marketer at any time before it ends).
//!
//! This module holds the rules that need no store: what a campaign file may say about an
//! event, which transition is due at an instant, and when a hold has expired. The store's
//! side — every write conditioned on the current time — is `events`.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::error::ValidationError;
use crate::domain::ids::EventId;
use crate::domain::money::Amount;

/// Most events one campaign may define: a deploy writes them in its one transaction.
pub const MAX_EVENTS_PER_CAMPAIGN: usize = 16;
/// The shortest and longest hold a marketer may give.
pub const MIN_HOLD: StdDuration = StdDuration::from_secs(10);
pub const MAX_HOLD: StdDuration = StdDuration::from_secs(24 * 3600);
/// The largest stock of one event (its counters live on one item, see `events`).
pub const MAX_STOCK: u32 = 1_000_000;
/// The most waitlist lines one event may have (each takes ~1,000 arrivals/s on DynamoDB).
pub const MAX_WAITLIST_LINES: u32 = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    Inactive,
    Active,
    Ended,
    /// Cancelled by a marketer: final, like ENDED.
    Cancelled,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Inactive => "INACTIVE",
            EventStatus::Active => "ACTIVE",
            EventStatus::Ended => "ENDED",
            EventStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<EventStatus> {
        [EventStatus::Inactive, EventStatus::Active, EventStatus::Ended, EventStatus::Cancelled]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    /// ENDED and CANCELLED never change again.
    pub fn is_final(self) -> bool {
        matches!(self, EventStatus::Ended | EventStatus::Cancelled)
    }
}

/// A hold duration as a campaign file writes it: `"10m"`, `"30s"`, `"1h 30m"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold(StdDuration);

impl Hold {
    pub fn parse(s: &str) -> Result<Hold, ValidationError> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            ValidationError::new("hold", format!("`{s}` is not a duration like \"10m\" or \"30s\": {e}"))
        })?;
        Hold::new(d)
    }

    pub fn new(d: StdDuration) -> Result<Hold, ValidationError> {
        if d < MIN_HOLD || d > MAX_HOLD {
            return Err(ValidationError::new(
                "hold",
                format!(
                    "{} is not within {}..={}",
                    humantime::format_duration(d),
                    humantime::format_duration(MIN_HOLD),
                    humantime::format_duration(MAX_HOLD)
                ),
            ));
        }
        if d.subsec_nanos() != 0 {
            return Err(ValidationError::new("hold", "must be whole seconds"));
        }
        Ok(Hold(d))
    }

    pub fn seconds(self) -> i64 {
        // At most a day: fits.
        self.0.as_secs() as i64
    }

    pub fn duration(self) -> Duration {
        Duration::seconds(self.seconds())
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Hold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hold, D::Error> {
        let s = String::deserialize(d)?;
        Hold::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

fn one() -> u32 {
    1
}

/// An event as a campaign file writes it (`[[events]]`); its price is in the campaign's
/// currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub id: EventId,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub stock: u32,
    pub hold: Hold,
    /// Places one shopper may buy in this event (one reservation at a time).
    #[serde(default = "one")]
    pub per_user_limit: u32,
    /// The price of one place, in minor units of the campaign's currency.
    pub price: Amount,
    /// The lines the waitlist is split over, each its own counter item, for a drop that
    /// expects more arrivals a second than one item takes (`events::lines`). Fixed once the
    /// event opens.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub waitlist_lines: u32,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl EventSpec {
    /// Every problem, each naming its field (`ends_at`, `stock`, ...).
    pub fn validate(&self) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push(ValidationError::new("name", "must not be empty"));
        }
        if self.starts_at >= self.ends_at {
            errors.push(ValidationError::new(
                "ends_at",
                format!("{} is not after starts_at {}", self.ends_at.to_rfc3339(), self.starts_at.to_rfc3339()),
            ));
        }
        if self.stock == 0 || self.stock > MAX_STOCK {
            errors.push(ValidationError::new("stock", format!("{} is not within 1..={MAX_STOCK}", self.stock)));
        }
        if self.per_user_limit == 0 {
            errors.push(ValidationError::new("per_user_limit", "must be at least 1"));
        }
        if self.waitlist_lines == 0 || self.waitlist_lines > MAX_WAITLIST_LINES {
            errors.push(ValidationError::new(
                "waitlist_lines",
                format!("{} is not within 1..={MAX_WAITLIST_LINES}", self.waitlist_lines),
            ));
        }
        errors
    }

    /// The status the schedule must move an event in `status` to at `now`, if any.
    /// Transitions only go forward (INACTIVE → ACTIVE → ENDED); a missed tick is caught up,
    /// possibly straight to ENDED; a final status never changes.
    pub fn due_transition(&self, status: EventStatus, now: DateTime<Utc>) -> Option<EventStatus> {
        if status.is_final() {
            return None;
        }
        let target = if now >= self.ends_at {
            EventStatus::Ended
        } else if now >= self.starts_at {
            EventStatus::Active
        } else {
            EventStatus::Inactive
        };
        (target != status && target != EventStatus::Inactive).then_some(target)
    }
}

/// Where a reservation is. HELD and WAITING are active (a shopper has at most one active
/// reservation per event); the others are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Holding a place until `hold_until`, awaiting payment.
    Reserved,
    /// In the waitlist at `position`, for a place to free up.
    Waiting,
    /// Paid in time: the place is the shopper's.
    Confirmed,
    /// Not paid before `hold_until`: the place went to the next in line (or back to stock).
    Expired,
    /// Cancelled by the shopper, or with the event.
    Cancelled,
    /// Still waiting when the event ended or sold out.
    Closed,
    /// Paid after the hold expired with no place left: the payment is to be refunded.
    RefundDue,
    /// Paid, then the payment was cancelled or fully refunded: the place went to the next in
    /// line (or back to stock).
    Refunded,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Reserved => "RESERVED",
            ReservationStatus::Waiting => "WAITING",
            ReservationStatus::Confirmed => "CONFIRMED",
            ReservationStatus::Expired => "EXPIRED",
            ReservationStatus::Cancelled => "CANCELLED",
            ReservationStatus::Closed => "CLOSED",
            ReservationStatus::RefundDue => "REFUND_DUE",
            ReservationStatus::Refunded => "REFUNDED",
        }
    }

    pub fn parse(s: &str) -> Option<ReservationStatus> {
        use ReservationStatus::*;
        [Reserved, Waiting, Confirmed, Expired, Cancelled, Closed, RefundDue, Refunded]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    pub fn is_active(self) -> bool {
        matches!(self, ReservationStatus::Reserved | ReservationStatus::Waiting)
    }
}

/// Whether a hold until `hold_until` is over at `now` (at the deadline itself it is: a
/// payment must arrive strictly before it).
pub fn hold_expired(hold_until: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= hold_until
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::at;

    fn event() -> EventSpec {
        EventSpec {
            id: EventId::parse("drop-1").unwrap(),
            name: "Drop".into(),
            starts_at: at("2026-11-23T10:00:00Z"),
            ends_at: at("2026-11-23T12:00:00Z"),
            stock: 10,
            hold: Hold::parse("10m").unwrap(),
            per_user_limit: 1,
            price: Amount::new(50_000).unwrap(),
            waitlist_lines: 1,
        }
    }

    #[test]
    fn transitions_move_forward_at_exact_instants() {
        let e = event();
        use EventStatus::*;
        assert_eq!(e.due_transition(Inactive, at("2026-11-23T09:59:59Z")), None);
        assert_eq!(e.due_transition(Inactive, at("2026-11-23T10:00:00Z")), Some(Active));
        assert_eq!(e.due_transition(Active, at("2026-11-23T11:59:59Z")), None);
        assert_eq!(e.due_transition(Active, at("2026-11-23T12:00:00Z")), Some(Ended));
        assert_eq!(e.due_transition(Ended, at("2026-11-23T10:30:00Z")), None, "never backwards");
        assert_eq!(e.due_transition(Active, at("2026-11-23T09:00:00Z")), None, "never back to INACTIVE");
        assert_eq!(e.due_transition(Cancelled, at("2026-11-23T10:30:00Z")), None, "cancelled is final");
    }

    #[test]
    fn missed_ticks_catch_up_straight_to_ended() {
        assert_eq!(event().due_transition(EventStatus::Inactive, at("2026-11-24T00:00:00Z")), Some(EventStatus::Ended));
    }

    #[test]
    fn holds_parse_as_durations_within_bounds() {
        assert_eq!(Hold::parse("10m").unwrap().seconds(), 600);
        assert_eq!(Hold::parse("30s").unwrap().seconds(), 30);
        assert_eq!(Hold::parse("1h 30m").unwrap().seconds(), 5400);
        for bad in ["", "10", "ten minutes", "5s", "2d", "-1m", "1.5s"] {
            assert!(Hold::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&Hold::parse("10m").unwrap()).unwrap();
        assert_eq!(json, "\"10m\"");
        assert_eq!(serde_json::from_str::<Hold>(&json).unwrap().seconds(), 600);
    }

    #[test]
    fn invalid_events_name_their_fields() {
        let mut e = event();
        e.ends_at = e.starts_at;
        e.stock = 0;
        e.per_user_limit = 0;
        e.name = " ".into();
        e.waitlist_lines = 0;
        let fields: Vec<String> = e.validate().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["name", "ends_at", "stock", "per_user_limit", "waitlist_lines"]);
        e.waitlist_lines = MAX_WAITLIST_LINES + 1;
        assert!(e.validate().iter().any(|v| v.field == "waitlist_lines"));
        assert!(event().validate().is_empty());
    }

    #[test]
    fn holds_expire_at_their_deadline() {
        let until = at("2026-11-23T10:10:00Z");
        assert!(!hold_expired(until, at("2026-11-23T10:09:59Z")));
        assert!(hold_expired(until, at("2026-11-23T10:10:00Z")));
    }

    #[test]
    fn statuses_round_trip() {
        for s in [EventStatus::Inactive, EventStatus::Active, EventStatus::Ended, EventStatus::Cancelled] {
            assert_eq!(EventStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in [ReservationStatus::Reserved, ReservationStatus::RefundDue, ReservationStatus::Waiting] {
            assert_eq!(ReservationStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
