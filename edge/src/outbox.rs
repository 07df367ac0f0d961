//! The durable outbox of the payment hand-off: a delivery's object keeps the message of an
//! accepted delivery in its own storage, written in the same step as the delivery's
//! completed record (`crate::ledger::LedgerCommand::Accept`), and answers; the webhook's 2xx
//! thus comes only once the message is durable. The object's alarm then sends what its
//! outbox holds to SQS in batches (`SendMessageBatch`, up to 10), and deletes a message only
//! once SQS has acknowledged it; what SQS did not take stays and is sent again, with backoff.
//! A redelivered webhook meanwhile finds the completed record: a replay, never a second
//! message.
//!
//! The Worker's side ([`OutboxHandOff`] with `crate::durable::DurableObjectLedger`): the
//! hand-off only holds the run's message, which the ledger's next command carries to the
//! object. For a standard or Stripe webhook (whose event is in its body) the ledger defers
//! `begin` too, so the whole accepted path is one round trip to the object.
//!
//! The keys and timings are plain code, tested on the host.

/// Where an object keeps its queued messages: `o:<queued at, epoch ms, 13 digits>:<lease>`,
/// sent in that order (the lease is unique per run, so two runs never share a key).
pub const OUTBOX_PREFIX: &str = "o:";

// How long after a message is queued its object sends (`EdgeConfig::outbox_window_ms`,
// `PROMO_OUTBOX_WINDOW_MS`, 1 s unless set): messages queued meanwhile in the same object go
// in the same batch (a send costs about as much Worker CPU as an accepted webhook:
// BENCHMARKS.md). Also the most the hand-off to SQS is delayed by it.

/// Batches one alarm sends at most; more wait for the next alarm, set at once.
pub const BATCHES_PER_ALARM: usize = 10;

/// The outbox key of the message of the run `lease`, queued at `now_ms`.
pub fn outbox_key(now_ms: i64, lease: &str) -> String {
    format!("{OUTBOX_PREFIX}{now_ms:013}:{lease}")
}

/// How long to wait before sending again after `failures` failed attempts in a row (1 s,
/// doubling, at most 5 minutes): a queue outage is retried until SQS is back.
pub fn retry_after_ms(failures: u32) -> i64 {
    (1_000i64 << failures.saturating_sub(1).min(9)).min(300_000)
}

#[cfg(target_arch = "wasm32")]
pub use worker_adapter::{Flushed, OutboxHandOff, Pending, flush};

#[cfg(target_arch = "wasm32")]
mod worker_adapter {
    use std::cell::RefCell;
    use std::rc::Rc;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use promo_shared::config::QueueTarget;
    use promo_shared::domain::payment::PaymentEvent;
    use promo_shared::http::ApiError;
    use promo_shared::ports::handoff::HandOff;
    use serde_json::Value;
    use worker::{Headers, ListOptions, Method, Request, RequestInit, Storage};

    use super::{BATCHES_PER_ALARM, OUTBOX_PREFIX};
    use crate::ledger::Queued;
    use crate::sqs::{BATCH_MAX, batch_outcome, send_message_batch};

    /// One request's state shared by its hand-off and its ledger: the message handed off
    /// (carried by the ledger's next command), the deferred begin of a webhook, and the
    /// stored answer when that webhook proved a replay.
    #[derive(Default)]
    pub struct Pending {
        pub message: RefCell<Option<Queued>>,
        /// `(key, hash)` of a begin deferred to the run's `complete`.
        pub deferred: RefCell<Option<(String, String)>>,
        pub replayed: RefCell<Option<Value>>,
    }

    /// The hand-off of a Worker with a payment queue: holds the run's message for the
    /// ledger, which puts it in the delivery object's outbox with the completed record.
    pub struct OutboxHandOff {
        pub pending: Rc<Pending>,
    }

    #[async_trait(?Send)]
    impl HandOff for OutboxHandOff {
        async fn hand_off(&self, event: &PaymentEvent, request_id: Option<&str>) -> Result<(), ApiError> {
            let body = String::from_utf8(event.to_json()).map_err(|e| ApiError::Internal(e.to_string()))?;
            *self.pending.message.borrow_mut() = Some(Queued { body, request_id: request_id.map(str::to_string) });
            Ok(())
        }
    }

