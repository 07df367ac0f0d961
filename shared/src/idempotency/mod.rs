//! Idempotency records in the style of AWS Lambda Powertools: one decision, two homes.
//!
//! A record per idempotency key holds `status` (`INPROGRESS` / `COMPLETED`), the `owner`'s
//! lease token (the run that holds it), `in_progress_expiry` (epoch ms: a crashed run stops
//! blocking after it), `expires_at` (epoch s: the TTL), `payload_hash` (the same key with
//! another payload is a conflict, not a replay) and `result` (returned on replay).
//!
//! The rules are [`decide_begin`], [`decide_complete`] and [`decide_release`], pure functions
//! over the current [`Record`]: the Durable Object ledger at the edge applies them to the one
//! record it holds, and the store functions below ([`begin`], [`complete`], [`release`]) state
//! the very same rules as conditions on a conditional write ([`takeable`], [`owned_by`]), so the
//! store enforces them atomically. `tests::conditions_and_decisions_agree` checks that the two
//! forms decide alike on every kind of record.
//!
//! A run may start when there is no record, the record has expired, or it is in progress
//! past its in-progress expiry (its owner presumably crashed). Only the run that holds the
//! lease may complete or release the record: a run whose lease ran out (and was taken over)
//! is told [`IdempotencyError::LeaseLost`] and changes nothing.

pub mod items;

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use thiserror::Error;

use crate::idempotency::items::{Record, STATUS_COMPLETED, STATUS_IN_PROGRESS, from_item, record_key, to_item};
use crate::ports::store::{Cond, Store, StoreError, Update};

/// The record key of a client's idempotency key within `scope` (e.g. `claim`) and the parts
/// that own it (the shopper): each part prefixed by its length, so no two different tuples
/// meet — user `x` with key `y:z` and user `x:y` with key `z` are different records, though
/// `:` is allowed in both.
pub fn scoped_key(scope: &str, parts: &[&str]) -> String {
    let mut key = scope.to_string();
    for part in parts {
        key.push_str(&format!(":{}:{part}", part.len()));
    }
    key
}

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
    /// This caller owns the run now, under the lease token it passed.
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
    /// The caller's lease ran out and another run took the key over: the caller's result is
    /// not recorded, and its release frees nothing.
    #[error("the run for idempotency key `{0}` lost its lease to another run")]
    LeaseLost(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`decide_begin`] concludes.
#[derive(Clone, Debug, PartialEq)]
pub enum BeginDecision {
    /// Write this record: the caller owns the run.
    Take(Record),
    /// A completed run's result.
    Replay(Value),
    /// The same key with another payload.
    Conflict,
    /// Another run holds a live lease.
    InProgress,
}

/// Whether a run may start over `current` at `now`: absent, expired, or in progress past
/// its in-progress expiry.
pub fn is_takeable(current: Option<&Record>, now: DateTime<Utc>) -> bool {
    match current {
        None => true,
        Some(r) => r.expires_at < now.timestamp() || (!r.completed && r.in_progress_expiry_ms < now.timestamp_millis()),
    }
}

/// The rule of starting a run with lease token `owner`.
pub fn decide_begin(
    current: Option<&Record>,
    payload_hash: &str,
    owner: &str,
    now: DateTime<Utc>,
    cfg: &IdempotencyConfig,
) -> BeginDecision {
    if is_takeable(current, now) {
        return BeginDecision::Take(Record {
            completed: false,
            payload_hash: payload_hash.to_string(),
            owner: owner.to_string(),
            in_progress_expiry_ms: (now + cfg.in_progress_ttl).timestamp_millis(),
            expires_at: (now + cfg.record_ttl).timestamp(),
            result: None,
        });
    }
    match current {
        Some(r) if r.payload_hash != payload_hash => BeginDecision::Conflict,
        Some(r) if r.completed => BeginDecision::Replay(r.result.clone().unwrap_or(Value::Null)),
        _ => BeginDecision::InProgress,
    }
}

/// Whether `owner` holds the run of `current`: in progress under its lease token.
pub fn is_owned_by(current: Option<&Record>, owner: &str) -> bool {
    current.is_some_and(|r| !r.completed && r.owner == owner)
}

/// The rule of completing: the completed record kept for `keep`, or `None` when `owner` no
/// longer holds the run.
pub fn decide_complete(
    current: Option<&Record>,
    owner: &str,
    result: &Value,
    now: DateTime<Utc>,
    keep: Duration,
) -> Option<Record> {
    let r = current.filter(|_| is_owned_by(current, owner))?;
    Some(Record { completed: true, result: Some(result.clone()), expires_at: (now + keep).timestamp(), ..r.clone() })
}

