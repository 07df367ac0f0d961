//! First-come-first-served claims against the embedded SQLite store (a real file on disk):
//! races on stock and per-user limits, inactive campaigns, shard fallover, and sharding under
//! a simulated per-item write limit.

use std::sync::{Arc, OnceLock};

use promo_shared::ports::store::Store;
use promoctl::embedded::SqliteStore;

async fn store() -> Arc<dyn Store> {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    Arc::new(SqliteStore::open(&dir.path().join("store.db")).expect("open store"))
}

promo_conformance::claims_conformance_tests!(store);
