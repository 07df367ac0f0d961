//! SQS: the adapter of the [`Queue`] port ([`SqsQueue`]) for the campaign email fan-out on
//! AWS, and dead letters for operators ([`DeadLetters`], `promoctl --env prod dlq list|replay`).
//!
//! # Queues
//!
//! A port queue name maps to an SQS standard queue and its dead-letter queue
//! ([`SqsQueue::with_queue`]; in production the URLs come from the stack's outputs). With
//! [`SqsConfig::create_missing`] (tests, stand-ins) an unknown name `q` is created on first
//! use: `q-dead` first (14 days' retention), then `q` with `VisibilityTimeout` =
//! [`SqsConfig::visibility`] and a `RedrivePolicy` to `q-dead` with `maxReceiveCount` =
//! [`SqsConfig::max_attempts`]. Without it an unknown name is [`QueueError::Invalid`].
//!
//! # Semantics
//!
//! * **At-least-once, unordered.** A message may be delivered more than once (SQS keeps
//!   copies on several hosts) and a standard queue does not keep publish order, so consumers
//!   must be idempotent and must not rely on order. `publish` returns once SQS has accepted
//!   (stored) the message; `publish_batch` sends `SendMessageBatch` requests of up to 10
//!   messages (and at most ~1 MB), [`BATCH_CONCURRENCY`] at a time, resends the entries SQS
//!   failed once, and returns only when every message was accepted (else an error: callers
//!   republish the whole batch, duplicates included).
//! * **Leases.** A received message is invisible for the visibility timeout (sent with
//!   every `ReceiveMessage`), then delivered again unless deleted (`ack`). The receipt is
//!   the receipt handle, valid for that delivery. `receive(max, wait)` long-polls (at most
//!   20 s per request, repeated until `wait` is over) and returns up to `min(max, 10)`.
//! * **Attempts** are SQS's `ApproximateReceiveCount`: every receive counts, including one
//!   whose consumer crashed. `nack` on an attempt below `max_attempts` sets the message's
//!   visibility to `retry_in` (rounded up to whole seconds, at most 12 h): it comes back as
//!   the next attempt. On the last attempt, and on `reject`, the body is sent to the
//!   dead-letter queue (`reject`'s reason, or "failed N deliveries", in the message attribute
//!   [`REASON_ATTRIBUTE`]) and then the original deleted. A message whose consumer crashed on
//!   its last attempt is moved there by the redrive policy instead. Both steps of a
//!   dead-lettering are separate requests: a crash in between leaves a copy in both queues
//!   (never none).
//! * **`defer`** sends a copy with `DelaySeconds` = `retry_in` (rounded up, at most 15
//!   minutes, SQS's limit) and deletes the original: the copy starts again at attempt 1.
//!
//! # Bodies
//!
//! SQS bodies are text (a subset of Unicode). A body that is UTF-8 made only of the
//! characters SQS allows travels as is, so JSON jobs stay readable in the console and in
//! Lambda events; any other body travels as standard base64 with the message attribute
//! [`ENCODING_ATTRIBUTE`] = `base64`, and an empty one (SQS has no empty bodies) as
//! `-` with [`ENCODING_ATTRIBUTE`] = `empty`. [`decode_body`] undoes both: a consumer of
//! the queue's Lambda events decodes them with it.
//!
//! # Errors
//!
//! SDK errors are [`QueueError::Unavailable`] (callers retry), except those no retry can
//! fix: a queue that does not exist, an invalid receipt handle, and SQS's validation
//! errors (e.g. a message over the size limit) are [`QueueError::Invalid`].
//!
//! # Dead letters for operators
//!
//! [`DeadLetters`] reads a dead-letter queue without consuming it, and moves its messages
//! back to their source queue — each message sent to the source (with its message
//! attributes, so a base64 body stays decodable) before it is deleted from the dead-letter
//! queue, so a crash in between duplicates a message (which the consumers are idempotent
//! to) and never loses one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use promo_shared::ports::queue::{Delivery, Queue, QueueError};
use thiserror::Error;
use tokio::task::JoinSet;

