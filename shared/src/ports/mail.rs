//! The mailer port.

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::email::EmailAddress;

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
