//! The delivery ledger at the edge: Durable Objects holding the deliveries' records, each
//! record decided by [`crate::ledger::apply`] on the object's single thread (strongly
//! consistent, as a conditional write would be).
//!
//! A delivery key maps to one of [`crate::ledger::LEDGER_SHARDS`] objects (FNV-1a of the key), not to an
//! object of its own: creating an object (and its SQLite database) for every delivery cost
//! most of an accepted webhook's CPU, while a shard's object stays warm. An object keeps each
//! record under `r:<key>` and an expiry index `e:<expires_at, 12 digits>:<key>`; its alarm,
//! set to the earliest expiry, deletes what has expired and moves itself to the next.
//!
//! An object also keeps the outbox of its deliveries' hand-offs (`crate::outbox`): a message
//! under `o:<queued at>:<lease>`, written with the record that completes its delivery; its
//! alarm (then due within the outbox's window, `PROMO_OUTBOX_WINDOW_MS`: 1 s unless set)
//! sends them to SQS in batches.

use std::rc::Rc;

use promo_shared::config::DEFAULT_OUTBOX_WINDOW_MS;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use promo_shared::config::QueueTarget;
use promo_shared::http::ApiError;
use promo_shared::idempotency::IdempotencyConfig;
use promo_shared::idempotency::items::Record;
use promo_shared::ports::ledger::{DeliveryLedger, Recorded, Taken};
use serde_json::Value;
use worker::{
    DurableObject, Env, ListOptions, Method, ObjectNamespace, Request, RequestInit, Response, Result, State,
    durable_object,
};

use crate::clock::now;
use crate::ledger::{
    KEY_HEADER, LedgerCommand, LedgerReply, SWEEP_LIMIT, Step, Write, apply, expiry_of, index_key, key_of_index,
    record_key, shard_of, swept_until,
};
use crate::outbox::{Flushed, Pending, flush, outbox_key, retry_after_ms};

/// The Worker's side: sends a command to the delivery's object.
pub struct DurableObjectLedger {
    pub namespace: ObjectNamespace,
    /// With a payment queue: the request's hand-off state (`crate::outbox`); the run's
    /// message rides on its `complete`, and a standard or Stripe webhook's `begin` is
    /// deferred to it (one round trip).
    pub outbox: Option<Rc<Pending>>,
}

/// The lease of a begin deferred to the run's `complete` (never an object's lease: those are
/// `<ms hex>-<random hex>`).
const DEFERRED: &str = "deferred";

/// Whether a delivery's begin can wait for its `complete`: a webhook whose event is in its
/// signed body (nothing is looked up before the hand-off, so deferring only moves the
/// dedupe decision to the same round trip).
fn deferrable(key: &str) -> bool {
    key.starts_with("webhook:standard:") || key.starts_with("webhook:stripe:")
}

impl DurableObjectLedger {
    async fn call(&self, key: &str, cmd: &LedgerCommand) -> std::result::Result<LedgerReply, ApiError> {
        let unavailable = |e: worker::Error| ApiError::Unavailable(format!("delivery ledger: {e}"));
        let stub = self.namespace.id_from_name(&shard_of(key)).and_then(|id| id.get_stub()).map_err(unavailable)?;
        let body = serde_json::to_string(cmd).map_err(|e| ApiError::Internal(e.to_string()))?;
        let headers = worker::Headers::new();
        headers.set(KEY_HEADER, key).map_err(unavailable)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
        let req = Request::new_with_init("https://ledger/", &init).map_err(unavailable)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(unavailable)?;
        resp.json().await.map_err(unavailable)
    }
}

#[async_trait(?Send)]
impl DeliveryLedger for DurableObjectLedger {
    async fn begin(&self, key: &str, payload_hash: &str, now: DateTime<Utc>) -> std::result::Result<Taken, ApiError> {
        if let Some(pending) = self.outbox.as_ref().filter(|_| deferrable(key)) {
            *pending.deferred.borrow_mut() = Some((key.to_string(), payload_hash.to_string()));
            return Ok(Taken::Run { lease: DEFERRED.into() });
        }
        match self
            .call(key, &LedgerCommand::Begin { hash: payload_hash.into(), now_ms: now.timestamp_millis() })
            .await?
        {
            LedgerReply::Started { lease } => Ok(Taken::Run { lease }),
            LedgerReply::Completed { answer } => Ok(Taken::Replay(answer)),
            LedgerReply::Conflict => {
                Err(ApiError::Conflict("this delivery id was already used with a different body".into()))
            }
            LedgerReply::InProgress | LedgerReply::Done | LedgerReply::LeaseLost => {
                Err(ApiError::InProgress(key.into()))
            }
        }
    }

