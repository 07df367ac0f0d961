//! Ports for the side effects besides the store (see `store`): queue, mailer, clock, ids.
//! Adapters live outside the domain: embedded ones in `infra`, AWS/RabbitMQ ones in `lambdas`.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::email::EmailAddress;

/// Wall-clock time, injectable so schedules and expiries are testable.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
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

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Unique ids and unguessable random bytes.
pub trait IdGen: Send + Sync {
    /// A new unique, time-ordered id (e.g. UUIDv7).
    fn new_id(&self) -> String;
    /// Cryptographically random bytes (coupon codes).
    fn random_12(&self) -> [u8; 12];
    /// A random number from [`IdGen::random_12`]: backoff jitter, shard order.
    fn random_u64(&self) -> u64 {
        let b = self.random_12();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

/// A message taken from a queue, to be acked or nacked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Adapter-specific receipt (a row id, a delivery tag, a receipt handle).
    pub receipt: String,
    pub body: Vec<u8>,
    /// 1 on the first delivery.
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("invalid queue request: {0}")]
    Invalid(String),
}

/// A durable at-least-once queue. A published message is durable when `publish` returns;
/// a received message not acked within the lease (crash) is delivered again; after
/// `max_attempts` failed deliveries it moves to the queue's dead letters.
#[async_trait]
pub trait Queue: Send + Sync {
    async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), QueueError>;
    async fn publish_batch(&self, queue: &str, bodies: &[Vec<u8>]) -> Result<(), QueueError> {
        for b in bodies {
            self.publish(queue, b).await?;
        }
        Ok(())
    }
    /// Up to `max` messages, waiting at most `wait` for the first one.
    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError>;
    async fn ack(&self, queue: &str, delivery: &Delivery) -> Result<(), QueueError>;
    /// Gives the message back for a later attempt (or to the dead letters when out of attempts).
    async fn nack(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError>;
    /// Moves a message that can never succeed (malformed) straight to the dead letters.
    async fn reject(&self, queue: &str, delivery: &Delivery, reason: &str) -> Result<(), QueueError>;
}

#[async_trait]
impl<T: Queue + ?Sized> Queue for std::sync::Arc<T> {
    async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), QueueError> {
        (**self).publish(queue, body).await
    }
    async fn publish_batch(&self, queue: &str, bodies: &[Vec<u8>]) -> Result<(), QueueError> {
        (**self).publish_batch(queue, bodies).await
    }
    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        (**self).receive(queue, max, wait).await
    }
    async fn ack(&self, queue: &str, delivery: &Delivery) -> Result<(), QueueError> {
        (**self).ack(queue, delivery).await
    }
    async fn nack(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        (**self).nack(queue, delivery, retry_in).await
    }
    async fn reject(&self, queue: &str, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        (**self).reject(queue, delivery, reason).await
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub from: EmailAddress,
    pub to: EmailAddress,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// Extra headers, e.g. `List-Unsubscribe`.
    pub headers: Vec<(String, String)>,
    /// Same key → sent at most once by this mailer.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MailError {
    #[error("mail rejected: {0}")]
    Rejected(String),
    #[error("mailer throttled: {0}")]
    Throttled(String),
    #[error("mailer unavailable: {0}")]
    Unavailable(String),
}

impl MailError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, MailError::Rejected(_))
    }
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends and returns the message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError>;
}

/// Capped exponential backoff with full jitter (AWS's recommendation), from a random value.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, random: u64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(20));
    let ceiling = exp.min(cap).as_millis().max(1) as u64;
    Duration::from_millis(random % ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let base = Duration::from_millis(10);
        let cap = Duration::from_millis(1000);
        assert!(backoff(0, base, cap, u64::MAX) < Duration::from_millis(10));
        assert!(backoff(30, base, cap, u64::MAX) < cap);
        assert_eq!(backoff(3, base, cap, 0), Duration::ZERO);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z").unwrap().to_utc();
        let c = ManualClock::new(t0);
        assert_eq!(c.now(), t0);
        c.advance(chrono::Duration::seconds(61));
        assert_eq!(c.now(), t0 + chrono::Duration::seconds(61));
    }
}
