//! The embedded store: one SQLite file with the semantics of the DynamoDB adapter.
//!
//! Every operation runs atomically on the one connection of a writer thread (see
//! `sqlite::Writer`: its own savepoint, group commit), so a conditional write evaluates its
//! condition and writes atomically; a multi-item transaction is all-or-nothing. WAL journaling keeps committed writes across a crash of
//! the process. Expired items (TTL attribute `expires_at`, epoch seconds) stay readable
//! until [`SqliteStore::purge_expired`] deletes them, as DynamoDB's TTL does.

use std::path::Path;

use async_trait::async_trait;
use promo_shared::store::{
    CancelReason, Cond, GSI1_PK, GSI1_SK, Index, Item, ItemExt, Key, Page, Query, Store, StoreError, TTL_ATTRIBUTE,
    TxOp, Update, ops_digest, validate_tx,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::sqlite::{Writer, exec, query_row};
use serde_json::Value;

/// How long a transaction's client token makes a retry idempotent (DynamoDB: 10 minutes).
const TOKEN_WINDOW_SECONDS: i64 = 600;

#[derive(Clone)]
pub struct SqliteStore {
    db: Writer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let db = Writer::open(
            path,
            "CREATE TABLE IF NOT EXISTS items (
                 pk TEXT NOT NULL,
                 sk TEXT NOT NULL,
                 body TEXT NOT NULL,
                 expires_at INTEGER,
                 gsi1pk TEXT,
                 gsi1sk TEXT,
                 PRIMARY KEY (pk, sk)
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
             CREATE INDEX IF NOT EXISTS items_ttl ON items (expires_at) WHERE expires_at IS NOT NULL;
             CREATE TABLE IF NOT EXISTS tx_tokens (
                 token TEXT PRIMARY KEY,
                 digest TEXT NOT NULL,
                 created_at INTEGER NOT NULL
             ) WITHOUT ROWID;",
        )
        .map_err(unavailable)?;
        Ok(SqliteStore { db })
    }

    /// Runs `f` atomically on the database thread; answers after the commit.
    async fn with_tx<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.run(f, StoreError::Unavailable).await
    }

    /// Deletes items whose TTL has passed; returns how many.
    pub async fn purge_expired(&self, now_epoch_seconds: i64) -> Result<usize, StoreError> {
        self.with_tx(move |tx| {
            let n = tx
                .execute("DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at < ?1", [now_epoch_seconds])
                .map_err(unavailable)?;
            exec(tx, "DELETE FROM tx_tokens WHERE created_at < ?1", [now_epoch_seconds - TOKEN_WINDOW_SECONDS])
                .map_err(unavailable)?;
            Ok(n)
        })
        .await
    }
}

fn read(tx: &Connection, key: &Key) -> Result<Option<Item>, StoreError> {
    let body: Option<String> =
        query_row(tx, "SELECT body FROM items WHERE pk = ?1 AND sk = ?2", params![key.pk, key.sk], |r| r.get(0))
            .optional()
            .map_err(unavailable)?;
    body.map(|b| parse_body(&b)).transpose()
}

fn parse_body(b: &str) -> Result<Item, StoreError> {
    match serde_json::from_str(b) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(StoreError::Unavailable("corrupt item in the store".into())),
    }
}

