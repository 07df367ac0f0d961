//! The Lambdas' entries, plain code over JSON so they are tested without the runtime: one
//! module per function, and [`event`], the one reading of the event shapes they share.
//!
//! The shoppers' API ([`api`]) takes function URL requests. The coupon issuer ([`handle`])
//! is one function with three ways in, each with its own failure semantics:
//!
//! - **Function URL** (the edge's hand-off): the request must carry a valid Standard Webhooks
//!   signature made with `PROMO_ISSUER_SECRET`; 200 with the outcome, 401 for a bad
//!   signature, 400 for a malformed event, 503 (retry) for a transient failure.
//! - **SQS batch**: every record is handled; records that failed are returned as
//!   `batchItemFailures` (partial batch response), so only they are redelivered — and, after
//!   the queue's `maxReceiveCount`, dead-lettered. Malformed records fail too: they belong in
//!   the dead-letter queue, not dropped.
//! - **Amazon MQ (RabbitMQ)**: no partial failures exist, so a transient failure of any
//!   message fails the invocation (the batch is redelivered; handling is idempotent), while
//!   a malformed message, or one failing for good, is logged and skipped (it can never
//!   succeed, and failing the invocation would redeliver the batch forever).
//!
//! Every invocation writes its metrics as one EMF line ([`crate::metrics`]), and handles each
//! event inside a span carrying the request id the edge gave it (an SQS message attribute
//! `request_id`, or the `x-request-id` header), so one id follows a payment from the edge's
//! logs into the Lambdas'.

use serde_json::Value;
use thiserror::Error;

mod api;
mod event;
mod feedback;
mod issuer;
mod scheduler;
#[cfg(feature = "aws")]
mod sender;

pub use api::api;
pub use feedback::feedback;
pub use issuer::{HANDOFF_TOLERANCE_SECONDS, handle, handle_counted};
pub use scheduler::scheduler;
#[cfg(feature = "aws")]
pub use sender::{Requeue, sender, sender_until};

#[derive(Debug, Error)]
pub enum EntryError {
    #[error("unrecognised event: neither a function URL request, an SQS batch nor an Amazon MQ batch")]
    Unrecognised,
    /// Fails the invocation so the whole batch is redelivered.
    #[error("transient failure, the batch will be redelivered: {0}")]
    Transient(String),
}

/// The deadline an invocation works to: the runtime's (`deadline_ms`, epoch milliseconds)
/// less `margin`, or `fallback` from now when the runtime gave none.
pub fn invocation_deadline(
    deadline_ms: u64,
    margin: chrono::Duration,
    fallback: chrono::Duration,
    clock: &dyn promo_shared::ports::clock::Clock,
) -> chrono::DateTime<chrono::Utc> {
    i64::try_from(deadline_ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| clock.now() + fallback, |d| d - margin)
}

/// The Lambda's answer to a function URL request: `body` as JSON.
pub(crate) fn url_response(status: u16, body: Value) -> Value {
    serde_json::json!({"statusCode": status, "headers": {"content-type": "application/json"}, "body": body.to_string()})
}

/// The platform's error body.
pub(crate) fn error_body(code: &str, message: &str) -> Value {
    serde_json::json!({"error": {"code": code, "message": message}})
}