use crate::dynamodb::sdk_config;

/// The message attribute naming a body's encoding: `base64` or `empty` (absent: as is).
pub const ENCODING_ATTRIBUTE: &str = "promo-encoding";
/// The message attribute of a dead letter saying why it was dead-lettered.
pub const REASON_ATTRIBUTE: &str = "promo-reason";
/// `SendMessageBatch` requests in flight at once in [`SqsQueue::publish_batch`].
pub const BATCH_CONCURRENCY: usize = 8;

/// Messages per `SendMessageBatch` / `ReceiveMessage` (SQS's limit).
const BATCH_MAX: usize = 10;
/// The payload of one `SendMessageBatch`: SQS allows 1 MiB in all; this leaves room for
/// the attributes.
const BATCH_MAX_BYTES: usize = 1_000_000;
/// The longest long poll of one `ReceiveMessage`.
const MAX_WAIT_SECONDS: u64 = 20;
/// The longest visibility timeout SQS allows (12 h).
const MAX_VISIBILITY_SECONDS: u64 = 43_200;
/// The longest `DelaySeconds` (15 minutes).
const MAX_DELAY_SECONDS: u64 = 900;
/// How long a dead letter is kept in a created dead-letter queue (SQS's maximum, 14 days).
const DEAD_LETTER_RETENTION_SECONDS: &str = "1209600";
/// The longest reason kept in [`REASON_ATTRIBUTE`], in characters.
const MAX_REASON_CHARS: usize = 1_000;

// ---------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------

/// A body as it travels in SQS: its text and the value of [`ENCODING_ATTRIBUTE`], if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedBody {
    pub text: String,
    pub encoding: Option<&'static str>,
}

/// A body that [`decode_body`] cannot decode.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BodyError {
    #[error("the body is not valid base64")]
    Base64,
    #[error("unknown body encoding {0:?}")]
    Encoding(String),
}

/// A character SQS accepts in a body or attribute value:
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
fn sqs_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The text of `body` for SQS: as is when it is non-empty UTF-8 of characters SQS allows,
/// base64 otherwise (see the module docs).
pub fn encode_body(body: &[u8]) -> EncodedBody {
    if body.is_empty() {
        return EncodedBody { text: "-".to_string(), encoding: Some("empty") };
    }
    match std::str::from_utf8(body) {
        Ok(text) if text.chars().all(sqs_char) => EncodedBody { text: text.to_string(), encoding: None },
        _ => EncodedBody { text: base64_encode(body), encoding: Some("base64") },
    }
}

/// The bytes of an SQS body whose [`ENCODING_ATTRIBUTE`] is `encoding` (`None` when the
/// message has no such attribute) — as sent by [`SqsQueue`].
pub fn decode_body(body: &str, encoding: Option<&str>) -> Result<Vec<u8>, BodyError> {
    match encoding {
        None => Ok(body.as_bytes().to_vec()),
        Some("base64") => base64_decode(body).ok_or(BodyError::Base64),
        Some("empty") => Ok(Vec::new()),
        Some(other) => Err(BodyError::Encoding(other.to_string())),
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes standard base64 with padding; `None` when `text` is not that.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}

/// A string message attribute.
fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Invalid(format!("message attribute: {e}")))
}

