//! The local runtime's delivery ledger and hand-off, over the store and queue ports: the
//! edge application's ports as `promoctl dev` serves them (the Worker has its own in
//! `edge/`). The ledger's records follow `promo_shared::idempotency`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use promo_shared::domain::payment::PaymentEvent;
use promo_shared::idempotency;
use promo_shared::idempotency::Begin;
use promo_shared::idempotency::IdempotencyConfig;
use promo_shared::idempotency::IdempotencyError;
use promo_shared::ports::ids::IdGen;
use promo_shared::ports::queue::Queue;
use promo_shared::ports::store::Store;
use serde_json::Value;

use promo_shared::http::ApiError;
use promo_shared::payments::gateway::PAYMENT_EVENTS_QUEUE;
use promo_shared::ports::handoff::HandOff;
use promo_shared::ports::ledger::DeliveryLedger;
use promo_shared::ports::ledger::Recorded;
use promo_shared::ports::ledger::Taken;

/// Deliveries recorded as idempotency records in the store; each run's lease token is a new
/// unique id.
pub struct StoreLedger<S> {
    pub store: S,
    pub config: IdempotencyConfig,
    pub ids: Arc<dyn IdGen>,
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("delivery ledger: {e}"))
}

#[async_trait]
impl<S: Store> DeliveryLedger for StoreLedger<S> {
    async fn begin(&self, key: &str, payload_hash: &str, now: DateTime<Utc>) -> Result<Taken, ApiError> {
        let lease = self.ids.new_id();
        match idempotency::begin(&self.store, key, payload_hash, &lease, now, &self.config).await {
            Ok(Begin::Started) => Ok(Taken::Run { lease }),
            Ok(Begin::Completed(answer)) => Ok(Taken::Replay(answer)),
            Err(IdempotencyError::PayloadMismatch(_)) => {
                Err(ApiError::Conflict("this delivery id was already used with a different body".into()))
            }
            Err(IdempotencyError::InProgress(k) | IdempotencyError::LeaseLost(k)) => Err(ApiError::InProgress(k)),
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
    ) -> Result<Recorded, ApiError> {
        match idempotency::complete_for(&self.store, key, lease, answer, now, keep).await {
            Ok(()) => Ok(Recorded::Yes),
            Err(IdempotencyError::LeaseLost(_)) => Ok(Recorded::LeaseLost),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn release(&self, key: &str, lease: &str) -> Result<(), ApiError> {
        idempotency::release(&self.store, key, lease).await.map_err(unavailable)
    }
}

/// Hands events to the issuer through a durable queue.
pub struct QueueHandOff<Q> {
    pub queue: Q,
}

#[async_trait]
impl<Q: Queue> HandOff for QueueHandOff<Q> {
    async fn hand_off(&self, event: &PaymentEvent, _request_id: Option<&str>) -> Result<(), ApiError> {
        self.queue
            .publish(PAYMENT_EVENTS_QUEUE, &event.to_json())
            .await
            .map_err(|e| ApiError::Unavailable(format!("hand-off: {e}")))
    }
}
