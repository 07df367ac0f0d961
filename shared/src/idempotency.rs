//! Idempotency records in the style of AWS Lambda Powertools, over the store port.
//!
//! One item per idempotency key: `pk = IDEMP#<key>`, `sk = IDEMP`, with `status`
//! (`INPROGRESS` / `COMPLETED`), `in_progress_expiry` (epoch ms: a crashed run stops
//! blocking after it), `expires_at` (epoch s: the TTL), `payload_hash` (the same key with
//! another payload is a conflict, not a replay) and `result` (returned on replay).
//!
//! A run may start when the conditional put succeeds: no record, or an expired record,
//! or an in-progress record past its in-progress expiry.

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use thiserror::Error;

use crate::store::{Cond, ItemExt, Key, Store, StoreError, Update};

pub const STATUS_IN_PROGRESS: &str = "INPROGRESS";
pub const STATUS_COMPLETED: &str = "COMPLETED";

#[derive(Clone, Copy, Debug)]
pub struct IdempotencyConfig {
    /// How long a completed record answers replays (longer than any sender's retry span).
    pub record_ttl: Duration,
    /// How long an in-progress record blocks others before a crashed run is presumed dead.
    pub in_progress_ttl: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig { record_ttl: Duration::days(7), in_progress_ttl: Duration::seconds(60) }
    }
}

/// The outcome of trying to start a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    /// This caller owns the run now.
    Started,
    /// Already done: here is the stored result.
    Completed(Value),
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum IdempotencyError {
    #[error("idempotency key `{0}` was already used with a different payload")]
    PayloadMismatch(String),
    #[error("a run for idempotency key `{0}` is in progress")]
    InProgress(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn record_key(key: &str) -> Key {
    Key::new(format!("IDEMP#{key}"), "IDEMP")
}

/// Tries to take the run for `key`.
pub async fn begin<S: Store + ?Sized>(
    store: &S,
    key: &str,
    payload_hash: &str,
    now: DateTime<Utc>,
    cfg: &IdempotencyConfig,
) -> Result<Begin, IdempotencyError> {
    let k = record_key(key);
    let mut item = k.item();
    item.insert("status".into(), STATUS_IN_PROGRESS.into());
    item.insert("payload_hash".into(), payload_hash.into());
    item.insert("in_progress_expiry".into(), (now + cfg.in_progress_ttl).timestamp_millis().into());
    item.insert("expires_at".into(), (now + cfg.record_ttl).timestamp().into());
    let takeable = Cond::Or(vec![
        Cond::NotExists,
        Cond::Lt("expires_at".into(), now.timestamp()),
        Cond::And(vec![
            Cond::eq("status", STATUS_IN_PROGRESS),
            Cond::Lt("in_progress_expiry".into(), now.timestamp_millis()),
        ]),
    ]);
    // One round trip: a refused put returns the record that refused it.
    let existing = match store.put(item, Some(takeable)).await {
        Ok(()) => return Ok(Begin::Started),
        Err(StoreError::ConditionFailed { found: Some(existing) }) => existing,
        // The condition holds on a missing record, so a store that refuses without one
        // breaks the port: report it rather than guess.
        Err(StoreError::ConditionFailed { found: None }) => {
            return Err(StoreError::Invalid("a refused idempotency record was not returned".into()).into());
        }
        Err(e) => return Err(e.into()),
    };
    if existing.str_attr("payload_hash") != Some(payload_hash) {
        return Err(IdempotencyError::PayloadMismatch(key.to_string()));
    }
    if existing.str_attr("status") == Some(STATUS_COMPLETED) {
        let result = existing.str_attr("result").and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
        return Ok(Begin::Completed(result));
    }
    Err(IdempotencyError::InProgress(key.to_string()))
}

/// Marks the run done and stores its result for replays.
pub async fn complete<S: Store + ?Sized>(
    store: &S,
    key: &str,
    result: &Value,
    now: DateTime<Utc>,
    cfg: &IdempotencyConfig,
) -> Result<(), StoreError> {
    store
        .update(
            &record_key(key),
            &[
                Update::set("status", STATUS_COMPLETED),
                Update::set("result", result.to_string()),
                Update::set("expires_at", (now + cfg.record_ttl).timestamp()),
                Update::Remove("in_progress_expiry".into()),
            ],
            Some(Cond::Exists),
        )
        .await
        .map(|_| ())
}

/// Gives the run up (it failed), so the sender's retry can take it at once.
pub async fn release<S: Store + ?Sized>(store: &S, key: &str) -> Result<(), StoreError> {
    match store.delete(&record_key(key), Some(Cond::eq("status", STATUS_IN_PROGRESS))).await {
        Ok(_) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs `f` at most once per key (until the record expires); a replay gets the stored
/// result and `true`. A failing `f` releases the key and its error is returned.
pub async fn run_once<S, F, Fut, E>(
    store: &S,
    key: &str,
    payload_hash: &str,
    now: DateTime<Utc>,
    cfg: &IdempotencyConfig,
    f: F,
) -> Result<(Value, bool), E>
where
    S: Store + ?Sized,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Value, E>>,
    E: From<IdempotencyError>,
{
    match begin(store, key, payload_hash, now, cfg).await? {
        Begin::Completed(v) => Ok((v, true)),
        Begin::Started => match f().await {
            Ok(v) => {
                complete(store, key, &v, now, cfg).await.map_err(IdempotencyError::from)?;
                Ok((v, false))
            }
            Err(e) => {
                // Best effort: if this fails too, the in-progress expiry frees the key.
                let _ = release(store, key).await;
                Err(e)
            }
        },
    }
}
