//! The issuer's races against the embedded SQLite store.

use std::sync::{Arc, OnceLock};

use promo_shared::ports::store::Store;
use promoctl::embedded::SqliteStore;

/// One store for the whole binary (cases use their own campaigns, payments and users).
async fn store() -> Arc<dyn Store> {
    static STORE: OnceLock<(tempfile::TempDir, Arc<SqliteStore>)> = OnceLock::new();
    let (_, s) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
        (dir, s)
    });
    s.clone()
}

promo_conformance::issuer_race_tests!(store);
