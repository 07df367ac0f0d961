//! Native adapters of the edge ports, over the domain's store and queue ports (the local
//! runtime uses them; the Worker has its own in `worker_entry`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use promo_shared::idempotency::{self, Begin, IdempotencyConfig, IdempotencyError};
use promo_shared::payment::PaymentEvent;
use promo_shared::ports::Queue;
use promo_shared::store::Store;
use serde_json::Value;

use crate::error::EdgeError;
use crate::gateway::{DeliveryLedger, HandOff};

/// The queue the gateway hands payment events to.
pub const PAYMENT_EVENTS_QUEUE: &str = "payment-events";

/// Deliveries recorded as idempotency records in the store.
pub struct StoreLedger<S> {
    pub store: S,
    pub config: IdempotencyConfig,
}

#[async_trait]
impl<S: Store> DeliveryLedger for StoreLedger<S> {
    async fn begin(&self, key: &str, payload_hash: &str, now: DateTime<Utc>) -> Result<Begin, EdgeError> {
        idempotency::begin(&self.store, key, payload_hash, now, &self.config).await.map_err(|e| match e {
            IdempotencyError::PayloadMismatch(_) => {
                EdgeError::Conflict("this delivery id was already used with a different body".into())
            }
            IdempotencyError::InProgress(k) => EdgeError::InProgress(k),
            IdempotencyError::Store(s) => EdgeError::Unavailable(format!("delivery ledger: {s}")),
        })
    }

    async fn complete(&self, key: &str, answer: &Value, now: DateTime<Utc>) -> Result<(), EdgeError> {
        idempotency::complete(&self.store, key, answer, now, &self.config)
            .await
            .map_err(|e| EdgeError::Unavailable(format!("delivery ledger: {e}")))
    }

    async fn release(&self, key: &str) -> Result<(), EdgeError> {
        idempotency::release(&self.store, key)
            .await
            .map_err(|e| EdgeError::Unavailable(format!("delivery ledger: {e}")))
    }
}

/// Hands events to the issuer through a durable queue.
pub struct QueueHandOff<Q> {
    pub queue: Q,
}

#[async_trait]
impl<Q: Queue> HandOff for QueueHandOff<Q> {
    async fn hand_off(&self, event: &PaymentEvent) -> Result<(), EdgeError> {
        self.queue
            .publish(PAYMENT_EVENTS_QUEUE, &event.to_json())
            .await
            .map_err(|e| EdgeError::Unavailable(format!("hand-off: {e}")))
    }
}
