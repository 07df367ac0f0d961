//! One SQLite connection owned by one writer thread, with group commit.
//!
//! Operations are closures sent to the thread. The thread takes every operation waiting
//! (up to [`MAX_BATCH`]), runs each inside its own savepoint of one `IMMEDIATE`
//! transaction — so each stays atomic and a failed one rolls back alone — commits once, and
//! only then answers every caller. Callers never contend for a lock, and one commit (and its
//! WAL append) serves a whole batch: under load that is what makes the embedded store fast.
//! The WAL is copied back into the database file by a second connection on its own thread
//! (`wal_checkpointer`), never by the writer, which only waits for the short restart of a
//! WAL grown to its cap.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::wal_checkpointer::{Checkpointer, HARD_LIMIT_CAPS, WalPolicy, cap_bytes, restart_if_over};

/// Most operations committed together.
pub const MAX_BATCH: usize = 256;

/// What an operation leaves for after the commit: whether it succeeded (else its savepoint
/// is rolled back) and how to answer its caller once the commit's outcome is known.
struct Done {
    ok: bool,
    answer: Box<dyn FnOnce(Option<String>) + Send>,
}

/// `None` when the batch transaction could not even start.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Done + Send>;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sqlite::Writer")
    }
}

impl Writer {
    /// Opens the database (WAL, `synchronous = NORMAL`: durable across a process crash),
    /// runs `schema`, and starts the writer thread and its checkpointer. The threads end
    /// when every `Writer` handle is dropped.
    pub fn open(path: &Path, schema: &str) -> rusqlite::Result<Writer> {
        Writer::open_with(path, schema, WalPolicy::default())
    }

    /// [`Writer::open`] with the WAL checkpointed by `policy`.
    pub fn open_with(path: &Path, schema: &str, policy: WalPolicy) -> rusqlite::Result<Writer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL + NORMAL: a commit survives a crash of the process (not of the OS) without an
        // fsync per commit; reads through mmap; no checkpoint on this connection (a
        // checkpoint here stalls every writer while it copies pages back and syncs: with one
        // every 20,000 pages the webhooks' p99 was ~150 ms, issue 29, item 5): the
        // checkpointer thread takes them. Switching to WAL needs a lock the busy handler does
        // not wait for, so another process (or thread) opening the file at the same moment
        // is retried here.
        let setup = format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;
             PRAGMA mmap_size = 268435456; PRAGMA wal_autocheckpoint = 0; {schema}"
        );
        let mut attempt = 0;
        while let Err(e) = conn.execute_batch(&setup) {
            let busy = matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            );
            attempt += 1;
            if !busy || attempt > 500 {
                return Err(e);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // A WAL restarted after a spike past the cap is cut back to the cap.
        let cap = cap_bytes(&conn, policy)?;
        conn.execute_batch(&format!("PRAGMA journal_size_limit = {cap};"))?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let backstop = (std::path::PathBuf::from(wal), u64::try_from(cap).unwrap_or(u64::MAX) * HARD_LIMIT_CAPS);
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, rx) = mpsc::channel::<Job>();
        let name = format!("sqlite-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("db"));
        let checkpointer = Checkpointer::start(path, policy, format!("{name}-ckpt"))?;
        std::thread::Builder::new()
            .name(name)
            .spawn(move || run(conn, rx, checkpointer, backstop))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Writer { jobs })
    }

    /// Runs `f` atomically (in its own savepoint) and answers after the commit. `fail` turns a
    /// SQLite failure outside `f` (begin, commit, the thread gone) into the caller's error.
    pub async fn run<T, E, F>(&self, f: F, fail: fn(String) -> E) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.run_then(f, |_| {}, fail).await
    }

    /// [`Writer::run`], and `committed` runs on the database thread once `f`'s success has
    /// been committed, before any later operation starts.
    pub async fn run_then<T, E, F, C>(&self, f: F, committed: C, fail: fn(String) -> E) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        C: FnOnce(&T) + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn| match conn {
            None => Done {
                ok: false,
                answer: Box::new(move |_| {
                    let _ = tx.send(Err(fail("could not begin a transaction".into())));
                }),
            },
            Some(conn) => {
                let result = f(conn);
                Done {
                    ok: result.is_ok(),
                    answer: Box::new(move |commit_error| {
                        let _ = tx.send(match commit_error {
                            Some(e) => Err(fail(e)),
                            None => {
                                if let Ok(t) = &result {
                                    committed(t);
                                }
                                result
                            }
                        });
                    }),
                }
            }
        });
        self.jobs.send(job).map_err(|_| fail("the database thread has stopped".into()))?;
        rx.await.unwrap_or_else(|_| Err(fail("the database thread has stopped".into())))
    }
}

