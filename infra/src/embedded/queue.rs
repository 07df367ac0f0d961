//! The embedded durable queue: messages in a SQLite file, with SQS-like leases.
//!
//! `publish` returns once the message is committed (WAL), so a crash of the process never
//! loses it. `receive` leases messages for the visibility timeout; a message not acked in
//! time (its consumer crashed) becomes visible again. After `max_attempts` deliveries a
//! nacked message moves to the dead letters, which `promoctl` can list and replay.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::queue::Delivery;
use promo_shared::ports::queue::Queue;
use promo_shared::ports::queue::QueueError;
use rusqlite::{Connection, params};
use tokio::sync::Notify;

use super::sqlite::{Writer, exec, query_row};

#[derive(Clone, Copy, Debug)]
pub struct QueueConfig {
    /// How long a received message stays invisible to other consumers.
    pub visibility: Duration,
    /// Deliveries before a nacked message is dead-lettered.
    pub max_attempts: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { visibility: Duration::from_secs(30), max_attempts: 5 }
    }
}

#[derive(Clone)]
pub struct SqliteQueue {
    db: Writer,
    notify: Arc<Notify>,
    config: QueueConfig,
    /// When messages become visible and leases end.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteQueue")
    }
}

/// A dead-lettered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: i64,
    pub queue: String,
    pub body: Vec<u8>,
    pub attempts: u32,
    pub reason: String,
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn parse_receipt(d: &Delivery) -> Result<(i64, String), QueueError> {
    let (id, lease) = d.receipt.split_once(':').ok_or_else(|| QueueError::Invalid("bad receipt".into()))?;
    let id = id.parse().map_err(|_| QueueError::Invalid("bad receipt".into()))?;
    Ok((id, lease.to_string()))
}

