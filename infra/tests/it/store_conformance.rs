//! The store conformance suite against the embedded SQLite store (a real file on disk).

use std::sync::{Arc, OnceLock};

use promo_shared::ports::store::Store;
use promoctl::embedded::SqliteStore;

/// One store file for the whole suite (cases use their own key namespaces), as a deployed
/// table is shared; the temp dir lives as long as the test process.
async fn store() -> Arc<dyn Store> {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    Arc::new(SqliteStore::open(&dir.path().join("store.db")).expect("open store"))
}

promo_conformance::store_conformance_tests!(store);