    /// What sending from the outbox did.
    pub enum Flushed {
        /// The outbox is empty.
        Empty,
        /// More is queued than one alarm sends: come back at once.
        More,
        /// SQS did not take everything (or could not be reached): try again later.
        Failed,
    }

    /// Sends what the outbox holds to `queue`, oldest first, in batches; deletes what SQS
    /// acknowledged.
    pub async fn flush(storage: &Storage, queue: Option<&QueueTarget>, now: DateTime<Utc>) -> worker::Result<Flushed> {
        for _ in 0..BATCHES_PER_ALARM {
            let listed = storage.list_with_options(ListOptions::new().prefix(OUTBOX_PREFIX).limit(BATCH_MAX)).await?;
            let mut keys = Vec::new();
            let mut messages = Vec::new();
            for entry in listed.entries() {
                let pair: worker::js_sys::Array = entry?.into();
                let (Some(key), value) = (pair.get(0).as_string(), pair.get(1)) else { continue };
                let text = worker::js_sys::JSON::stringify(&value).ok().and_then(|s| s.as_string()).unwrap_or_default();
                match serde_json::from_str::<Queued>(&text) {
                    Ok(m) => {
                        keys.push(key);
                        messages.push(m);
                    }
                    Err(e) => {
                        // Unsendable as stored: it would block nothing but itself; say so.
                        worker::console_error!("outbox: dropping an unreadable message {key}: {e}");
                        storage.delete(&key).await?;
                    }
                }
            }
            if keys.is_empty() {
                return Ok(Flushed::Empty);
            }
            let Some(queue) = queue else {
                worker::console_error!("outbox: {} messages queued but the worker has no payment queue", keys.len());
                return Ok(Flushed::Failed);
            };
            let refs: Vec<&Queued> = messages.iter().collect();
            let taken = match send(queue, &refs, now).await {
                Ok(taken) => taken,
                Err(e) => {
                    worker::console_error!("outbox: the payment queue did not take {} messages: {e}", keys.len());
                    return Ok(Flushed::Failed);
                }
            };
            let done: Vec<&str> = keys.iter().zip(&taken).filter(|(_, t)| **t).map(|(k, _)| k.as_str()).collect();
            if !done.is_empty() {
                storage.delete_multiple(done.clone()).await?;
            }
            if done.len() < keys.len() {
                worker::console_error!(
                    "outbox: the payment queue refused {} of {} messages",
                    keys.len() - done.len(),
                    keys.len()
                );
                return Ok(Flushed::Failed);
            }
            if keys.len() < BATCH_MAX {
                return Ok(Flushed::Empty);
            }
        }
        Ok(Flushed::More)
    }

    /// One `SendMessageBatch`: which messages SQS took.
    async fn send(queue: &QueueTarget, messages: &[&Queued], now: DateTime<Utc>) -> Result<Vec<bool>, String> {
        let signed = send_message_batch(queue, messages, now).map_err(|e| e.to_string())?;
        let headers = Headers::new();
        for (k, v) in &signed.headers {
            headers.set(k, v).map_err(|e| e.to_string())?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_headers(headers).with_body(Some(signed.body.into()));
        let req = Request::new_with_init(&signed.url, &init).map_err(|e| e.to_string())?;
        let mut resp = worker::Fetch::Request(req).send().await.map_err(|e| e.to_string())?;
        let status = resp.status_code();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            // SQS's error type, never the request.
            let kind = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(str::to_string))
                .unwrap_or_default();
            return Err(format!("answered {status} {kind}"));
        }
        Ok(batch_outcome(&text, messages.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_keys_sort_by_time_and_retries_back_off_to_five_minutes() {
        assert!(outbox_key(999, "z") < outbox_key(1_000, "a"));
        assert!(outbox_key(1_000, "a").starts_with(OUTBOX_PREFIX));
        assert_eq!(
            [0, 1, 2, 3, 9, 10, 40].map(retry_after_ms),
            [1_000, 1_000, 2_000, 4_000, 256_000, 300_000, 300_000]
        );
    }
}
