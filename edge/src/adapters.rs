//! Native adapters of the edge ports, over the domain's store and queue ports (the local
//! runtime uses them; the Worker has its own in `worker_entry`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use promo_shared::idempotency::{self, Begin, IdempotencyConfig, IdempotencyError};
use promo_shared::payment::PaymentEvent;
use promo_shared::ports::{IdGen, Queue};
use promo_shared::store::Store;
use serde_json::Value;

use crate::error::EdgeError;
use crate::gateway::{DeliveryLedger, HandOff, Recorded, Taken};

/// The queue the gateway hands payment events to.
pub const PAYMENT_EVENTS_QUEUE: &str = "payment-events";

/// Deliveries recorded as idempotency records in the store; each run's lease token is a new
/// unique id.
pub struct StoreLedger<S> {
    pub store: S,
    pub config: IdempotencyConfig,
    pub ids: Arc<dyn IdGen>,
}

fn unavailable(e: impl std::fmt::Display) -> EdgeError {
    EdgeError::Unavailable(format!("delivery ledger: {e}"))
}

#[async_trait]
impl<S: Store> DeliveryLedger for StoreLedger<S> {
    async fn begin(&self, key: &str, payload_hash: &str, now: DateTime<Utc>) -> Result<Taken, EdgeError> {
        let lease = self.ids.new_id();
        match idempotency::begin(&self.store, key, payload_hash, &lease, now, &self.config).await {
            Ok(Begin::Started) => Ok(Taken::Run { lease }),
            Ok(Begin::Completed(answer)) => Ok(Taken::Replay(answer)),
            Err(IdempotencyError::PayloadMismatch(_)) => {
                Err(EdgeError::Conflict("this delivery id was already used with a different body".into()))
            }
            Err(IdempotencyError::InProgress(k) | IdempotencyError::LeaseLost(k)) => Err(EdgeError::InProgress(k)),
            Err(IdempotencyError::Store(s)) => Err(unavailable(s)),
        }
    }

    async fn complete(
        &self,
        key: &str,
        lease: &str,
        answer: &Value,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> Result<Recorded, EdgeError> {
        match idempotency::complete_for(&self.store, key, lease, answer, now, keep).await {
            Ok(()) => Ok(Recorded::Yes),
            Err(IdempotencyError::LeaseLost(_)) => Ok(Recorded::LeaseLost),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn release(&self, key: &str, lease: &str) -> Result<(), EdgeError> {
        idempotency::release(&self.store, key, lease).await.map_err(unavailable)
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