impl SqliteQueue {
    pub fn open(path: &Path, config: QueueConfig) -> Result<SqliteQueue, QueueError> {
        let db = Writer::open(
            path,
            "CREATE TABLE IF NOT EXISTS messages (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 queue TEXT NOT NULL,
                 body BLOB NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 visible_at INTEGER NOT NULL,
                 lease TEXT NOT NULL DEFAULT '',
                 created_at INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at, id);
             CREATE TABLE IF NOT EXISTS dead_letters (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 queue TEXT NOT NULL,
                 body BLOB NOT NULL,
                 attempts INTEGER NOT NULL,
                 reason TEXT NOT NULL,
                 failed_at INTEGER NOT NULL
             );",
        )
        .map_err(unavailable)?;
        Ok(SqliteQueue { db, notify: Arc::new(Notify::new()), config, clock: Arc::new(super::SystemClock) })
    }

    /// The same queue reading time from `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> SqliteQueue {
        SqliteQueue { clock, ..self }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    async fn with_tx<T, F>(&self, f: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, QueueError> + Send + 'static,
    {
        self.db.run(f, QueueError::Unavailable).await
    }

    /// Messages waiting or in flight in a queue.
    /// Gives a leased message back, visible again after `retry_in`; `also` adds to the
    /// `SET` clause (a constant: the attempt not counted).
    async fn release(&self, delivery: &Delivery, retry_in: Duration, also: &'static str) -> Result<(), QueueError> {
        let (id, lease) = parse_receipt(delivery)?;
        let visible_at = self.now_ms().saturating_add(duration_ms(retry_in));
        self.with_tx(move |tx| {
            let sql = format!("UPDATE messages SET visible_at = ?3, lease = ''{also} WHERE id = ?1 AND lease = ?2");
            exec(tx, &sql, params![id, lease, visible_at]).map_err(unavailable)?;
            Ok(())
        })
        .await?;
        self.notify.notify_waiters();
        Ok(())
    }

    pub async fn depth(&self, queue: &str) -> Result<u64, QueueError> {
        let queue = queue.to_string();
        self.with_tx(move |tx| {
            query_row(tx, "SELECT COUNT(*) FROM messages WHERE queue = ?1", [queue], |r| r.get(0)).map_err(unavailable)
        })
        .await
    }

    pub async fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetter>, QueueError> {
        let queue = queue.to_string();
        self.with_tx(move |tx| {
            let mut stmt = tx
                .prepare("SELECT id, queue, body, attempts, reason FROM dead_letters WHERE queue = ?1 ORDER BY id")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([queue], |r| {
                    Ok(DeadLetter {
                        id: r.get(0)?,
                        queue: r.get(1)?,
                        body: r.get(2)?,
                        attempts: r.get(3)?,
                        reason: r.get(4)?,
                    })
                })
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    /// Moves every dead letter of a queue back to it; returns how many.
    pub async fn replay_dead_letters(&self, queue: &str) -> Result<usize, QueueError> {
        let queue = queue.to_string();
        let now = self.now_ms();
        let n = self
            .with_tx(move |tx| {
                let n = tx
                    .execute(
                        "INSERT INTO messages (queue, body, visible_at, created_at)
                         SELECT queue, body, ?2, ?2 FROM dead_letters WHERE queue = ?1 ORDER BY id",
                        params![queue, now],
                    )
                    .map_err(unavailable)?;
                exec(tx, "DELETE FROM dead_letters WHERE queue = ?1", [queue]).map_err(unavailable)?;
                Ok(n)
            })
            .await?;
        self.notify.notify_waiters();
        Ok(n)
    }

    async fn to_dead_letters(&self, delivery: &Delivery, reason: String) -> Result<(), QueueError> {
        let (id, lease) = parse_receipt(delivery)?;
        let now = self.now_ms();
        self.with_tx(move |tx| {
            let moved = tx
                .execute(
                    "INSERT INTO dead_letters (queue, body, attempts, reason, failed_at)
                     SELECT queue, body, attempts, ?3, ?4 FROM messages WHERE id = ?1 AND lease = ?2",
                    params![id, lease, reason, now],
                )
                .map_err(unavailable)?;
            if moved == 1 {
                exec(tx, "DELETE FROM messages WHERE id = ?1", [id]).map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

    async fn lease(&self, queue: &str, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let queue = queue.to_string();
        let visibility = duration_ms(self.config.visibility);
        let lease = uuid::Uuid::new_v4().simple().to_string();
        let now = self.now_ms();
        self.with_tx(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, body, attempts FROM messages WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, id LIMIT ?3",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![queue, now, i64::try_from(max).unwrap_or(i64::MAX)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, u32>(2)?))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, body, attempts) in rows {
                exec(tx,
                    "UPDATE messages SET attempts = attempts + 1, visible_at = ?2, lease = ?3 WHERE id = ?1",
                    params![id, now + visibility, lease],
                )
                .map_err(unavailable)?;
                out.push(Delivery { receipt: format!("{id}:{lease}"), body, attempt: attempts + 1 });
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), QueueError> {
        self.publish_batch(queue, &[body.to_vec()]).await
    }

    async fn publish_batch(&self, queue: &str, bodies: &[Vec<u8>]) -> Result<(), QueueError> {
        if queue.is_empty() {
            return Err(QueueError::Invalid("queue name is empty".into()));
        }
        let queue = queue.to_string();
        let bodies = bodies.to_vec();
        let now = self.now_ms();
        self.with_tx(move |tx| {
            let mut stmt = tx
                .prepare_cached("INSERT INTO messages (queue, body, visible_at, created_at) VALUES (?1, ?2, ?3, ?3)")
                .map_err(unavailable)?;
            for b in &bodies {
                stmt.execute(params![queue, b, now]).map_err(unavailable)?;
            }
            Ok(())
        })
        .await?;
        self.notify.notify_waiters();
        Ok(())
    }

    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(vec![]);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            let got = self.lease(queue, max).await?;
            if !got.is_empty() {
                return Ok(got);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(vec![]);
            }
            // Woken by a publish, or poll again soon (leases expire without a notification).
            let nap = (deadline - now).min(Duration::from_millis(200));
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn ack(&self, _queue: &str, delivery: &Delivery) -> Result<(), QueueError> {
        let (id, lease) = parse_receipt(delivery)?;
        self.with_tx(move |tx| {
            // A stale lease (the message was redelivered meanwhile) deletes nothing.
            exec(tx, "DELETE FROM messages WHERE id = ?1 AND lease = ?2", params![id, lease]).map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn nack(&self, _queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        if delivery.attempt >= self.config.max_attempts {
            return self.to_dead_letters(delivery, format!("failed {} deliveries", delivery.attempt)).await;
        }
        self.release(delivery, retry_in, "").await
    }

    async fn reject(&self, _queue: &str, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        self.to_dead_letters(delivery, reason.to_string()).await
    }

    /// Visible again after `retry_in`, and this delivery not counted as an attempt.
    async fn defer(&self, _queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        self.release(delivery, retry_in, ", attempts = MAX(attempts - 1, 0)").await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use promo_shared::ports::clock::ManualClock;
    use promo_shared::testing::at;

    /// Leases and retry delays are read from the clock port: with a clock that only moves
    /// when told, nothing becomes visible again until the clock passes the deadline.
    #[tokio::test]
    async fn leases_and_retries_follow_the_clock_port() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(at("2026-12-01T00:00:00Z")));
        let config = QueueConfig { visibility: Duration::from_secs(30), max_attempts: 5 };
        let q = SqliteQueue::open(&dir.path().join("q.db"), config).unwrap().with_clock(clock.clone());
        q.publish("jobs", b"one").await.unwrap();
        let first = q.receive("jobs", 10, Duration::ZERO).await.unwrap();
        assert_eq!(first.len(), 1);
        // Leased: invisible until the visibility timeout passes on the clock.
        clock.advance(chrono::Duration::seconds(29));
        assert!(q.receive("jobs", 10, Duration::ZERO).await.unwrap().is_empty());
        clock.advance(chrono::Duration::seconds(1));
        let again = q.receive("jobs", 10, Duration::ZERO).await.unwrap();
        assert_eq!(again.len(), 1, "the lease ended at 30 s on the clock");
        assert_eq!(again[0].attempt, 2);
        // A nack's retry delay, too.
        q.nack("jobs", &again[0], Duration::from_secs(3600)).await.unwrap();
        clock.advance(chrono::Duration::minutes(59));
        assert!(q.receive("jobs", 10, Duration::ZERO).await.unwrap().is_empty());
        clock.advance(chrono::Duration::minutes(1));
        assert_eq!(q.receive("jobs", 10, Duration::ZERO).await.unwrap().len(), 1);
    }
}