/// The message attributes of a body (its encoding) and, for a dead letter, its reason.
fn message_attributes(
    encoding: Option<&str>,
    reason: Option<&str>,
) -> Result<Option<HashMap<String, MessageAttributeValue>>, QueueError> {
    let mut attributes = HashMap::new();
    if let Some(encoding) = encoding {
        attributes.insert(ENCODING_ATTRIBUTE.to_string(), string_attribute(encoding)?);
    }
    if let Some(reason) = reason {
        // An attribute value must be non-empty text of SQS's characters.
        let mut text: String =
            reason.chars().take(MAX_REASON_CHARS).map(|c| if sqs_char(c) { c } else { '\u{FFFD}' }).collect();
        if text.trim().is_empty() {
            text = "(no reason given)".to_string();
        }
        attributes.insert(REASON_ATTRIBUTE.to_string(), string_attribute(&text)?);
    }
    Ok((!attributes.is_empty()).then_some(attributes))
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Error codes (the query-compatible ones SQS sends, and the JSON ones) that no retry can
/// fix: the queue or receipt does not exist, or SQS refused the request as invalid.
const INVALID_CODES: &[&str] = &[
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ReceiptHandleIsInvalid",
    "InvalidIdFormat",
    "InvalidAddress",
    "InvalidParameterValue",
    "InvalidMessageContents",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "MissingParameter",
    "QueueAlreadyExists",
    "QueueNameExists",
    "AWS.SimpleQueueService.BatchRequestTooLong",
    "BatchRequestTooLong",
];

/// A `ChangeMessageVisibility` of a message that is no longer in flight (its lease ran out).
const NOT_INFLIGHT_CODES: &[&str] = &["AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight"];

fn code_of<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.code()
}

/// Maps an SDK error of `op` on the port queue `queue` (see the module docs).
fn sdk_error<E, R>(op: &'static str, queue: &str, e: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let invalid = code_of(&e).is_some_and(|c| INVALID_CODES.contains(&c));
    let message = format!("SQS {op} on queue {queue:?}: {}", DisplayErrorContext(&e));
    if invalid { QueueError::Invalid(message) } else { QueueError::Unavailable(message) }
}

fn check_name(queue: &str) -> Result<(), QueueError> {
    if queue.is_empty() {
        return Err(QueueError::Invalid("empty queue name".into()));
    }
    Ok(())
}

/// `d` in whole seconds, rounded up.
fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

fn seconds_i32(seconds: u64) -> i32 {
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

// ---------------------------------------------------------------------------------------
// The queue adapter
// ---------------------------------------------------------------------------------------

/// How an [`SqsQueue`] uses its queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqsConfig {
    /// Deliveries before a nacked message goes to the dead-letter queue (also the
    /// `maxReceiveCount` of the queues it creates).
    pub max_attempts: u32,
    /// The lease of a received message: sent with every `ReceiveMessage` and set on the
    /// queues it creates (whole seconds, at least 1).
    pub visibility: Duration,
    /// Create a queue (and its dead-letter queue) on first use of an unknown name, instead
    /// of answering [`QueueError::Invalid`]: for tests and stand-ins.
    pub create_missing: bool,
}

/// A queue's URL and its dead-letter queue's.
#[derive(Clone, Debug)]
struct Urls {
    url: String,
    dlq_url: String,
}

/// The SQS adapter of the [`Queue`] port (see the module docs).
pub struct SqsQueue {
    client: Client,
    config: SqsConfig,
    urls: RwLock<HashMap<String, Urls>>,
}

impl SqsQueue {
    /// On the SDK's default configuration chain; `endpoint` for a stand-in. No queue is
    /// known yet: map them with [`SqsQueue::with_queue`] or set `create_missing`.
    pub async fn from_env(endpoint: Option<&str>, config: SqsConfig) -> SqsQueue {
        SqsQueue::new(Client::new(&sdk_config(endpoint).await), config)
    }

    /// On a client of the caller's.
    pub fn new(client: Client, config: SqsConfig) -> SqsQueue {
        SqsQueue { client, config, urls: RwLock::new(HashMap::new()) }
    }

    /// Maps the port queue `name` to the SQS queue at `url` and its dead-letter queue.
    pub fn with_queue(self, name: impl Into<String>, url: impl Into<String>, dlq_url: impl Into<String>) -> Self {
        self.urls
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.into(), Urls { url: url.into(), dlq_url: dlq_url.into() });
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn config(&self) -> &SqsConfig {
        &self.config
    }

