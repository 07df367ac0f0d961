//! The event shapes the functions take, read in one place: a function URL request, an SQS
//! batch or an Amazon MQ (RabbitMQ) batch, and the parts of them more than one function
//! needs (a function URL's body and headers, Amazon MQ's base64 bodies, SQS's receive count
//! and partial batch failures).

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::rabbitmq::RabbitMqEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsEvent, SqsMessage};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use super::{EntryError, error_body, url_response};

/// One invocation's event.
pub(crate) enum Event {
    FunctionUrl(Box<LambdaFunctionUrlRequest>),
    Sqs(SqsEvent),
    AmazonMq(RabbitMqEvent),
}

impl Event {
    /// Which shape `event` is; [`EntryError::Unrecognised`] when it is none of them.
    pub(crate) fn parse(event: Value) -> Result<Self, EntryError> {
        if event.get("requestContext").is_some() && event.get("rawPath").is_some() {
            return function_url(event).map(|r| Event::FunctionUrl(Box::new(r)));
        }
        if event.pointer("/Records/0/eventSource").and_then(Value::as_str) == Some("aws:sqs")
            || event.get("Records").is_some_and(|r| r.as_array().is_some_and(Vec::is_empty))
        {
            return serde_json::from_value(event).map(Event::Sqs).map_err(|_| EntryError::Unrecognised);
        }
        if event.get("rmqMessagesByQueue").is_some() {
            return serde_json::from_value(event).map(Event::AmazonMq).map_err(|_| EntryError::Unrecognised);
        }
        Err(EntryError::Unrecognised)
    }
}

/// `event` as a function URL request.
pub(crate) fn function_url(event: Value) -> Result<LambdaFunctionUrlRequest, EntryError> {
    serde_json::from_value(event).map_err(|_| EntryError::Unrecognised)
}

/// A function URL request's body, decoded when it came as base64; `Err` is the 400 answer to
/// a body that is not valid base64.
pub(crate) fn url_body(body: Option<String>, is_base64_encoded: bool) -> Result<Vec<u8>, Value> {
    match (body, is_base64_encoded) {
        (Some(b), true) => {
            B64.decode(b).map_err(|_| url_response(400, error_body("invalid_body", "body is not base64")))
        }
        (Some(b), false) => Ok(b.into_bytes()),
        (None, _) => Ok(vec![]),
    }
}

/// A function URL request's headers, names in lower case; a value that is not valid (see
/// `promo_shared::http::valid_header_value`) is refused, never dropped.
pub(crate) fn url_headers(
    headers: &aws_lambda_events::http::HeaderMap,
) -> Result<Vec<(String, String)>, promo_shared::http::ApiError> {
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match value.to_str() {
            Ok(v) if promo_shared::http::valid_header_value(v) => out.push((name.as_str().to_string(), v.to_string())),
            _ => return Err(promo_shared::http::invalid_header(name.as_str())),
        }
    }
    Ok(out)
}

/// An Amazon MQ batch's messages as (queue, body); a message without base64 data can never
/// be handled, so it is logged and skipped.
pub(crate) fn amazon_mq_bodies(batch: RabbitMqEvent) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (queue, messages) in batch.messages_by_queue {
        for message in messages {
            match message.data.as_deref().and_then(|d| B64.decode(d).ok()) {
                Some(body) => out.push((queue.clone(), body)),
                None => tracing::error!(%queue, "Amazon MQ message without base64 data: skipped"),
            }
        }
    }
    out
}

/// How many times SQS has delivered `record` (its `ApproximateReceiveCount`).
pub(crate) fn receives(record: &SqsMessage) -> Option<u32> {
    record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok())
}

/// The partial batch failure that returns the SQS message `id` to its queue.
pub(crate) fn failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}
