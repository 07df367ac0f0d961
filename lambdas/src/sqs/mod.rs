//! SQS: the adapter of the [`Queue`] port ([`SqsQueue`], in `queue`) for the campaign email
//! fan-out on AWS, and dead letters for operators ([`DeadLetters`], in `dead_letters`:
//! `promoctl --env prod dlq list|replay`); this module holds what both use: body encoding,
//! message attributes, error mapping and SQS's limits.
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

// Bodies

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

// Errors

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

mod dead_letters;
mod queue;

pub use dead_letters::{DeadLetter, DeadLetters, SqsError};
pub use queue::{SqsConfig, SqsQueue};

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::queue::batch_groups;
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
