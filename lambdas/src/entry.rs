//! The Lambdas' entries, plain code over JSON so they are tested without the runtime.
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

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::rabbitmq::RabbitMqEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use promo_shared::payments::webhooks::standard;
use promo_shared::payments::webhooks::standard::Secret;
use promo_shared::ports::store::Store;
use serde_json::{Value, json};
use thiserror::Error;
use tracing::Instrument;

use crate::metrics::Counts;

use futures::StreamExt;
use promo_shared::email::sender::{Outcome, Sender, Tally};
use promo_shared::payments::handlers;
use promo_shared::payments::handlers::HandlerError;
use promo_shared::payments::issuer::Issuer;
use promo_shared::serve::api::Api;

/// Allowed clock difference for the signed hand-off.
pub const HANDOFF_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Error)]
pub enum EntryError {
    #[error("unrecognised event: neither a function URL request, an SQS batch nor an Amazon MQ batch")]
    Unrecognised,
    /// Fails the invocation so the whole batch is redelivered.
    #[error("transient failure, the batch will be redelivered: {0}")]
    Transient(String),
}

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
    if event.get("requestContext").is_some() && event.get("rawPath").is_some() {
        let req: LambdaFunctionUrlRequest = serde_json::from_value(event).map_err(|_| EntryError::Unrecognised)?;
        return Ok(function_url(issuer, secrets, req, counts).await);
    }
    if event.pointer("/Records/0/eventSource").and_then(Value::as_str) == Some("aws:sqs")
        || event.get("Records").is_some_and(|r| r.as_array().is_some_and(Vec::is_empty))
    {
        let batch: SqsEvent = serde_json::from_value(event).map_err(|_| EntryError::Unrecognised)?;
        return Ok(serde_json::to_value(sqs(issuer, batch, counts).await).unwrap_or(Value::Null));
    }
    if event.get("rmqMessagesByQueue").is_some() {
        let batch: RabbitMqEvent = serde_json::from_value(event).map_err(|_| EntryError::Unrecognised)?;
        return rabbitmq(issuer, batch, counts).await;
    }
    Err(EntryError::Unrecognised)
}

/// The span one payment event is handled in.
fn event_span(request_id: Option<&str>) -> tracing::Span {
    tracing::info_span!("payment_event", request_id = request_id.unwrap_or("-"))
}

/// The shoppers' API Lambda behind its function URL: the request goes to [`Api`] as it came
/// (method, path, headers, body) and its answer goes back as the function URL response. A
/// body that is not valid base64 is 400 `invalid_body`; anything that is not a function URL
/// request fails the invocation.
pub async fn api<S: Store>(api: &Api<S>, event: Value) -> Result<Value, EntryError> {
    let req: LambdaFunctionUrlRequest = serde_json::from_value(event).map_err(|e| {
        tracing::error!(error = %e, "the API function got an event that is not a function URL request");
        EntryError::Unrecognised
    })?;
    let body = match (req.body, req.is_base64_encoded) {
        (Some(b), true) => match B64.decode(b) {
            Ok(bytes) => bytes,
            Err(_) => return Ok(url_response(400, error_body("invalid_body", "body is not base64"))),
        },
        (Some(b), false) => b.into_bytes(),
        (None, _) => vec![],
    };
    let method = req.request_context.http.method.unwrap_or_else(|| "GET".into());
    let path = req.raw_path.or(req.request_context.http.path).unwrap_or_else(|| "/".into());
    let query = req.raw_query_string.clone().unwrap_or_default();
    let mut request = promo_shared::http::Request::new(&method, &path).with_query(&query).body(body);
    request.client = req.request_context.http.source_ip.clone();
    let mut counts = Counts::default();
    let resp = match url_headers(&req.headers) {
        Ok(mut headers) => {
            // Called directly (not through the Worker, which sends its id): the invocation's
            // id names the request in the answer of a 5xx and in the log.
            if !headers.iter().any(|(k, _)| k == "x-request-id")
                && let Some(id) = &req.request_context.request_id
            {
                headers.push(("x-request-id".into(), id.clone()));
            }
            request.headers = headers;
            match promo_shared::http::Route::of(&request.method, &request.path) {
                Ok(route) => {
                    let span = tracing::info_span!(
                        "request",
                        request_id = promo_shared::http::request_id(&request).unwrap_or("-")
                    );
                    let resp = api.handle(route, &request).instrument(span).await;
                    count_api(&route, &resp, &mut counts);
                    resp
                }
                Err(e) => e.into_response(),
            }
        }
        Err(e) => e.into_response(),
    };
    counts.emit("api", api.claimer.clock.now());
    let mut headers = serde_json::Map::new();
    for (name, value) in resp.headers {
        headers.insert(name, Value::String(value));
    }
    Ok(json!({
        "statusCode": resp.status,
        "headers": headers,
        "body": String::from_utf8_lossy(&resp.body),
        "isBase64Encoded": false,
    }))
}