fn write(tx: &Connection, item: &Item) -> Result<(), StoreError> {
    store_row(
        tx,
        item,
        "INSERT OR REPLACE INTO items (pk, sk, body, expires_at, gsi1pk, gsi1sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .map(|_| ())
}

/// Writes `item` only if no item has its key (the `NotExists` condition, checked by the
/// primary key instead of a read first); `false` when one does.
fn insert_new(tx: &Connection, item: &Item) -> Result<bool, StoreError> {
    store_row(tx, item, "INSERT INTO items (pk, sk, body, expires_at, gsi1pk, gsi1sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
}

/// Runs an INSERT of `item`'s row; `Ok(false)` when it hit an existing key.
fn store_row(tx: &Connection, item: &Item, sql: &str) -> Result<bool, StoreError> {
    let key = Key::of(item)?;
    check_values(item)?;
    let body = serde_json::to_string(item).map_err(|e| StoreError::Invalid(e.to_string()))?;
    match exec(
        tx,
        sql,
        params![key.pk, key.sk, body, item.i64_attr(TTL_ATTRIBUTE), item.str_attr(GSI1_PK), item.str_attr(GSI1_SK)],
    ) {
        Ok(_) => Ok(true),
        Err(e) if is_duplicate_key(&e) => Ok(false),
        Err(e) => Err(unavailable(e)),
    }
}

fn is_duplicate_key(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// DynamoDB stores integers and decimals, not floats beyond its precision; we keep integers only.
fn check_values(item: &Item) -> Result<(), StoreError> {
    fn ok(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.is_i64() || n.is_u64(),
            Value::Array(a) => a.iter().all(ok),
            Value::Object(o) => o.values().all(ok),
            _ => true,
        }
    }
    if item.values().all(ok) { Ok(()) } else { Err(StoreError::Invalid("numbers in items must be integers".into())) }
}

fn remove(tx: &Connection, key: &Key) -> Result<(), StoreError> {
    exec(tx, "DELETE FROM items WHERE pk = ?1 AND sk = ?2", params![key.pk, key.sk]).map_err(unavailable)?;
    Ok(())
}

/// Records a transaction's client token; `false` when the same operations already ran under
/// it within the window (the caller then answers success without running them again).
fn claim_token(tx: &Connection, token: &str, digest: &str, now: i64) -> Result<bool, StoreError> {
    match exec(tx, "INSERT INTO tx_tokens (token, digest, created_at) VALUES (?1, ?2, ?3)", params![token, digest, now])
    {
        Ok(_) => return Ok(true),
        Err(e) if is_duplicate_key(&e) => {}
        Err(e) => return Err(unavailable(e)),
    }
    let (seen, created): (String, i64) =
        query_row(tx, "SELECT digest, created_at FROM tx_tokens WHERE token = ?1", [token], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(unavailable)?;
    if now - created >= TOKEN_WINDOW_SECONDS {
        // Out of the window: the token is fresh again.
        exec(tx, "UPDATE tx_tokens SET digest = ?2, created_at = ?3 WHERE token = ?1", params![token, digest, now])
            .map_err(unavailable)?;
        return Ok(true);
    }
    if seen == digest {
        Ok(false)
    } else {
        Err(StoreError::Invalid("client token reused with different operations".into()))
    }
}

fn holds(cond: Option<&Cond>, current: Option<&Item>) -> bool {
    cond.is_none_or(|c| c.eval(current))
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.with_tx(move |tx| read(tx, &key)).await
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        let key = Key::of(&item)?;
        self.with_tx(move |tx| match cond {
            // No read needed: the primary key enforces "must not exist", and an
            // unconditional put overwrites whatever is there.
            Some(Cond::NotExists) => {
                if insert_new(tx, &item)? {
                    Ok(())
                } else {
                    Err(StoreError::ConditionFailed { found: read(tx, &key)? })
                }
            }
            None => write(tx, &item),
            Some(cond) => {
                let current = read(tx, &key)?;
                if !cond.eval(current.as_ref()) {
                    return Err(StoreError::ConditionFailed { found: current });
                }
                write(tx, &item)
            }
        })
        .await
    }

    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        let key = key.clone();
        let updates = updates.to_vec();
        self.with_tx(move |tx| {
            let current = read(tx, &key)?;
            if !holds(cond.as_ref(), current.as_ref()) {
                return Err(StoreError::ConditionFailed { found: current });
            }
            let next = Update::apply_all(&key, current, &updates)?;
            write(tx, &next)?;
            Ok(next)
        })
        .await
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.with_tx(move |tx| {
            let current = read(tx, &key)?;
            if !holds(cond.as_ref(), current.as_ref()) {
                return Err(StoreError::ConditionFailed { found: current });
            }
            remove(tx, &key)?;
            Ok(current)
        })
        .await
    }

    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        validate_tx(&ops)?;
        // The digest only matters to recognise a retry under the same client token.
        let token = token.map(|t| (t.to_string(), ops_digest(&ops)));
        self.with_tx(move |tx| {
            let now = chrono::Utc::now().timestamp();
            // The token row goes in first: on the first run of a transaction (the usual case)
            // that is one insert, and only a reused token costs a read.
            if let Some((t, digest)) = &token
                && !claim_token(tx, t, digest, now)?
            {
                return Ok(());
            }
            // Operations run in order, each seeing the state left by the ones before it;
            // keys are distinct (validate_tx), so that is the state before the transaction.
            // After the first failed condition nothing more is written, but every condition
            // is still evaluated so the reasons are complete; the savepoint then undoes the
            // writes that did happen.
            let mut reasons = Vec::with_capacity(ops.len());
            let mut found = Vec::with_capacity(ops.len());
            let mut failed = false;
            for op in &ops {
                // `Some(item found)` when the condition failed.
                let failure = match op {
                    // The primary key refused the insert: only then is the item read.
                    TxOp::Put { item, cond: Some(Cond::NotExists) } if !failed => {
                        if insert_new(tx, item)? {
                            None
                        } else {
                            Some(read(tx, &op.key()?)?)
                        }
                    }
                    TxOp::Put { item, cond: None } if !failed => {
                        write(tx, item)?;
                        None
                    }
                    _ => {
                        let key = op.key()?;
                        let current = read(tx, &key)?;
                        if !holds(op.cond(), current.as_ref()) {
                            Some(current)
                        } else {
                            if !failed {
                                match op {
                                    TxOp::Put { item, .. } => write(tx, item)?,
                                    TxOp::Update { updates, .. } => {
                                        write(tx, &Update::apply_all(&key, current, updates)?)?
                                    }
                                    TxOp::Delete { .. } => remove(tx, &key)?,
                                    TxOp::Check { .. } => {}
                                }
                            }
                            None
                        }
                    }
                };
                reasons.push(if failure.is_some() { CancelReason::ConditionFailed } else { CancelReason::None });
                failed |= failure.is_some();
                found.push(failure.flatten());
            }
            if failed {
                return Err(StoreError::TransactionCancelled { reasons, found });
            }
            Ok(())
        })
        .await
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        let q = q.clone();
        if q.limit == 0 {
            return Err(StoreError::Invalid("query limit must be at least 1".into()));
        }
        self.with_tx(move |tx| {
            let prefix = q.sk_prefix.clone().unwrap_or_default();
            let fetch = i64::try_from(q.limit).unwrap_or(i64::MAX).saturating_add(1);
            let mut rows: Vec<(String, String, String, String)> = Vec::new();
            match q.index {
                Index::Primary => {
                    let after = q.after.clone().unwrap_or_default();
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT pk, sk, sk, body FROM items WHERE pk = ?1 AND sk > ?2 AND sk >= ?3 ORDER BY sk LIMIT ?4",
                        )
                        .map_err(unavailable)?;
                    let it = stmt
                        .query_map(params![q.pk, after, prefix, fetch], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .map_err(unavailable)?;
                    for row in it {
                        rows.push(row.map_err(unavailable)?);
                    }
                }
                Index::Gsi1 => {
                    // Cursor: the last row's (gsi1sk, pk, sk), as a JSON array.
                    let (a_gsk, a_pk, a_sk): (String, String, String) = match &q.after {
                        Some(c) => serde_json::from_str(c).map_err(|_| StoreError::Invalid("bad query cursor".into()))?,
                        None => (String::new(), String::new(), String::new()),
                    };
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT pk, sk, gsi1sk, body FROM items WHERE gsi1pk = ?1 AND gsi1sk >= ?5
                               AND (gsi1sk, pk, sk) > (?2, ?3, ?4)
                             ORDER BY gsi1sk, pk, sk LIMIT ?6",
                        )
                        .map_err(unavailable)?;
                    let it = stmt
                        .query_map(params![q.pk, a_gsk, a_pk, a_sk, prefix, fetch], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })
                        .map_err(unavailable)?;
                    for row in it {
                        rows.push(row.map_err(unavailable)?);
                    }
                }
            }
            let matching: Vec<_> = rows.into_iter().take_while(|(_, _, s, _)| s.starts_with(&prefix)).collect();
            let more = matching.len() > q.limit;
            let mut items = Vec::with_capacity(q.limit.min(matching.len()));
            let mut last = None;
            for (pk, sk, sort, body) in matching.into_iter().take(q.limit) {
                items.push(parse_body(&body)?);
                last = Some(match q.index {
                    Index::Primary => sk,
                    Index::Gsi1 => serde_json::json!([sort, pk, sk]).to_string(),
                });
            }
            Ok(Page { items, next: if more { last } else { None } })
        })
        .await
    }
}