    /// The URLs of the port queue `queue` and of its dead-letter queue (creating both first
    /// with `create_missing`).
    pub async fn queue_urls(&self, queue: &str) -> Result<(String, String), QueueError> {
        let urls = self.urls(queue).await?;
        Ok((urls.url, urls.dlq_url))
    }

    async fn urls(&self, queue: &str) -> Result<Urls, QueueError> {
        check_name(queue)?;
        if let Some(urls) = self.urls.read().unwrap_or_else(PoisonError::into_inner).get(queue) {
            return Ok(urls.clone());
        }
        if !self.config.create_missing {
            return Err(QueueError::Invalid(format!("no SQS queue is configured for queue {queue:?}")));
        }
        // Concurrent first uses both create: CreateQueue of an existing queue with the same
        // attributes answers its URL.
        let urls = self.create(queue).await?;
        self.urls.write().unwrap_or_else(PoisonError::into_inner).insert(queue.to_string(), urls.clone());
        Ok(urls)
    }

    /// Creates `<queue>-dead`, then `<queue>` redriving to it.
    async fn create(&self, queue: &str) -> Result<Urls, QueueError> {
        let dead = format!("{queue}-dead");
        let dlq_url = self
            .client
            .create_queue()
            .queue_name(&dead)
            .attributes(QueueAttributeName::MessageRetentionPeriod, DEAD_LETTER_RETENTION_SECONDS)
            .send()
            .await
            .map_err(|e| sdk_error("CreateQueue", &dead, e))?
            .queue_url
            .ok_or_else(|| QueueError::Unavailable(format!("SQS CreateQueue of {dead:?} answered no URL")))?;
        let dlq_arn = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error("GetQueueAttributes", &dead, e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| QueueError::Unavailable(format!("SQS GetQueueAttributes of {dead:?} answered no ARN")))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": self.config.max_attempts.clamp(1, 1000),
        });
        let visibility = ceil_seconds(self.config.visibility).clamp(1, MAX_VISIBILITY_SECONDS);
        let url = self
            .client
            .create_queue()
            .queue_name(queue)
            .attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string())
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(|e| sdk_error("CreateQueue", queue, e))?
            .queue_url
            .ok_or_else(|| QueueError::Unavailable(format!("SQS CreateQueue of {queue:?} answered no URL")))?;
        tracing::info!(queue, %url, %dlq_url, "created an SQS queue and its dead-letter queue");
        Ok(Urls { url, dlq_url })
    }

    /// The visibility timeout of a receive, in whole seconds.
    fn visibility_seconds(&self) -> i32 {
        seconds_i32(ceil_seconds(self.config.visibility).clamp(1, MAX_VISIBILITY_SECONDS))
    }

    /// Sends one message to `url` (the queue `queue` or its dead-letter queue).
    async fn send(
        &self,
        queue: &str,
        url: &str,
        body: &[u8],
        reason: Option<&str>,
        delay_seconds: u64,
    ) -> Result<(), QueueError> {
        let encoded = encode_body(body);
        let mut request = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(encoded.text)
            .set_message_attributes(message_attributes(encoded.encoding, reason)?);
        if delay_seconds > 0 {
            request = request.delay_seconds(seconds_i32(delay_seconds.min(MAX_DELAY_SECONDS)));
        }
        request.send().await.map_err(|e| sdk_error("SendMessage", queue, e))?;
        Ok(())
    }

    async fn delete(&self, queue: &str, url: &str, delivery: &Delivery) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(&delivery.receipt)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteMessage", queue, e))?;
        Ok(())
    }

    /// Sends the body to the dead-letter queue, then deletes the original.
    async fn dead_letter(&self, queue: &str, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let urls = self.urls(queue).await?;
        tracing::info!(queue, attempt = delivery.attempt, reason, "dead-lettering a message");
        self.send(queue, &urls.dlq_url, &delivery.body, Some(reason), 0).await?;
        self.delete(queue, &urls.url, delivery).await
    }
}

