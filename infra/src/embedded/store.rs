//! The embedded store: one SQLite file with the semantics of the DynamoDB adapter.
//!
//! Every operation runs atomically on the one connection of a writer thread (see
//! `sqlite::Writer`: its own savepoint, group commit), so a conditional write evaluates its
//! condition and writes atomically; a multi-item transaction is all-or-nothing. WAL journaling keeps committed writes across a crash of
//! the process. Expired items (TTL attribute `expires_at`, epoch seconds) stay readable
//! until [`SqliteStore::purge_expired`] deletes them, as DynamoDB's TTL does. Transaction
//! client tokens are kept in memory (`tokens`): only callers in this process can send one again.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::store::CancelReason;
use promo_shared::ports::store::Cond;
use promo_shared::ports::store::Item;
use promo_shared::ports::store::ItemExt;
use promo_shared::ports::store::Key;
use promo_shared::ports::store::Page;
use promo_shared::ports::store::Query;
use promo_shared::ports::store::Store;
use promo_shared::ports::store::StoreError;
use promo_shared::ports::store::TTL_ATTRIBUTE;
use promo_shared::ports::store::TxOp;
use promo_shared::ports::store::Update;
use promo_shared::ports::store::ops_digest_of_json;
use promo_shared::ports::store::put_items_json;
use promo_shared::ports::store::validate_tx;
use rusqlite::{Connection, OptionalExtension, params};

use super::sqlite::{Writer, exec, query_row};
use super::tokens::{Seen, Tokens};
use serde_json::Value;

#[derive(Clone)]
pub struct SqliteStore {
    db: Writer,
    /// Client tokens of committed transactions (see `tokens`: in memory, not a table).
    tokens: Arc<Mutex<Tokens>>,
    /// When a client token's window starts.
    clock: Arc<dyn Clock>,
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
                 PRIMARY KEY (pk, sk)
             ) WITHOUT ROWID;
             DROP INDEX IF EXISTS items_gsi1; -- no secondary index (columns of older files stay null)
             CREATE INDEX IF NOT EXISTS items_ttl ON items (expires_at) WHERE expires_at IS NOT NULL;
             DROP TABLE IF EXISTS tx_tokens; -- client tokens were rows before they moved to memory",
        )
        .map_err(unavailable)?;
        Ok(SqliteStore { db, tokens: Arc::default(), clock: Arc::new(super::SystemClock) })
    }

    /// The same store reading time from `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> SqliteStore {
        SqliteStore { clock, ..self }
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

const REPLACE_ROW: &str = "INSERT OR REPLACE INTO items (pk, sk, body, expires_at) VALUES (?1, ?2, ?3, ?4)";
const INSERT_ROW: &str = "INSERT INTO items (pk, sk, body, expires_at) VALUES (?1, ?2, ?3, ?4)";

fn write(tx: &Connection, item: &Item) -> Result<(), StoreError> {
    store_row(tx, item, &json(item)?, REPLACE_ROW).map(|_| ())
}

/// Writes `item` only if no item has its key (the `NotExists` condition, checked by the
/// primary key instead of a read first); `false` when one does.
fn insert_new(tx: &Connection, item: &Item) -> Result<bool, StoreError> {
    store_row(tx, item, &json(item)?, INSERT_ROW)
}