    async fn complete(
        &self,
        key: &str,
        lease: &str,
        answer: &Value,
        now: DateTime<Utc>,
        keep: chrono::Duration,
    ) -> std::result::Result<Recorded, ApiError> {
        let message = self.outbox.as_ref().and_then(|p| p.message.borrow_mut().take());
        let deferred = self.outbox.as_ref().and_then(|p| p.deferred.borrow_mut().take());
        if lease == DEFERRED {
            let Some((_, hash)) = deferred.filter(|(k, _)| k == key) else {
                return Err(ApiError::Internal("a deferred delivery completed without its begin".into()));
            };
            let message = message
                .ok_or_else(|| ApiError::Internal("a deferred delivery completed without its hand-off".into()))?;
            return self.accept(key, hash, answer, now, keep, message).await;
        }
        let cmd = LedgerCommand::Complete {
            lease: lease.into(),
            answer: answer.clone(),
            now_ms: now.timestamp_millis(),
            keep_ms: keep.num_milliseconds(),
            message,
        };
        match self.call(key, &cmd).await? {
            LedgerReply::LeaseLost => Ok(Recorded::LeaseLost),
            _ => Ok(Recorded::Yes),
        }
    }

    async fn release(&self, key: &str, lease: &str) -> std::result::Result<(), ApiError> {
        if let Some(pending) = &self.outbox {
            // The run failed: its message (if any) is not sent.
            pending.message.borrow_mut().take();
            pending.deferred.borrow_mut().take();
        }
        if lease == DEFERRED {
            return Ok(()); // nothing was recorded
        }
        self.call(key, &LedgerCommand::Release { lease: lease.into() }).await.map(|_| ())
    }
}

impl DurableObjectLedger {
    /// The deferred webhook's one round trip: take, record and queue, or learn it is a
    /// replay (its stored answer is then given instead: `crate::entry`), a conflict, or in
    /// progress.
    async fn accept(
        &self,
        key: &str,
        hash: String,
        answer: &Value,
        now: DateTime<Utc>,
        keep: chrono::Duration,
        message: crate::ledger::Queued,
    ) -> std::result::Result<Recorded, ApiError> {
        let cmd = LedgerCommand::Accept {
            hash,
            now_ms: now.timestamp_millis(),
            answer: answer.clone(),
            keep_ms: keep.num_milliseconds(),
            message,
        };
        match self.call(key, &cmd).await? {
            LedgerReply::Done => Ok(Recorded::Yes),
            LedgerReply::Completed { answer } => {
                if let Some(pending) = &self.outbox {
                    *pending.replayed.borrow_mut() = Some(answer);
                }
                Ok(Recorded::Yes)
            }
            LedgerReply::Conflict => {
                Err(ApiError::Conflict("this delivery id was already used with a different body".into()))
            }
            LedgerReply::Started { .. } | LedgerReply::InProgress | LedgerReply::LeaseLost => {
                Err(ApiError::InProgress(key.into()))
            }
        }
    }
}

/// The alarm time of epoch milliseconds `ms`. (`set_alarm` reads a bare `i64` as an offset
/// from now: the expiry alarm set that way fired decades late, so nothing was ever swept.)
#[allow(clippy::cast_precision_loss)] // epoch ms stay far below 2^53
fn epoch_ms(ms: i64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(worker::js_sys::Date::new(&worker::wasm_bindgen::JsValue::from_f64(ms as f64)))
}

