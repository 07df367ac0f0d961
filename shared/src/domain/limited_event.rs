//! Limited events (drops, flash sales) and their reservations, with the scheduled transitions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::error::ValidationError;
use crate::domain::ids::EventId;
use crate::domain::ids::ReservationId;
use crate::domain::ids::UserId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    Inactive,
    Active,
    Ended,
}

/// A limited event: `capacity` places, open from `starts_at` until `ends_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitedEvent {
    pub id: EventId,
    pub status: EventStatus,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: u32,
    /// How long a reservation is held for payment before it expires.
    pub hold_seconds: u32,
}

impl LimitedEvent {
    pub fn new(
        id: EventId,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        capacity: u32,
        hold_seconds: u32,
    ) -> Result<LimitedEvent, ValidationError> {
        if starts_at >= ends_at {
            return Err(ValidationError::new("ends_at", "must be after starts_at"));
        }
        if capacity == 0 {
            return Err(ValidationError::new("capacity", "must be at least 1"));
        }
        if hold_seconds == 0 {
            return Err(ValidationError::new("hold_seconds", "must be at least 1"));
        }
        Ok(LimitedEvent { id, status: EventStatus::Inactive, starts_at, ends_at, capacity, hold_seconds })
    }

    /// The status the schedule must move this event to at `now`, if any. Transitions only go
    /// forward (INACTIVE → ACTIVE → ENDED); a missed tick is caught up, possibly straight to ENDED.
    pub fn due_transition(&self, now: DateTime<Utc>) -> Option<EventStatus> {
        let target = if now >= self.ends_at {
            EventStatus::Ended
        } else if now >= self.starts_at {
            EventStatus::Active
        } else {
            EventStatus::Inactive
        };
        (rank(target) > rank(self.status)).then_some(target)
    }
}

fn rank(s: EventStatus) -> u8 {
    match s {
        EventStatus::Inactive => 0,
        EventStatus::Active => 1,
        EventStatus::Ended => 2,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Holding a place until `hold_until`, awaiting payment.
    Held,
    /// Waiting for a place to free up.
    Waitlisted,
    Paid,
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub status: ReservationStatus,
    pub created_at: DateTime<Utc>,
    /// Set while `Held`.
    pub hold_until: Option<DateTime<Utc>>,
}

impl Reservation {
    /// A held reservation whose hold deadline has passed.
    pub fn hold_expired(&self, now: DateTime<Utc>) -> bool {
        self.status == ReservationStatus::Held && self.hold_until.is_some_and(|h| now >= h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::at;

    fn event() -> LimitedEvent {
        LimitedEvent::new(
            EventId::parse("drop-1").unwrap(),
            at("2026-11-23T10:00:00Z"),
            at("2026-11-23T12:00:00Z"),
            10,
            600,
        )
        .unwrap()
    }

    #[test]
    fn transitions_move_forward_at_exact_instants() {
        let mut e = event();
        assert_eq!(e.due_transition(at("2026-11-23T09:59:59Z")), None);
        assert_eq!(e.due_transition(at("2026-11-23T10:00:00Z")), Some(EventStatus::Active));
        e.status = EventStatus::Active;
        assert_eq!(e.due_transition(at("2026-11-23T11:59:59Z")), None);
        assert_eq!(e.due_transition(at("2026-11-23T12:00:00Z")), Some(EventStatus::Ended));
        e.status = EventStatus::Ended;
        assert_eq!(e.due_transition(at("2026-11-23T10:30:00Z")), None, "never backwards");
    }

    #[test]
    fn missed_ticks_catch_up_straight_to_ended() {
        let e = event();
        assert_eq!(e.due_transition(at("2026-11-24T00:00:00Z")), Some(EventStatus::Ended));
    }

    #[test]
    fn invalid_events_are_rejected() {
        let id = EventId::parse("e").unwrap();
        assert!(LimitedEvent::new(id.clone(), at("2026-01-02T00:00:00Z"), at("2026-01-01T00:00:00Z"), 1, 1).is_err());
        assert!(LimitedEvent::new(id.clone(), at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z"), 0, 1).is_err());
        assert!(LimitedEvent::new(id, at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z"), 1, 0).is_err());
    }

    #[test]
    fn holds_expire_at_their_deadline() {
        let r = Reservation {
            id: ReservationId::parse("r1").unwrap(),
            event_id: EventId::parse("drop-1").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            status: ReservationStatus::Held,
            created_at: at("2026-11-23T10:00:00Z"),
            hold_until: Some(at("2026-11-23T10:10:00Z")),
        };
        assert!(!r.hold_expired(at("2026-11-23T10:09:59Z")));
        assert!(r.hold_expired(at("2026-11-23T10:10:00Z")));
    }
}
