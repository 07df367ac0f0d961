//! The clock port: wall-clock time and waiting.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Wall-clock time and waiting, injectable so schedules, expiries and backoffs are testable.
/// Every read of time goes through it.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Waits `d` (a backoff between retries).
    async fn sleep(&self, d: Duration);
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves on by `d` at once: tests that back off do not wait.
    async fn sleep(&self, d: Duration) {
        self.advance(chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
    }
}

/// Whether something read at `read_at` is still fresh at `now` for `ttl` (a zero `ttl`: never).
pub fn fresh(now: DateTime<Utc>, read_at: DateTime<Utc>, ttl: Duration) -> bool {
    chrono::Duration::from_std(ttl).is_ok_and(|ttl| now.signed_duration_since(read_at) < ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z").unwrap().to_utc();
        let c = ManualClock::new(t0);
        assert_eq!(c.now(), t0);
        c.advance(chrono::Duration::seconds(61));
        assert_eq!(c.now(), t0 + chrono::Duration::seconds(61));
    }

    #[tokio::test]
    async fn a_manual_clock_sleeps_by_moving_on() {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z").unwrap().to_utc();
        let c = ManualClock::new(t0);
        c.sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(c.now(), t0 + chrono::Duration::milliseconds(1500));
    }
}
