//! The coupon issuer: one function with three ways in (see the module above), each with its
//! own failure semantics.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::rabbitmq::RabbitMqEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use promo_shared::payments::handlers;
use promo_shared::payments::handlers::HandlerError;
use promo_shared::payments::issuer::Issuer;
use promo_shared::payments::webhooks::standard;
use promo_shared::payments::webhooks::standard::Secret;
use promo_shared::ports::store::Store;
use serde_json::{Value, json};
use tracing::Instrument;

use super::event::{self, Event};
use super::{EntryError, error_body, url_response};
use crate::metrics::Counts;

/// Allowed clock difference for the signed hand-off.
pub const HANDOFF_TOLERANCE_SECONDS: i64 = 300;

/// Handles one invocation's event, writes its metrics, and returns the Lambda's answer.
pub async fn handle<S: Store>(issuer: &Issuer<S>, secrets: &[Secret], event: Value) -> Result<Value, EntryError> {
    let (answer, counts) = handle_counted(issuer, secrets, event).await;
    counts.emit("issuer", issuer.clock.now());
    answer
}

/// [`handle`], returning the invocation's metrics instead of writing them.
pub async fn handle_counted<S: Store>(
    issuer: &Issuer<S>,
    secrets: &[Secret],
    event: Value,
) -> (Result<Value, EntryError>, Counts) {
    let mut counts = Counts::default();
    let answer = route(issuer, secrets, event, &mut counts).await;
    (answer, counts)
}

async fn route<S: Store>(
    issuer: &Issuer<S>,
    secrets: &[Secret],
    event: Value,
    counts: &mut Counts,
) -> Result<Value, EntryError> {
    match Event::parse(event)? {
        Event::FunctionUrl(req) => Ok(function_url(issuer, secrets, *req, counts).await),
        Event::Sqs(batch) => Ok(serde_json::to_value(sqs(issuer, batch, counts).await).unwrap_or(Value::Null)),
        Event::AmazonMq(batch) => rabbitmq(issuer, batch, counts).await,
    }
}

/// The span one payment event is handled in.
fn event_span(request_id: Option<&str>) -> tracing::Span {
    tracing::info_span!("payment_event", request_id = request_id.unwrap_or("-"))
}

async fn function_url<S: Store>(
    issuer: &Issuer<S>,
    secrets: &[Secret],
    req: LambdaFunctionUrlRequest,
    counts: &mut Counts,
) -> Value {
    let body = match event::url_body(req.body, req.is_base64_encoded) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let headers = match event::url_headers(&req.headers) {
        Ok(h) => h,
        Err(e) => return url_response(e.status(), error_body(e.code(), &e.to_string())),
    };
    if secrets.is_empty() {
        return url_response(503, error_body("unavailable", "PROMO_ISSUER_SECRET is not configured"));
    }
    let now = issuer.clock.now().timestamp();
    if let Err(e) = standard::verify(secrets, &headers, &body, now, HANDOFF_TOLERANCE_SECONDS) {
        return url_response(401, error_body("invalid_signature", &e.to_string()));
    }
    let request_id = headers.iter().find(|(k, _)| k == "x-request-id").map(|(_, v)| v.as_str());
    let handled = handlers::payment_event(issuer, &body).instrument(event_span(request_id)).await;
    match handled {
        Ok(outcome) => {
            counts.payment(&outcome);
            url_response(200, json!({"status": "handled", "outcome": outcome}))
        }
        Err(e) => {
            // The edge retries a refused hand-off itself (the provider retries it): nothing
            // is dead-lettered on this way in.
            counts.add("failed", 1);
            match e {
                HandlerError::Malformed(_) => url_response(400, error_body("invalid_body", &e.to_string())),
                _ if e.is_retryable() => url_response(503, error_body("unavailable", &e.to_string())),
                _ => url_response(500, error_body("internal", &e.to_string())),
            }
        }
    }
}

async fn sqs<S: Store>(issuer: &Issuer<S>, batch: SqsEvent, counts: &mut Counts) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in batch.records {
        let id = record.message_id.clone().unwrap_or_default();
        let receives = event::receives(&record);
        let request_id = record.message_attributes.get("request_id").and_then(|a| a.string_value.clone());
        let span = event_span(request_id.as_deref());
        let body = record.body.unwrap_or_default();
        match handlers::payment_event(issuer, body.as_bytes()).instrument(span.clone()).await {
            Ok(outcome) => counts.payment(&outcome),
            Err(e) => {
                span.in_scope(|| {
                    tracing::warn!(message_id = %id, retryable = e.is_retryable(), receives, error = %e, "SQS record failed")
                });
                counts.failure(&e, receives);
                response.batch_item_failures.push(event::failure(id));
            }
        }
    }
    response
}

async fn rabbitmq<S: Store>(
    issuer: &Issuer<S>,
    batch: RabbitMqEvent,
    counts: &mut Counts,
) -> Result<Value, EntryError> {
    let mut handled = 0;
    for (queue, body) in event::amazon_mq_bodies(batch) {
        match handlers::payment_event(issuer, &body).await {
            Ok(outcome) => {
                counts.payment(&outcome);
                handled += 1
            }
            Err(e) if e.is_retryable() => {
                counts.failure(&e, None);
                return Err(EntryError::Transient(e.to_string()));
            }
            // Failing the invocation would redeliver the whole batch forever.
            Err(e @ HandlerError::Malformed(_)) => {
                counts.failure(&e, None);
                tracing::error!(%queue, error = %e, "malformed Amazon MQ message: skipped")
            }
            Err(e) => {
                counts.failure(&e, None);
                tracing::error!(%queue, error = %e, "Amazon MQ message that cannot succeed: skipped")
            }
        }
    }
    Ok(json!({"handled": handled}))
}
