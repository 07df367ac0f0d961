//! Checkpoints of a SQLite WAL taken off the writer thread.
//!
//! The writer connection runs with `wal_autocheckpoint = 0`: it only appends to the WAL.
//! A second connection on its own thread copies the WAL back into the database file with
//! `PRAGMA wal_checkpoint(PASSIVE)`, which never takes the write lock, so the writer keeps
//! committing while pages are copied and synced.
//!
//! A passive checkpoint copies frames but cannot rewind the WAL: SQLite starts the WAL over
//! from its first frame only when a write transaction begins while every frame is already
//! copied back, which under sustained writes rarely happens. So the WAL is bounded here:
//! once a passive checkpoint reports at least [`WalPolicy::cap_pages`] frames, the
//! checkpointer holds the writer between two of its batches ([`Gate`]) and runs
//! `PRAGMA wal_checkpoint(RESTART)`. The passive checkpoints have already copied all but the
//! frames of the last poll interval, so that stall is short; the writer's next transaction
//! starts the WAL over. The WAL therefore holds at most `cap_pages` frames plus what the
//! writer commits in one poll interval and one batch, and `journal_size_limit` (the cap)
//! shrinks the file back after a restart should a reader in another process have pinned it
//! for longer.
//!
//! Durability is the writer's (`synchronous = NORMAL` on both connections: the WAL is synced
//! before a checkpoint copies it and the database file after); which commits are
//! acknowledged, and when, is unchanged.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// When the WAL is copied back and how large it may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPolicy {
    /// How often the checkpointer runs a passive checkpoint (when the writer committed
    /// since the last one).
    pub every: Duration,
    /// WAL frames (pages) past which the writer is held between two batches and the WAL
    /// restarted.
    pub cap_pages: u32,
}

impl Default for WalPolicy {
    /// A passive checkpoint every 10 ms; at most 20,000 pages (80 MiB) of WAL, the size the
    /// writer's own autocheckpoint allowed before.
    fn default() -> WalPolicy {
        WalPolicy { every: Duration::from_millis(10), cap_pages: 20_000 }
    }
}

/// Lets the checkpointer hold the writer between two batches (never inside one).
#[derive(Default)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    writing: bool,
    held: bool,
}

impl Gate {
    fn state(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer starts a batch: waits while the checkpointer holds the gate.
    pub fn enter(&self) -> Writing<'_> {
        let mut s = self.state();
        while s.held {
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.writing = true;
        Writing(self)
    }

    /// The checkpointer waits for the batch under way to end and keeps the next one from
    /// starting until the returned guard is dropped.
    fn hold(&self) -> Held<'_> {
        let mut s = self.state();
        s.held = true;
        while s.writing {
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        Held(self)
    }
}

/// A batch under way (from `BEGIN` to its commit).
pub struct Writing<'a>(&'a Gate);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.state().writing = false;
        self.0.changed.notify_all();
    }
}

struct Held<'a>(&'a Gate);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.state().held = false;
        self.0.changed.notify_all();
    }
}

/// What the writer thread and the checkpointer share.
#[derive(Default)]
pub struct Shared {
    pub gate: Gate,
    commits: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    /// The writer committed a batch.
    pub fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
}

/// The checkpointer thread; [`Checkpointer::stop`] ends it.
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a second connection to `path` (already in WAL mode) and starts its thread.
    pub fn start(path: &Path, policy: WalPolicy, name: String) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open(path)?;
        // A restart waits this long at most for a reader of another connection to leave
        // the WAL (the writer is held meanwhile); a passive checkpoint never waits.
        conn.busy_timeout(Duration::from_millis(100))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; SELECT count(*) FROM sqlite_master;")?;
        let shared = Arc::new(Shared::default());
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(conn, &for_thread, policy))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer { shared, thread: Some(thread) })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Ends the thread (its connection closes) and waits for it.
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The WAL's cap in bytes, for `journal_size_limit` of the writer's connection.
pub fn cap_bytes(conn: &Connection, policy: WalPolicy) -> rusqlite::Result<i64> {
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(page.saturating_mul(i64::from(policy.cap_pages)))
}

/// How many caps of WAL the writer lets the checkpointer fall behind (a disk slow to sync)
/// before it restarts the WAL itself, waiting as a checkpoint on the writer always did.
pub const HARD_LIMIT_CAPS: u64 = 4;

/// The writer's backstop: `wal` (the WAL file) has grown past [`HARD_LIMIT_CAPS`] caps, so
/// the checkpointer is far behind; copies it all back and restarts it on the writer's own
/// connection, retrying while the checkpointer holds the checkpoint lock.
pub fn restart_if_over(conn: &Connection, wal: &Path, hard_limit_bytes: u64) {
    if std::fs::metadata(wal).map_or(true, |m| m.len() <= hard_limit_bytes) {
        return;
    }
    for _ in 0..1_000 {
        if checkpoint(conn, "RESTART").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Drop for Checkpointer {
    /// Never left running (e.g. the writer thread could not start): asks the thread to end.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

/// `PRAGMA wal_checkpoint(mode)`: (frames in the WAL, frames copied back), `None` when
/// SQLite refused (busy).
fn checkpoint(conn: &Connection, mode: &str) -> Option<(i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })
    .ok()
    .filter(|(busy, _, _)| *busy == 0)
    .map(|(_, log, copied)| (log, copied))
}

fn run(conn: Connection, shared: &Shared, policy: WalPolicy) {
    let mut seen = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::park_timeout(policy.every);
        let commits = shared.commits.load(Ordering::Relaxed);
        if commits == seen {
            continue;
        }
        seen = commits;
        let Some((log, _)) = checkpoint(&conn, "PASSIVE") else { continue };
        if log >= i64::from(policy.cap_pages) {
            // Between two batches: copies the frames the passive one left and makes the
            // writer's next transaction start the WAL over.
            let _held = shared.gate.hold();
            checkpoint(&conn, "RESTART");
        }
    }
}