/// `execute` through the connection's statement cache (no re-parsing of hot statements).
pub fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `query_row` through the connection's statement cache.
pub fn query_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// `backstop`: the WAL file and the size past which the writer restarts it itself.
fn run(mut conn: Connection, rx: mpsc::Receiver<Job>, checkpointer: Checkpointer, backstop: (PathBuf, u64)) {
    let shared = checkpointer.shared().clone();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut answers = Vec::with_capacity(batch.len());
        // Between two batches the checkpointer may hold the writer to restart the WAL.
        let writing = shared.gate.enter();
        let outcome = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if batch.len() == 1 {
                // Alone in its batch, an operation needs no savepoint: the transaction is its
                // own, committed if it succeeded and rolled back if it failed.
                let done = batch.remove(0)(Some(&tx));
                let ok = done.ok;
                answers.push(done.answer);
                return if ok { tx.commit() } else { tx.rollback() };
            }
            for job in batch.drain(..) {
                // A savepoint per operation (cached statements: no re-parsing per operation).
                exec(&tx, "SAVEPOINT op", [])?;
                let done = job(Some(&tx));
                if done.ok {
                    exec(&tx, "RELEASE op", [])?;
                } else {
                    // Rolls this operation back, alone.
                    exec(&tx, "ROLLBACK TO op", [])?;
                    exec(&tx, "RELEASE op", [])?;
                }
                answers.push(done.answer);
            }
            tx.commit()
        })();
        drop(writing);
        let committed = outcome.is_ok();
        if committed {
            shared.committed();
        }
        let error = outcome.err().map(|e| e.to_string());
        // Operations never reached (begin failed mid-way) are answered with the error too.
        for job in batch {
            answers.push(job(None).answer);
        }
        for answer in answers {
            answer(error.clone());
        }
        if committed {
            // After the answers: only the next batch waits for this.
            restart_if_over(&conn, &backstop.0, backstop.1);
        }
    }
    // The checkpointer's connection closes first: closing the last connection checkpoints
    // what is left and removes the WAL.
    checkpointer.stop();
    drop(conn);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn writer(dir: &tempfile::TempDir) -> Writer {
        Writer::open(&dir.path().join("t.db"), "CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL);").unwrap()
    }

    fn count(hooks: &Arc<AtomicUsize>) -> impl FnOnce(&()) + Send + 'static {
        let hooks = hooks.clone();
        move |_| {
            hooks.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn the_commit_hook_runs_for_a_committed_success_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = writer(&dir);
        let hooks = Arc::new(AtomicUsize::new(0));
        let insert =
            |tx: &Connection| exec(tx, "INSERT INTO t (v) VALUES (1)", []).map(|_| ()).map_err(|e| e.to_string());

        db.run_then(insert, count(&hooks), |e| e).await.unwrap();
        assert_eq!(hooks.load(Ordering::SeqCst), 1, "committed: the hook ran before the answer");

        let failing = |tx: &Connection| {
            exec(tx, "INSERT INTO t (v) VALUES (2)", []).unwrap();
            Err::<(), String>("refused".into())
        };
        assert_eq!(db.run_then(failing, count(&hooks), |e| e).await, Err("refused".into()));
        assert_eq!(hooks.load(Ordering::SeqCst), 1, "a failed operation runs no hook");

        // An operation that succeeds in a batch that then cannot commit (here it ends the
        // batch's transaction itself, so releasing its savepoint fails): the caller hears
        // the failure and no hook runs.
        let breaks_the_batch = |tx: &Connection| exec(tx, "ROLLBACK", []).map(|_| ()).map_err(|e| e.to_string());
        assert!(db.run_then(breaks_the_batch, count(&hooks), |e| e).await.is_err());
        assert_eq!(hooks.load(Ordering::SeqCst), 1, "an uncommitted success runs no hook");

        let rows = db
            .run(
                |tx| query_row(tx, "SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).map_err(|e| e.to_string()),
                |e| e,
            )
            .await
            .unwrap();
        assert_eq!(rows, 1, "only the first insert was committed");
    }
}
