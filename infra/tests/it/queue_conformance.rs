//! The queue conformance suite against the embedded SQLite queue (a real file on disk).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use promo_shared::ports::queue::Queue;
use promoctl::embedded::{QueueConfig, SqliteQueue};

/// One queue file for the whole suite (cases use their own queue names); every call opens a
/// new connection to it, as a separate process would. The temp dir lives as long as the
/// test process.
async fn queue() -> Arc<dyn Queue> {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let config =
        QueueConfig { visibility: Duration::from_secs(1), max_attempts: promo_conformance::queue::MAX_ATTEMPTS };
    Arc::new(SqliteQueue::open(&dir.path().join("queue.db"), config).expect("open queue"))
}

promo_conformance::queue_conformance_tests!(queue);
promo_conformance::queue_order_tests!(queue);