/// The rule of releasing (a failed run gives the key up): delete the record only when
/// `owner` still holds it.
pub fn decide_release(current: Option<&Record>, owner: &str) -> bool {
    is_owned_by(current, owner)
}

/// [`is_takeable`] as a store condition.
pub fn takeable(now: DateTime<Utc>) -> Cond {
    Cond::Or(vec![
        Cond::NotExists,
        Cond::Lt("expires_at".into(), now.timestamp()),
        Cond::And(vec![
            Cond::eq("status", STATUS_IN_PROGRESS),
            Cond::Lt("in_progress_expiry".into(), now.timestamp_millis()),
        ]),
    ])
}

/// [`is_owned_by`] as a store condition.
pub fn owned_by(owner: &str) -> Cond {
    Cond::And(vec![Cond::eq("status", STATUS_IN_PROGRESS), Cond::eq("owner", owner)])
}

/// Tries to take the run for `key` under the lease token `owner` (unique per run).
pub async fn begin<S: Store + ?Sized>(
    store: &S,
    key: &str,
    payload_hash: &str,
    owner: &str,
    now: DateTime<Utc>,
    cfg: &IdempotencyConfig,
) -> Result<Begin, IdempotencyError> {
    let BeginDecision::Take(record) = decide_begin(None, payload_hash, owner, now, cfg) else {
        unreachable!("a missing record is always takeable")
    };
    // One round trip: a refused put returns the record that refused it.
    let existing = match store.put(to_item(key, &record), Some(takeable(now))).await {
        Ok(()) => return Ok(Begin::Started),
        Err(StoreError::ConditionFailed { found: Some(existing) }) => from_item(&existing),
        // The condition holds on a missing record, so a store that refuses without one
        // breaks the port: report it rather than guess.
        Err(StoreError::ConditionFailed { found: None }) => {
            return Err(StoreError::Invalid("a refused idempotency record was not returned".into()).into());
        }
        Err(e) => return Err(e.into()),
    };
    match decide_begin(Some(&existing), payload_hash, owner, now, cfg) {
        BeginDecision::Conflict => Err(IdempotencyError::PayloadMismatch(key.to_string())),
        BeginDecision::Replay(result) => Ok(Begin::Completed(result)),
        // Refused by the store yet takeable by the rule: it changed in between; the sender retries.
        BeginDecision::InProgress | BeginDecision::Take(_) => Err(IdempotencyError::InProgress(key.to_string())),
    }
}

/// Marks the run done and stores its result for replays, kept for `cfg.record_ttl`.
pub async fn complete<S: Store + ?Sized>(
    store: &S,
    key: &str,
    owner: &str,
    result: &Value,
    now: DateTime<Utc>,
    cfg: &IdempotencyConfig,
) -> Result<(), IdempotencyError> {
    complete_for(store, key, owner, result, now, cfg.record_ttl).await
}