/// A delivery of an SQS message; `None` for one without a receipt handle.
fn delivery_of(queue: &str, m: Message) -> Option<Delivery> {
    let receipt = m.receipt_handle?;
    let attempt = m
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let encoding = m.message_attributes.as_ref().and_then(|a| a.get(ENCODING_ATTRIBUTE)).and_then(|a| a.string_value());
    let text = m.body.unwrap_or_default();
    let body = match decode_body(&text, encoding) {
        Ok(body) => body,
        Err(e) => {
            // Not sent by this adapter: its consumer sees the text as is (and rejects it).
            tracing::warn!(queue, message_id = ?m.message_id, error = %e, "undecodable SQS body: delivered as is");
            text.into_bytes()
        }
    };
    Some(Delivery { receipt, body, attempt })
}

/// Groups `bodies` into `SendMessageBatch` requests: up to [`BATCH_MAX`] entries and about
/// [`BATCH_MAX_BYTES`] each (a larger single message goes alone, and SQS judges it).
fn batch_groups(bodies: &[Vec<u8>]) -> Result<Vec<Vec<SendMessageBatchRequestEntry>>, QueueError> {
    let mut groups = Vec::new();
    let mut group: Vec<SendMessageBatchRequestEntry> = Vec::new();
    let mut bytes = 0;
    for (i, body) in bodies.iter().enumerate() {
        let encoded = encode_body(body);
        let size = encoded.text.len() + 64;
        if group.len() == BATCH_MAX || (!group.is_empty() && bytes + size > BATCH_MAX_BYTES) {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += size;
        group.push(
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(encoded.text)
                .set_message_attributes(message_attributes(encoded.encoding, None)?)
                .build()
                .map_err(|e| QueueError::Invalid(format!("SendMessageBatch entry: {e}")))?,
        );
    }
    if !group.is_empty() {
        groups.push(group);
    }
    Ok(groups)
}

/// Sends one group; the entries SQS failed (not through the sender's fault) are resent once.
async fn send_group(
    client: Client,
    queue: String,
    url: String,
    mut entries: Vec<SendMessageBatchRequestEntry>,
) -> Result<(), QueueError> {
    for round in 0..2 {
        let sent = client
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries.clone()))
            .send()
            .await
            .map_err(|e| sdk_error("SendMessageBatch", &queue, e))?;
        let Some(first) = sent.failed.first() else {
            return Ok(());
        };
        let describe = || {
            format!(
                "SQS SendMessageBatch on queue {queue:?}: {} of {} messages failed, e.g. {}: {}",
                sent.failed.len(),
                entries.len(),
                first.code,
                first.message.as_deref().unwrap_or("")
            )
        };
        if let Some(fault) = sent.failed.iter().find(|f| f.sender_fault) {
            // A retry cannot fix what SQS refused.
            return Err(QueueError::Invalid(format!(
                "{} (refused: {}: {})",
                describe(),
                fault.code,
                fault.message.as_deref().unwrap_or("")
            )));
        }
        if round == 1 {
            return Err(QueueError::Unavailable(describe()));
        }
        let failed: HashSet<&str> = sent.failed.iter().map(|f| f.id.as_str()).collect();
        tracing::warn!(queue, failed = failed.len(), "SQS SendMessageBatch failed entries: resending them");
        entries.retain(|e| failed.contains(e.id()));
    }
    Ok(())
}

