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
    /// Certainly not sent (the provider said so before accepting, or the request never
    /// left): safe to send again later.
    #[error("mailer unavailable: {0}")]
    Unavailable(String),
    /// The request may have gone out and been accepted — a timeout after it was sent, a
    /// connection lost mid-call, an answer that cannot be read, a 5xx. Never sent again on its
    /// own: its recipients are reported uncertain, and only the marketer resends them.
    #[error("mailer answer ambiguous, the message may have been sent: {0}")]
    Ambiguous(String),
}

impl MailError {
    /// Whether sending the same message again is safe and may succeed (throttled, or certainly
    /// not sent). A rejection never succeeds; an ambiguous answer may already have been sent.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MailError::Throttled(_) | MailError::Unavailable(_))
    }
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends and returns the message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError>;
}

/// A stored template: `{{name}}` variables filled per recipient (SES's template syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// One recipient of a bulk send: the address, their template data and their own headers
/// (`List-Unsubscribe`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkEntry {
    pub to: EmailAddress,
    pub data: std::collections::BTreeMap<String, String>,
    pub headers: Vec<(String, String)>,
}

/// The most recipients one bulk call may carry (SES's `SendBulkEmail` limit).
pub const MAX_BULK: usize = 50;

/// Templated sends to many recipients in one call (SES v2 `SendBulkEmail`).
#[async_trait]
pub trait BulkMailer: Send + Sync {
    /// Creates or updates a stored template.
    async fn put_template(&self, template: &Template) -> Result<(), MailError>;
    /// Sends `template` to each entry (at most [`MAX_BULK`]); one result per entry, in order,
    /// since a bulk call can partly succeed. `Err` when the call as a whole failed: throttled
    /// or unavailable — then nothing was sent — or [`MailError::Ambiguous`] when it may have
    /// been (implementations make one attempt, never retrying such a call themselves). `tags` travel with each message and come back in
    /// the provider's bounce and complaint events.
    async fn send_bulk(
        &self,
        from: &str,
        template: &str,
        entries: &[BulkEntry],
        tags: &[(String, String)],
    ) -> Result<Vec<Result<String, MailError>>, MailError>;
}

#[async_trait]
impl<T: BulkMailer + ?Sized> BulkMailer for std::sync::Arc<T> {
    async fn put_template(&self, template: &Template) -> Result<(), MailError> {
        (**self).put_template(template).await
    }
    async fn send_bulk(
        &self,
        from: &str,
        template: &str,
        entries: &[BulkEntry],
        tags: &[(String, String)],
    ) -> Result<Vec<Result<String, MailError>>, MailError> {
        (**self).send_bulk(from, template, entries, tags).await
    }
}

/// The account's send rate, shared by every sender: `acquire(n)` waits until `n` more
/// messages may go out.
#[async_trait]
pub trait SendRate: Send + Sync {
    async fn acquire(&self, n: u32);
    /// The most messages one call may send at once under this rate (a bulk call is one
    /// instant: a slow account sends smaller ones).
    fn max_batch(&self) -> usize {
        MAX_BULK
    }
}

/// No limit (a stand-in that takes any rate).
pub struct Unlimited;

#[async_trait]
impl SendRate for Unlimited {
    async fn acquire(&self, _n: u32) {}
}