/// A new lease token: unique per run of a delivery (the time, and randomness against two
/// takes in the same millisecond — which the object's single thread already excludes).
#[allow(clippy::float_arithmetic)] // scales JS's uniform draw in [0, 1) to an integer in [0, 2^53)
fn new_lease(now: DateTime<Utc>) -> String {
    let r = (worker::js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
    format!("{:x}-{r:x}", now.timestamp_millis())
}

/// The object: one per shard of delivery keys.
#[durable_object]
pub struct WebhookDedupe {
    state: State,
    /// The alarm as this instance last read or set it (`None` inside: no alarm); read from
    /// storage once per instance.
    alarm_at: std::cell::Cell<Option<Option<i64>>>,
    /// Where the outbox sends: the Worker's payment queue (its vars reach the object too).
    queue: Option<QueueTarget>,
    /// Failed sends in a row (the outbox's backoff).
    failures: std::cell::Cell<u32>,
    /// The outbox's window (`PROMO_OUTBOX_WINDOW_MS`).
    window_ms: i64,
    /// The earliest expiry in the index (epoch ms; `Some(None)`: none), as this instance
    /// last listed or wrote it: an alarm for the outbox alone lists no expiries.
    next_expiry: std::cell::Cell<Option<Option<i64>>>,
    /// Messages this instance queued since its last alarm began (one queued while the alarm
    /// sends is then not left behind).
    queued: std::cell::Cell<u32>,
}

impl WebhookDedupe {
    /// Makes sure the alarm fires by `wanted` (epoch ms).
    async fn alarm_by(&self, wanted: i64) -> Result<()> {
        let storage = self.state.storage();
        let current = match self.alarm_at.get() {
            Some(at) => at,
            None => storage.get_alarm().await?,
        };
        if current.is_none_or(|at| at > wanted) {
            storage.set_alarm(epoch_ms(wanted)).await?;
            self.alarm_at.set(Some(Some(wanted)));
        } else {
            self.alarm_at.set(Some(current));
        }
        Ok(())
    }

    /// Deletes what has expired; the next expiry (epoch ms) after that.
    async fn sweep(&self, storage: &worker::Storage) -> Result<Option<i64>> {
        let now_s = now().timestamp();
        let end = swept_until(now_s);
        let due = storage.list_with_options(ListOptions::new().prefix("e:").end(&end).limit(SWEEP_LIMIT)).await?;
        let mut swept = 0usize;
        for entry in due.keys() {
            let Some(index) = entry?.as_string() else { continue };
            let Some(key) = key_of_index(&index) else { continue };
            // A record completed again since carries a later expiry (and its own index entry).
            let record: Option<Record> = storage.get(&record_key(&key)).await.ok().flatten();
            if record.is_some_and(|r| r.expires_at <= now_s) {
                storage.delete(&record_key(&key)).await?;
            }
            storage.delete(&index).await?;
            swept += 1;
        }
        if swept == SWEEP_LIMIT {
            return Ok(Some((now_s + 1).saturating_mul(1000)));
        }
        let first = storage.list_with_options(ListOptions::new().prefix("e:").limit(1)).await?;
        Ok(first
            .keys()
            .into_iter()
            .filter_map(|k| k.ok()?.as_string())
            .filter_map(|k| expiry_of(&k))
            .next()
            .map(|s| s.saturating_mul(1000)))
    }
}

impl DurableObject for WebhookDedupe {
    fn new(state: State, env: Env) -> Self {
        let config = crate::config::read(|k| env.var(k).ok().map(|v| v.to_string())).ok();
        let window_ms = config.as_ref().map_or(DEFAULT_OUTBOX_WINDOW_MS, |c| c.outbox_window_ms).into();
        let queue = config.and_then(|c| c.payment_queue);
        WebhookDedupe {
            state,
            alarm_at: std::cell::Cell::new(None),
            queue,
            failures: std::cell::Cell::new(0),
            window_ms,
            next_expiry: std::cell::Cell::new(None),
            queued: std::cell::Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let key = req.headers().get(KEY_HEADER)?.ok_or_else(|| worker::Error::RustError("no ledger key".into()))?;
        let cmd: LedgerCommand = req.json().await?;
        // A record of an older layout does not parse: it is treated as absent (at most a
        // replay answered afresh, which the issuer dedupes).
        let current: Option<Record> = storage.get(&record_key(&key)).await.ok().flatten();
        let lease = new_lease(now());
        let Step { reply, write, enqueue } = apply(cmd, current.as_ref(), lease.clone(), &IdempotencyConfig::default());
        // The record and its message are one write (one `putMultiple`: both or neither), and
        // the reply leaves only once it is durable (the object's output gate).
        let mut puts = serde_json::Map::new();
        let mut alarm_at: Option<i64> = None;
        if let Some(message) = &enqueue {
            let at = now().timestamp_millis();
            puts.insert(outbox_key(at, &lease), serde_json::to_value(message)?);
            alarm_at = Some(at + self.window_ms);
            self.queued.set(self.queued.get().saturating_add(1));
        }
        match write {
            Write::Keep => {}
            Write::Put(record) => {
                if let Some(old) = current.as_ref().filter(|old| old.expires_at != record.expires_at) {
                    storage.delete(&index_key(old.expires_at, &key)).await?;
                }
                puts.insert(index_key(record.expires_at, &key), Value::Bool(true));
                let expiry = record.expires_at.saturating_mul(1000);
                alarm_at = Some(alarm_at.map_or(expiry, |at| at.min(expiry)));
                if let Some(known) = self.next_expiry.get() {
                    self.next_expiry.set(Some(Some(known.map_or(expiry, |at| at.min(expiry)))));
                }
                puts.insert(record_key(&key), serde_json::to_value(&record)?);
            }
            Write::Delete => {
                storage.delete(&record_key(&key)).await?;
                if let Some(old) = &current {
                    storage.delete(&index_key(old.expires_at, &key)).await?;
                }
            }
        }
        if !puts.is_empty() {
            let object = worker::js_sys::JSON::parse(&Value::Object(puts).to_string())?;
            storage.put_multiple_raw(object.into()).await?;
        }
        if let Some(at) = alarm_at {
            self.alarm_by(at).await?;
        }
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
        // A running alarm is no longer set: a message queued while it sends sets its own.
        self.alarm_at.set(Some(None));
        self.queued.set(0);
        let flushed = flush(&storage, self.queue.as_ref(), now()).await?;
        let now_ms = now().timestamp_millis();
        let next_expiry = match self.next_expiry.get() {
            Some(next) if next.is_none_or(|at| at > now_ms) => next,
            _ => self.sweep(&storage).await?,
        };
        self.next_expiry.set(Some(next_expiry));
        let next_send = match flushed {
            Flushed::Failed => {
                self.failures.set(self.failures.get().saturating_add(1));
                Some(now_ms + retry_after_ms(self.failures.get()))
            }
            Flushed::More => Some(now_ms),
            Flushed::Empty => {
                self.failures.set(0);
                (self.queued.get() > 0).then_some(now_ms + self.window_ms)
            }
        };
        let next = match (next_send, next_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at) = next {
            storage.set_alarm(epoch_ms(at)).await?;
        }
        self.alarm_at.set(Some(next));
        Response::ok("")
    }
}