/// [`complete`], keeping the result for `keep` instead of the record TTL (a short-lived answer,
/// such as "not final yet", that should be looked at afresh soon).
pub async fn complete_for<S: Store + ?Sized>(
    store: &S,
    key: &str,
    owner: &str,
    result: &Value,
    now: DateTime<Utc>,
    keep: Duration,
) -> Result<(), IdempotencyError> {
    let updates = [
        Update::set("status", STATUS_COMPLETED),
        Update::set("result", result.to_string()),
        Update::set("expires_at", (now + keep).timestamp()),
        Update::Remove("in_progress_expiry".into()),
    ];
    match store.update(&record_key(key), &updates, Some(owned_by(owner))).await {
        Ok(_) => Ok(()),
        Err(StoreError::ConditionFailed { .. }) => Err(IdempotencyError::LeaseLost(key.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Gives the run up (it failed), so the sender's retry can take it at once. Frees the key
/// only while `owner` holds it: a run that lost its lease frees nothing.
pub async fn release<S: Store + ?Sized>(store: &S, key: &str, owner: &str) -> Result<(), StoreError> {
    match store.delete(&record_key(key), Some(owned_by(owner))).await {
        Ok(_) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs `f` at most once per key (until the record expires) under the lease token `owner`; a
/// replay gets the stored result and `true`. A failing `f` releases the key and its error is
/// returned. A run that lost its lease while `f` ran returns `f`'s result all the same (it
/// happened), with the record left to the run that took it over.
pub async fn run_once<S, F, Fut, E>(
    store: &S,
    key: &str,
    payload_hash: &str,
    owner: &str,
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
    match begin(store, key, payload_hash, owner, now, cfg).await? {
        Begin::Completed(v) => Ok((v, true)),
        Begin::Started => match f().await {
            Ok(v) => match complete(store, key, owner, &v, now, cfg).await {
                Ok(()) | Err(IdempotencyError::LeaseLost(_)) => Ok((v, false)),
                Err(e) => Err(e.into()),
            },
            Err(e) => {
                // Best effort: if this fails too, the in-progress expiry frees the key.
                let _ = release(store, key, owner).await;
                Err(e)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scoped_keys_of_different_owners_never_meet() {
        let a = super::scoped_key("claim", &["x", "y:z"]);
        let b = super::scoped_key("claim", &["x:y", "z"]);
        assert_ne!(a, b, "user `x` with key `y:z` and user `x:y` with key `z`");
        assert_eq!(a, "claim:1:x:3:y:z");
        assert_ne!(super::scoped_key("claim", &["x", "k"]), super::scoped_key("reserve", &["x", "k"]));
    }

    use super::*;
    use crate::testing::at;

    fn records(now: DateTime<Utc>) -> Vec<Option<Record>> {
        let base = Record {
            completed: false,
            payload_hash: "h".into(),
            owner: "a".into(),
            in_progress_expiry_ms: now.timestamp_millis() + 1,
            expires_at: now.timestamp() + 100,
            result: None,
        };
        let mut out = vec![None, Some(base.clone())];
        for (completed, lease_ms, ttl_s, hash, owner) in [
            (false, -1, 100, "h", "a"),
            (false, 0, 100, "h", "a"),
            (false, 1, -1, "h", "a"),
            (false, 1, 0, "h", "b"),
            (true, -1, 100, "h", "a"),
            (true, 1, 100, "other", "a"),
            (true, 1, -1, "h", "a"),
            (false, 1, 100, "other", "b"),
        ] {
            out.push(Some(Record {
                completed,
                payload_hash: hash.into(),
                owner: owner.into(),
                in_progress_expiry_ms: now.timestamp_millis() + lease_ms,
                expires_at: now.timestamp() + ttl_s,
                result: completed.then(|| serde_json::json!({"n": 1})),
            }));
        }
        out
    }

    #[test]
    fn conditions_and_decisions_agree() {
        let now = at("2026-11-22T12:00:00Z");
        for r in records(now) {
            let item = r.as_ref().map(|r| to_item("k", r));
            assert_eq!(takeable(now).eval(item.as_ref()), is_takeable(r.as_ref(), now), "takeable {r:?}");
            for owner in ["a", "b"] {
                assert_eq!(owned_by(owner).eval(item.as_ref()), is_owned_by(r.as_ref(), owner), "owned {r:?}");
            }
            if let Some(r) = &r {
                assert_eq!(&from_item(&to_item("k", r)).completed, &r.completed);
            }
        }
    }

    #[test]
    fn only_the_lease_holder_completes_or_releases() {
        let now = at("2026-11-22T12:00:00Z");
        let cfg = IdempotencyConfig::default();
        let BeginDecision::Take(first) = decide_begin(None, "h", "a", now, &cfg) else { panic!() };
        assert_eq!(decide_begin(Some(&first), "h", "b", now, &cfg), BeginDecision::InProgress);
        assert_eq!(decide_begin(Some(&first), "x", "b", now, &cfg), BeginDecision::Conflict);
        // The lease runs out; b takes over; a's completion and release change nothing.
        let later = now + cfg.in_progress_ttl + Duration::milliseconds(1);
        let BeginDecision::Take(second) = decide_begin(Some(&first), "h", "b", later, &cfg) else { panic!() };
        assert_eq!(decide_complete(Some(&second), "a", &Value::Null, later, cfg.record_ttl), None);
        assert!(!decide_release(Some(&second), "a"));
        assert!(decide_release(Some(&second), "b"));
        let done = decide_complete(Some(&second), "b", &serde_json::json!(7), later, cfg.record_ttl).unwrap();
        assert_eq!(decide_begin(Some(&done), "h", "c", later, &cfg), BeginDecision::Replay(serde_json::json!(7)));
        assert!(!decide_release(Some(&done), "b"), "a completed record is never released");
    }
}
