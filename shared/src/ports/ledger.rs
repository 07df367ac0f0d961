//! The delivery ledger port: a strongly consistent record of webhook deliveries and client
//! callbacks (Durable Objects at the edge, deliveries hashed over 64 of them; idempotency
//! records in the store locally), with the rules of `idempotency`.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::http::ApiError;

/// How a delivery's run was taken.
#[derive(Clone, Debug, PartialEq)]
pub enum Taken {
    /// This caller runs it, under this lease token (unique per run).
    Run { lease: String },
    /// Done before: the stored answer.
    Replay(Value),
}

/// What recording an answer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Yes,
    /// The caller's lease ran out and another run took the delivery over: nothing recorded.
    LeaseLost,
}

/// Strongly consistent record of deliveries (a Durable Object at the edge, the store locally),
/// with the rules of `crate::idempotency`.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait DeliveryLedger: super::MaybeSend {
    /// Takes the delivery, or returns the stored answer of a completed one. Errors:
    /// `Conflict` (same id, other body), `InProgress`, `Unavailable`.
    async fn begin(&self, key: &str, payload_hash: &str, now: DateTime<Utc>) -> Result<Taken, ApiError>;
    /// Records the answer, kept for `keep`, if `lease` still holds the delivery.
    async fn complete(
        &self,
        key: &str,
        lease: &str,
        answer: &Value,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> Result<Recorded, ApiError>;
    /// Frees the delivery for a retry, if `lease` still holds it.
    async fn release(&self, key: &str, lease: &str) -> Result<(), ApiError>;
}