/// A function URL request's headers, names in lower case; a value that is not valid (see
/// `promo_shared::http::valid_header_value`) is refused, never dropped.
fn url_headers(
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

/// The API's metrics of one answer.
fn count_api(route: &promo_shared::http::Route<'_>, resp: &promo_shared::http::Response, counts: &mut Counts) {
    if resp.status == 429 {
        counts.add("throttled", 1);
    }
    if !matches!(route, promo_shared::http::Route::Claim { .. }) {
        return;
    }
    let code = resp.json_body().pointer("/error/code").and_then(Value::as_str).map(str::to_string);
    match (resp.status, code.as_deref()) {
        (200..=299, _) => counts.add("claimed", 1),
        (_, Some("sold_out")) => counts.add("sold_out", 1),
        (_, Some("claim_limit_reached")) => counts.add("claim_limit_reached", 1),
        _ => counts.add("claim_rejected", 1),
    }
}

fn url_response(status: u16, body: Value) -> Value {
    json!({"statusCode": status, "headers": {"content-type": "application/json"}, "body": body.to_string()})
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

async fn function_url<S: Store>(
    issuer: &Issuer<S>,
    secrets: &[Secret],
    req: LambdaFunctionUrlRequest,
    counts: &mut Counts,
) -> Value {
    let body = match (req.body, req.is_base64_encoded) {
        (Some(b), true) => match B64.decode(b) {
            Ok(bytes) => bytes,
            Err(_) => return url_response(400, error_body("invalid_body", "body is not base64")),
        },
        (Some(b), false) => b.into_bytes(),
        (None, _) => vec![],
    };
    let headers = match url_headers(&req.headers) {
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
        let receives = record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse::<u32>().ok());
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
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
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
    for (queue, messages) in batch.messages_by_queue {
        for message in messages {
            let Some(body) = message.data.as_deref().and_then(|d| B64.decode(d).ok()) else {
                tracing::error!(%queue, "Amazon MQ message without base64 data: skipped");
                continue;
            };
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
    }
    Ok(json!({"handled": handled}))
}

/// Where the sender Lambda puts back an SQS job it holds (a paused send's, one outside its
/// send window, one the deadline left unfinished): the email queue, through the queue port's
/// `defer` — a copy with `DelaySeconds` and the original deleted — so holding a job never
/// counts a receive toward the queue's `maxReceiveCount`.
#[derive(Clone, Copy)]
pub struct Requeue<'a> {
    pub queue: &'a dyn promo_shared::ports::queue::Queue,
    /// The port queue name the adapter maps to the email queue's URL.
    pub name: &'a str,
}

/// [`sender_until`] without a deadline or a queue to put jobs back in.
#[cfg(feature = "aws")]
pub async fn sender(sender: &Sender, event: Value, parallel: usize) -> Result<Value, EntryError> {
    sender_until(sender, event, parallel, None, None).await
}

/// The campaign email sender Lambda: fan-out jobs from SQS or Amazon MQ, each sent by
/// [`Sender::handle_until`] before `deadline` (the invocation's deadline less a margin);
/// `parallel` jobs at once (Amazon MQ gives one concurrent invocation per event source, so an
/// invocation must not send one job after another).
///
/// - **SQS**: a job that is done is deleted. A job held — its send paused, outside its send
///   window, or left unfinished by the deadline (nothing of its rest claimed) — goes back
///   through `requeue` as a delayed copy (the wait, at most 15 minutes; at once for an
///   unfinished one) and the original is deleted: never a failed receive, so a send waiting
///   overnight for its window is not dead-lettered. Without `requeue`, or when putting it back
///   fails, it is returned in `batchItemFailures` like a throttled or failed job (redelivered
///   after the visibility timeout; after the queue's `maxReceiveCount` dead-lettered). A
///   malformed job is returned too, so it lands in the dead-letter queue.
/// - **Amazon MQ**: no partial failures, and the event source has no delayed redelivery: a job
///   to retry, held or unfinished fails the invocation (the batch comes back; recipients
///   already settled are not sent again), a malformed one is logged and skipped. A send
///   paused or outside its window for long is better paused at the source (see
///   docs/operators).
#[cfg(feature = "aws")]
pub async fn sender_until(
    sender: &Sender,
    event: Value,
    parallel: usize,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
    requeue: Option<Requeue<'_>>,
) -> Result<Value, EntryError> {
    use promo_shared::ports::queue::Delivery;
    if event.pointer("/Records/0/eventSource").and_then(Value::as_str) == Some("aws:sqs")
        || event.get("Records").is_some_and(|r| r.as_array().is_some_and(Vec::is_empty))
    {
        let batch: SqsEvent = serde_json::from_value(event).map_err(|_| EntryError::Unrecognised)?;
        let results: Vec<(String, bool, Outcome)> = futures::stream::iter(batch.records)
            .map(|record| async move {
                let id = record.message_id.clone().unwrap_or_default();
                let encoding = record
                    .message_attributes
                    .get(crate::sqs::ENCODING_ATTRIBUTE)
                    .and_then(|a| a.string_value.as_deref());
                let text = record.body.as_deref().unwrap_or_default();
                let body = match crate::sqs::decode_body(text, encoding) {
                    Ok(body) => body,
                    Err(e) => return (id, false, Outcome::Poison(format!("undecodable SQS body: {e}"))),
                };
                let outcome = sender.handle_until(&body, deadline).await;
                let wait = match &outcome {
                    Outcome::Paused(wait) => Some(*wait),
                    Outcome::Unfinished(_) => Some(std::time::Duration::ZERO),
                    _ => None,
                };
                let mut put_back = false;
                if let (Some(wait), Some(r)) = (wait, requeue) {
                    let attempt = record
                        .attributes
                        .get("ApproximateReceiveCount")
                        .and_then(|n| n.parse::<u32>().ok())
                        .unwrap_or(1);
                    let delivery =
                        Delivery { receipt: record.receipt_handle.clone().unwrap_or_default(), body, attempt };
                    match r.queue.defer(r.name, &delivery, wait).await {
                        Ok(()) => put_back = true,
                        Err(e) => {
                            tracing::warn!(message_id = %id, error = %e, "could not put an email job back: returned")
                        }
                    }
                }
                (id, put_back, outcome)
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        let mut tally = Tally::default();
        let mut held = 0;
        for (id, put_back, outcome) in results {
            match outcome {
                Outcome::Done(t) => tally.add(&t),
                Outcome::Unfinished(t) if put_back => {
                    tally.add(&t);
                    held += 1;
                }
                Outcome::Paused(wait) if put_back => {
                    tracing::info!(message_id = %id, wait_s = wait.as_secs(), "email job held: put back with a delay");
                    held += 1;
                }
                other => {
                    if let Outcome::Unfinished(t) = &other {
                        tally.add(t);
                    }
                    tracing::warn!(message_id = %id, outcome = ?other, "email job returned to the queue");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
            }
        }
        emit_email_metrics(sender, &tally, response.batch_item_failures.len(), held);
        return Ok(serde_json::to_value(response).unwrap_or(Value::Null));
    }
    if event.get("rmqMessagesByQueue").is_some() {
        let batch: RabbitMqEvent = serde_json::from_value(event).map_err(|_| EntryError::Unrecognised)?;
        let bodies: Vec<Vec<u8>> = batch
            .messages_by_queue
            .into_values()
            .flatten()
            .filter_map(|m| {
                let body = m.data.as_deref().and_then(|d| B64.decode(d).ok());
                if body.is_none() {
                    tracing::error!("Amazon MQ message without base64 data: skipped");
                }
                body
            })
            .collect();
        let outcomes: Vec<Outcome> = futures::stream::iter(bodies.iter())
            .map(|b| sender.handle_until(b, deadline))
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        let mut tally = Tally::default();
        let mut retry = None;
        for o in outcomes {
            match o {
                Outcome::Done(t) => tally.add(&t),
                Outcome::Poison(why) => {
                    tracing::error!(reason = %why, "Amazon MQ email job that cannot succeed: skipped")
                }
                Outcome::Paused(_) => retry = retry.or(Some("the send is paused".to_string())),
                Outcome::Unfinished(t) => {
                    tally.add(&t);
                    retry = retry.or(Some("the invocation's deadline came before the job was done".to_string()));
                }
                Outcome::Later(_, why) => retry = retry.or(Some(why)),
            }
        }
        emit_email_metrics(sender, &tally, usize::from(retry.is_some()), 0);
        return match retry {
            Some(why) => Err(EntryError::Transient(why)),
            None => Ok(json!({"sent": tally.sent, "skipped": tally.skipped, "failed": tally.failed,
                "uncertain": tally.uncertain})),
        };
    }
    Err(EntryError::Unrecognised)
}

fn emit_email_metrics(sender: &Sender, t: &Tally, returned: usize, held: usize) {
    let mut counts = Counts::default();
    counts.email(t, returned, held);
    counts.emit("sender", sender.clock.now());
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

/// The feedback Lambda: SES bounce and complaint events through SNS. Each suppresses its
/// addresses and may pause its campaign's email; a record that is not an SES event is
/// logged and skipped (SNS retries a failed invocation, a malformed record never succeeds);
/// a store failure fails the invocation so SNS delivers it again.
pub async fn feedback<S: Store + ?Sized>(
    store: &S,
    clock: &dyn promo_shared::ports::clock::Clock,
    event: Value,
) -> Result<Value, EntryError> {
    let records = event.get("Records").and_then(Value::as_array).ok_or(EntryError::Unrecognised)?;
    let (mut suppressed, mut paused) = (0, Vec::new());
    for r in records {
        let Some(message) = r.pointer("/Sns/Message").and_then(Value::as_str) else {
            tracing::error!("an SNS record without a message: skipped");
            continue;
        };
        match crate::ses_events::parse(message, clock.now()) {
            Ok(Some(mut f)) => {
                // Without SES's feedback id, the notification's own id: SNS keeps it on redelivery.
                if f.id.is_none() {
                    f.id = r.pointer("/Sns/MessageId").and_then(Value::as_str).map(str::to_string);
                }
                let done = promo_shared::email::feedback::record(store, clock, &f)
                    .await
                    .map_err(|e| EntryError::Transient(e.to_string()))?;
                suppressed += done.suppressed;
                paused.extend(done.paused);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "not an SES event: skipped"),
        }
    }
    Ok(json!({"suppressed": suppressed, "paused": paused}))
}

/// The events' scheduler (EventBridge, every minute): ticks until nothing due is left or
/// `deadline` (the invocation's remaining time less a margin) is reached — the rest stays in
/// the due index for the next run, never cut by a timeout midway. The payload is ignored:
/// a run does what is due at its own clock.
pub async fn scheduler<S: Store + ?Sized>(
    events: &promo_shared::events::Events<'_, S>,
    notices: Option<&promo_shared::events::scheduler::Notices<'_>>,
    deadline: chrono::DateTime<chrono::Utc>,
) -> Result<Value, EntryError> {
    use promo_shared::events::scheduler::{Budget, TickReport, tick};
    let mut total = TickReport::default();
    let mut ticks = 0;
    loop {
        let budget = Budget { items: 5_000, deadline: Some(deadline) };
        let r = tick(events, notices, budget).await.map_err(|e| EntryError::Transient(e.to_string()))?;
        ticks += 1;
        total.merge(&r);
        total.due_left = r.due_left;
        // A notice that failed waits for the next run; so does what the deadline left.
        if !r.due_left || r.settled == 0 || events.clock.now() >= deadline {
            break;
        }
    }
    tracing::info!(ticks, report = ?total, "scheduler run");
    let mut out = serde_json::to_value(&total).unwrap_or(Value::Null);
    out["ticks"] = json!(ticks);
    Ok(out)
}