#[async_trait]
impl Queue for SqsQueue {
    async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), QueueError> {
        let urls = self.urls(queue).await?;
        self.send(queue, &urls.url, body, None, 0).await
    }

    async fn publish_batch(&self, queue: &str, bodies: &[Vec<u8>]) -> Result<(), QueueError> {
        check_name(queue)?;
        if bodies.is_empty() {
            return Ok(());
        }
        let urls = self.urls(queue).await?;
        let mut groups = batch_groups(bodies)?.into_iter();
        // Dropping the set (on an error) aborts the requests still in flight.
        let mut running = JoinSet::new();
        loop {
            while running.len() < BATCH_CONCURRENCY {
                let Some(group) = groups.next() else { break };
                running.spawn(send_group(self.client.clone(), queue.to_string(), urls.url.clone(), group));
            }
            match running.join_next().await {
                None => return Ok(()),
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => return Err(QueueError::Unavailable(format!("SQS SendMessageBatch task: {e}"))),
            }
        }
    }

    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        check_name(queue)?;
        if max == 0 {
            return Ok(vec![]);
        }
        let urls = self.urls(queue).await?;
        let max = i32::try_from(max.min(BATCH_MAX)).unwrap_or(1);
        // `None`: a wait too long for the clock, i.e. forever.
        let deadline = Instant::now().checked_add(wait);
        loop {
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
            let got = self
                .client
                .receive_message()
                .queue_url(&urls.url)
                .max_number_of_messages(max)
                .wait_time_seconds(seconds_i32(ceil_seconds(left).min(MAX_WAIT_SECONDS)))
                .visibility_timeout(self.visibility_seconds())
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| sdk_error("ReceiveMessage", queue, e))?;
            let deliveries: Vec<Delivery> =
                got.messages.unwrap_or_default().into_iter().filter_map(|m| delivery_of(queue, m)).collect();
            if !deliveries.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(deliveries);
            }
        }
    }

    async fn ack(&self, queue: &str, delivery: &Delivery) -> Result<(), QueueError> {
        let urls = self.urls(queue).await?;
        self.delete(queue, &urls.url, delivery).await
    }

    async fn nack(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        if delivery.attempt >= self.config.max_attempts {
            let reason = format!("failed {} deliveries", delivery.attempt);
            return self.dead_letter(queue, delivery, &reason).await;
        }
        let urls = self.urls(queue).await?;
        let result = self
            .client
            .change_message_visibility()
            .queue_url(&urls.url)
            .receipt_handle(&delivery.receipt)
            .visibility_timeout(seconds_i32(ceil_seconds(retry_in).min(MAX_VISIBILITY_SECONDS)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Its lease ran out: it is visible again already, which is what a nack asks.
            Err(e) if code_of(&e).is_some_and(|c| NOT_INFLIGHT_CODES.contains(&c)) => {
                tracing::warn!(queue, "nack of a message no longer in flight: it is back already");
                Ok(())
            }
            Err(e) => Err(sdk_error("ChangeMessageVisibility", queue, e)),
        }
    }

    async fn reject(&self, queue: &str, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        self.dead_letter(queue, delivery, reason).await
    }

    async fn defer(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        let urls = self.urls(queue).await?;
        self.send(queue, &urls.url, &delivery.body, None, ceil_seconds(retry_in)).await?;
        self.delete(queue, &urls.url, delivery).await
    }
}

// ---------------------------------------------------------------------------------------
// Dead letters for operators
// ---------------------------------------------------------------------------------------

