//! The queue port: a durable at-least-once queue.

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

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
    /// Gives the message back for later without counting a failed attempt (its work is on
    /// hold, e.g. a paused send). By default a copy is published and the original acked, so
    /// the copy starts at attempt 1 (at once: adapters that can delay override this).
    async fn defer(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        let _ = retry_in;
        self.publish(queue, &delivery.body).await?;
        self.ack(queue, delivery).await
    }
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
    async fn defer(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        (**self).defer(queue, delivery, retry_in).await
    }
}
