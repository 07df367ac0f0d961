//! The campaign email sender: fan-out jobs from SQS or Amazon MQ.

use aws_lambda_events::event::rabbitmq::RabbitMqEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::StreamExt;
use promo_shared::email::sender::{Outcome, Sender, Tally};
use serde_json::{Value, json};

use super::EntryError;
use super::event::{self, Event};
use crate::metrics::Counts;

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
pub async fn sender_until(
    sender: &Sender,
    event: Value,
    parallel: usize,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
    requeue: Option<Requeue<'_>>,
) -> Result<Value, EntryError> {
    match Event::parse(event)? {
        Event::Sqs(batch) => Ok(sqs(sender, batch, parallel, deadline, requeue).await),
        Event::AmazonMq(batch) => amazon_mq(sender, batch, parallel, deadline).await,
        Event::FunctionUrl(_) => Err(EntryError::Unrecognised),
    }
}

/// [`sender_until`]'s SQS batch.
async fn sqs(
    sender: &Sender,
    batch: SqsEvent,
    parallel: usize,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
    requeue: Option<Requeue<'_>>,
) -> Value {
    use promo_shared::ports::queue::Delivery;
    let results: Vec<(String, bool, Outcome)> = futures::stream::iter(batch.records)
        .map(|record| async move {
            let id = record.message_id.clone().unwrap_or_default();
            let encoding =
                record.message_attributes.get(crate::sqs::ENCODING_ATTRIBUTE).and_then(|a| a.string_value.as_deref());
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
                let attempt = event::receives(&record).unwrap_or(1);
                let delivery = Delivery { receipt: record.receipt_handle.clone().unwrap_or_default(), body, attempt };
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
                response.batch_item_failures.push(event::failure(id));
            }
        }
    }
    emit_email_metrics(sender, &tally, response.batch_item_failures.len(), held);
    serde_json::to_value(response).unwrap_or(Value::Null)
}

/// [`sender_until`]'s Amazon MQ batch.
async fn amazon_mq(
    sender: &Sender,
    batch: RabbitMqEvent,
    parallel: usize,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Value, EntryError> {
    let bodies = event::amazon_mq_bodies(batch);
    let outcomes: Vec<Outcome> = futures::stream::iter(bodies.iter())
        .map(|(_, b)| sender.handle_until(b, deadline))
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
    match retry {
        Some(why) => Err(EntryError::Transient(why)),
        None => Ok(json!({"sent": tally.sent, "skipped": tally.skipped, "failed": tally.failed,
                "uncertain": tally.uncertain})),
    }
}

fn emit_email_metrics(sender: &Sender, t: &Tally, returned: usize, held: usize) {
    let mut counts = Counts::default();
    counts.email(t, returned, held);
    counts.emit("sender", sender.clock.now());
}