#[derive(Debug, Error)]
pub enum SqsError {
    #[error("SQS {op}: {message}")]
    Call { op: &'static str, message: String },
    #[error("SQS {op}: {failed} of the batch failed: {first}")]
    Partial { op: &'static str, failed: usize, first: String },
}

fn call(op: &'static str) -> impl Fn(aws_sdk_sqs::Error) -> SqsError {
    move |e| SqsError::Call { op, message: DisplayErrorContext(e).to_string() }
}

/// A dead letter as listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    pub id: String,
    pub receives: u32,
    /// The body as SQS holds it (base64 for a binary one: see the module docs).
    pub body: String,
    /// Why it was dead-lettered ([`REASON_ATTRIBUTE`]), when [`SqsQueue`] moved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A dead-letter queue and the queue its messages came from.
pub struct DeadLetters {
    client: Client,
    dlq_url: String,
    source_url: String,
}

/// How long a listed message stays invisible: listing must see each message once, and the
/// messages must come back soon for the consumers of a replay.
const LIST_VISIBILITY_SECONDS: i32 = 20;

impl DeadLetters {
    /// The queues on the SDK's default configuration chain; `endpoint_url` for a stand-in.
    pub async fn from_env(dlq_url: String, source_url: String, endpoint_url: Option<&str>) -> DeadLetters {
        DeadLetters { client: Client::new(&sdk_config(endpoint_url).await), dlq_url, source_url }
    }

    /// Up to `max` messages of the dead-letter queue, each once (they become visible again
    /// after a few seconds: listing consumes nothing).
    pub async fn list(&self, max: usize) -> Result<Vec<DeadLetter>, SqsError> {
        let mut seen = BTreeMap::new();
        while seen.len() < max {
            let got = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(LIST_VISIBILITY_SECONDS)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names(REASON_ATTRIBUTE)
                .send()
                .await
                .map_err(|e| call("ReceiveMessage")(e.into()))?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let id = m.message_id.clone().unwrap_or_default();
                let receives = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let reason = m
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get(REASON_ATTRIBUTE))
                    .and_then(|a| a.string_value())
                    .map(str::to_string);
                seen.entry(id.clone()).or_insert(DeadLetter { id, receives, body: m.body.unwrap_or_default(), reason });
            }
        }
        Ok(seen.into_values().take(max).collect())
    }

