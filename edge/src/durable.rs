//! The delivery ledger at the edge: Durable Objects holding the deliveries' records, each
//! record decided by [`crate::ledger::apply`] on the object's single thread (strongly
//! consistent, as a conditional write would be).
//!
//! A delivery key maps to one of [`crate::ledger::LEDGER_SHARDS`] objects (FNV-1a of the key), not to an
//! object of its own: creating an object (and its SQLite database) for every delivery cost
//! most of an accepted webhook's CPU, while a shard's object stays warm. An object keeps each
//! record under `r:<key>` and an expiry index `e:<expires_at, 12 digits>:<key>`; its alarm,
//! set to the earliest expiry, deletes what has expired and moves itself to the next.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
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
    KEY_HEADER, LedgerCommand, LedgerReply, SWEEP_LIMIT, Write, apply, expiry_of, index_key, key_of_index, record_key,
    shard_of, swept_until,
};

/// The Worker's side: sends a command to the delivery's object.
pub struct DurableObjectLedger {
    pub namespace: ObjectNamespace,
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
        let cmd = LedgerCommand::Complete {
            lease: lease.into(),
            answer: answer.clone(),
            now_ms: now.timestamp_millis(),
            keep_ms: keep.num_milliseconds(),
        };
        match self.call(key, &cmd).await? {
            LedgerReply::LeaseLost => Ok(Recorded::LeaseLost),
            _ => Ok(Recorded::Yes),
        }
    }

    async fn release(&self, key: &str, lease: &str) -> std::result::Result<(), ApiError> {
        self.call(key, &LedgerCommand::Release { lease: lease.into() }).await.map(|_| ())
    }
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
}

impl WebhookDedupe {
    /// Makes sure the alarm fires by `expires_at` (epoch seconds).
    async fn alarm_by(&self, expires_at: i64) -> Result<()> {
        let storage = self.state.storage();
        let current = match self.alarm_at.get() {
            Some(at) => at,
            None => storage.get_alarm().await?,
        };
        let wanted = expires_at.saturating_mul(1000);
        if current.is_none_or(|at| at > wanted) {
            storage.set_alarm(wanted).await?;
            self.alarm_at.set(Some(Some(wanted)));
        } else {
            self.alarm_at.set(Some(current));
        }
        Ok(())
    }
}

impl DurableObject for WebhookDedupe {
    fn new(state: State, _env: Env) -> Self {
        WebhookDedupe { state, alarm_at: std::cell::Cell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let key = req.headers().get(KEY_HEADER)?.ok_or_else(|| worker::Error::RustError("no ledger key".into()))?;
        let cmd: LedgerCommand = req.json().await?;
        // A record of an older layout does not parse: it is treated as absent (at most a
        // replay answered afresh, which the issuer dedupes).
        let current: Option<Record> = storage.get(&record_key(&key)).await.ok().flatten();
        let (reply, write) = apply(cmd, current.as_ref(), new_lease(now()), &IdempotencyConfig::default());
        match write {
            Write::Keep => {}
            Write::Put(record) => {
                if let Some(old) = current.as_ref().filter(|old| old.expires_at != record.expires_at) {
                    storage.delete(&index_key(old.expires_at, &key)).await?;
                }
                storage.put(&record_key(&key), &record).await?;
                storage.put(&index_key(record.expires_at, &key), true).await?;
                self.alarm_by(record.expires_at).await?;
            }
            Write::Delete => {
                storage.delete(&record_key(&key)).await?;
                if let Some(old) = &current {
                    storage.delete(&index_key(old.expires_at, &key)).await?;
                }
            }
        }
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
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
        let next = if swept == SWEEP_LIMIT {
            Some((now_s + 1).saturating_mul(1000))
        } else {
            let first = storage.list_with_options(ListOptions::new().prefix("e:").limit(1)).await?;
            first
                .keys()
                .into_iter()
                .filter_map(|k| k.ok()?.as_string())
                .filter_map(|k| expiry_of(&k))
                .next()
                .map(|s| s.saturating_mul(1000))
        };
        if let Some(at) = next {
            storage.set_alarm(at).await?;
        }
        self.alarm_at.set(Some(next));
        Response::ok(format!("swept {swept}"))
    }
}
