//! Message handlers shared by every way a message arrives: the local runtime's embedded
//! queue, SQS batches and RabbitMQ deliveries.

use crate::domain::payment::PaymentEvent;
use crate::ports::store::Store;
use thiserror::Error;

use crate::payments::issuer::IssueError;

use crate::payments::issuer::Issuer;

use crate::payments::issuer::PaymentOutcome;

#[derive(Debug, Error)]
pub enum HandlerError {
    /// The message can never succeed: dead-letter it.
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error(transparent)]
    Issue(#[from] IssueError),
}

impl HandlerError {
    pub fn is_retryable(&self) -> bool {
        match self {
            HandlerError::Malformed(_) => false,
            HandlerError::Issue(e) => e.is_retryable(),
        }
    }
}

/// A payment event message (canonical JSON) → the issuer.
pub async fn payment_event<S: Store>(issuer: &Issuer<S>, body: &[u8]) -> Result<PaymentOutcome, HandlerError> {
    let event = PaymentEvent::from_json(body).map_err(|e| HandlerError::Malformed(e.to_string()))?;
    Ok(issuer.handle_payment(&event).await?)
}