/// The row body of `item`.
fn json(item: &Item) -> Result<String, StoreError> {
    serde_json::to_string(item).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Runs an INSERT of `item`'s row, `body` being its JSON; `Ok(false)` when it hit an
/// existing key.
fn store_row(tx: &Connection, item: &Item, body: &str, sql: &str) -> Result<bool, StoreError> {
    let key = Key::of(item)?;
    check_values(item)?;
    match exec(tx, sql, params![key.pk, key.sk, body, item.i64_attr(TTL_ATTRIBUTE)]) {
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

/// The tokens, even if a panic elsewhere poisoned their lock (at worst a token is then
/// forgotten early, and its retry's conditions decide).
fn lock(tokens: &Mutex<Tokens>) -> MutexGuard<'_, Tokens> {
    tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        // Each put's row body, serialised once: for the row and, with a client token, for the
        // digest that recognises a retry under it.
        let bodies = put_items_json(&ops);
        let token = token.map(|t| (t.to_string(), ops_digest_of_json(&ops, &bodies)));
        let (tokens, recorded) = (self.tokens.clone(), self.tokens.clone());
        let now = self.clock.now().timestamp();
        let run = move |tx: &Connection| {
            // Checked and recorded on the database thread, in the order of the operations.
            if let Some((t, digest)) = &token
                && lock(&tokens).check(t, digest, now)? == Seen::Done
            {
                return Ok(None);
            }
            // Operations run in order, each seeing the state left by the ones before it;
            // keys are distinct (validate_tx), so that is the state before the transaction.
            // After the first failed condition nothing more is written, but every condition
            // is still evaluated so the reasons are complete; the savepoint then undoes the
            // writes that did happen.
            let mut reasons = Vec::with_capacity(ops.len());
            let mut found = Vec::with_capacity(ops.len());
            let mut failed = false;
            for (op, body) in ops.iter().zip(&bodies) {
                // A put's row body (`put_items_json` made one for every put).
                let body = body.as_deref().unwrap_or_default();
                // `Some(item found)` when the condition failed.
                let failure = match op {
                    // The primary key refused the insert: only then is the item read.
                    TxOp::Put { item, cond: Some(Cond::NotExists) } if !failed => {
                        if store_row(tx, item, body, INSERT_ROW)? { None } else { Some(read(tx, &op.key()?)?) }
                    }
                    TxOp::Put { item, cond: None } if !failed => {
                        store_row(tx, item, body, REPLACE_ROW)?;
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
                                    TxOp::Put { item, .. } => {
                                        store_row(tx, item, body, REPLACE_ROW)?;
                                    }
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
            Ok(token.map(|(t, digest)| (t, digest, now)))
        };
        // Only a committed transaction's token is recorded: a cancelled one, or a batch whose
        // commit failed, leaves its token free for the retry to run.
        let record = move |committed: &Option<(String, String, i64)>| {
            if let Some((t, digest, now)) = committed {
                lock(&recorded).record(t, digest, *now);
            }
        };
        self.db.run_then(run, record, StoreError::Unavailable).await.map(|_| ())
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        let q = q.clone();
        if q.limit == 0 {
            return Err(StoreError::Invalid("query limit must be at least 1".into()));
        }
        self.with_tx(move |tx| {
            let prefix = q.sk_prefix.clone().unwrap_or_default();
            let fetch = i64::try_from(q.limit).unwrap_or(i64::MAX).saturating_add(1);
            let after = q.after.clone().unwrap_or_default();
            let mut stmt = tx
                .prepare_cached(
                    "SELECT sk, body FROM items WHERE pk = ?1 AND sk > ?2 AND sk >= ?3 ORDER BY sk LIMIT ?4",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![q.pk, after, prefix, fetch], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let matching: Vec<_> = rows.into_iter().take_while(|(sk, _)| sk.starts_with(&prefix)).collect();
            let more = matching.len() > q.limit;
            let mut items = Vec::with_capacity(q.limit.min(matching.len()));
            let mut last = None;
            for (sk, body) in matching.into_iter().take(q.limit) {
                items.push(parse_body(&body)?);
                last = Some(sk);
            }
            Ok(Page { items, next: if more { last } else { None } })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use promo_shared::ports::clock::ManualClock;
    use promo_shared::testing::at;
    use serde_json::json;

    fn put(pk: &str) -> TxOp {
        let mut item = Key::new(pk, "S").item();
        item.insert("n".into(), json!(1));
        TxOp::Put { item, cond: None }
    }

    /// A client token's window is read from the clock port.
    #[tokio::test]
    async fn client_token_windows_follow_the_clock_port() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(at("2026-12-01T00:00:00Z")));
        let s = SqliteStore::open(&dir.path().join("s.db")).unwrap().with_clock(clock.clone());
        s.transact(vec![put("A")], Some("tok")).await.unwrap();
        clock.advance(chrono::Duration::seconds(super::super::tokens::WINDOW_SECONDS - 1));
        assert!(matches!(s.transact(vec![put("B")], Some("tok")).await, Err(StoreError::Invalid(_))));
        clock.advance(chrono::Duration::seconds(1));
        s.transact(vec![put("B")], Some("tok")).await.unwrap();
        assert!(s.get(&Key::new("B", "S")).await.unwrap().is_some());
    }
}