    /// Moves every message back to the source queue; returns how many. A message keeps its
    /// message attributes (its body's encoding), but not its dead-lettering reason.
    pub async fn replay(&self) -> Result<usize, SqsError> {
        let mut moved = 0;
        loop {
            let got = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| call("ReceiveMessage")(e.into()))?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(moved);
            }
            let mut sends = Vec::with_capacity(messages.len());
            let mut deletes = Vec::with_capacity(messages.len());
            for (i, m) in messages.iter().enumerate() {
                let id = format!("m{i}");
                let attributes = m.message_attributes.clone().map(|mut a| {
                    a.remove(REASON_ATTRIBUTE);
                    a
                });
                sends.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(&id)
                        .message_body(m.body.clone().unwrap_or_default())
                        .set_message_attributes(attributes.filter(|a| !a.is_empty()))
                        .build()
                        .map_err(|e| SqsError::Call { op: "SendMessageBatch", message: e.to_string() })?,
                );
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(&id)
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .build()
                        .map_err(|e| SqsError::Call { op: "DeleteMessageBatch", message: e.to_string() })?,
                );
            }
            let sent = self
                .client
                .send_message_batch()
                .queue_url(&self.source_url)
                .set_entries(Some(sends))
                .send()
                .await
                .map_err(|e| call("SendMessageBatch")(e.into()))?;
            if let Some(first) = sent.failed.first() {
                // Nothing is deleted: the whole batch is tried again later (a duplicate at most).
                return Err(SqsError::Partial {
                    op: "SendMessageBatch",
                    failed: sent.failed.len(),
                    first: first.message.clone().unwrap_or_default(),
                });
            }
            let deleted = self
                .client
                .delete_message_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(deletes))
                .send()
                .await
                .map_err(|e| call("DeleteMessageBatch")(e.into()))?;
            moved += messages.len() - deleted.failed.len();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors: [(&str, &str); 7] = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        let all: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        assert_eq!(base64_decode(&base64_encode(&all)), Some(all));
        assert_eq!(base64_encode(&[0xfb, 0xff]), "+/8=");
        for bad in ["Zg=", "Z===", "Zg==Zm8=", "Zm9*", "Zm 9"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn text_bodies_go_as_is_and_others_as_base64() {
        let json = r#"{"job":"send","to":["a@example.com"],"name":"Zoë 🎉"}"#;
        assert_eq!(encode_body(json.as_bytes()), EncodedBody { text: json.to_string(), encoding: None });
        assert_eq!(encode_body(b"tab\there\r\n").encoding, None);
        for not_text in [&b"\0nul"[..], b"bell\x07", &[0xff, 0xfe], "\u{FFFF}".as_bytes(), "\u{FFFE}".as_bytes()] {
            let encoded = encode_body(not_text);
            assert_eq!(encoded.encoding, Some("base64"), "{not_text:?}");
            assert_eq!(decode_body(&encoded.text, encoded.encoding).unwrap(), not_text);
        }
        let empty = encode_body(b"");
        assert!(!empty.text.is_empty(), "SQS has no empty bodies");
        assert_eq!(decode_body(&empty.text, empty.encoding).unwrap(), b"");
        assert_eq!(decode_body("plain", None).unwrap(), b"plain");
        assert_eq!(decode_body("!!", Some("base64")), Err(BodyError::Base64));
        assert_eq!(decode_body("x", Some("gzip")), Err(BodyError::Encoding("gzip".into())));
    }

    #[test]
    fn sqs_characters() {
        for ok in ['\t', '\n', '\r', ' ', '~', '\u{D7FF}', '\u{E000}', '\u{FFFD}', '\u{10000}', '\u{10FFFF}'] {
            assert!(sqs_char(ok), "{ok:?}");
        }
        for bad in ['\0', '\u{1}', '\u{B}', '\u{1F}', '\u{FFFE}', '\u{FFFF}'] {
            assert!(!sqs_char(bad), "{bad:?}");
        }
    }

    #[test]
    fn reasons_are_valid_attribute_values() {
        let attrs = message_attributes(Some("base64"), Some("bad\0byte")).unwrap().unwrap();
        assert_eq!(attrs[ENCODING_ATTRIBUTE].string_value(), Some("base64"));
        assert_eq!(attrs[REASON_ATTRIBUTE].string_value(), Some("bad\u{FFFD}byte"));
        let attrs = message_attributes(None, Some("")).unwrap().unwrap();
        assert_eq!(attrs[REASON_ATTRIBUTE].string_value(), Some("(no reason given)"));
        assert_eq!(message_attributes(None, None).unwrap(), None);
        let long = "x".repeat(5000);
        let attrs = message_attributes(None, Some(&long)).unwrap().unwrap();
        assert_eq!(attrs[REASON_ATTRIBUTE].string_value().map(str::len), Some(MAX_REASON_CHARS));
    }

    #[test]
    fn batches_hold_ten_messages_and_about_a_megabyte() {
        let small: Vec<Vec<u8>> = (0..25).map(|i| format!("m{i}").into_bytes()).collect();
        let sizes: Vec<usize> = batch_groups(&small).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let big: Vec<Vec<u8>> = (0..5).map(|_| vec![b'a'; 300_000]).collect();
        let sizes: Vec<usize> = batch_groups(&big).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 2]);
        let ids: Vec<String> = batch_groups(&small).unwrap().concat().iter().map(|e| e.id().to_string()).collect();
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 25, "unique entry ids");
    }

    #[test]
    fn durations_round_up_to_seconds() {
        assert_eq!(ceil_seconds(Duration::ZERO), 0);
        assert_eq!(ceil_seconds(Duration::from_millis(50)), 1);
        assert_eq!(ceil_seconds(Duration::from_secs(3)), 3);
        assert_eq!(ceil_seconds(Duration::from_millis(3001)), 4);
        assert_eq!(ceil_seconds(Duration::MAX), u64::MAX);
        assert_eq!(seconds_i32(u64::MAX), i32::MAX);
    }

    #[test]
    fn queue_names_are_checked() {
        assert!(matches!(check_name(""), Err(QueueError::Invalid(_))));
        assert!(check_name("emails").is_ok());
    }
}
