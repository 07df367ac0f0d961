//! Limited events against the embedded SQLite store (a real file on disk): reservations
//! racing for the stock and the waitlist, expiry and promotion, payments racing expiry,
//! concurrent ticks and a day of scheduler downtime, at full size (10,000 reservations on a
//! stock of 1,000).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use promo_shared::ports::store::Store;
use promoctl::embedded::SqliteStore;

/// A store of its own for each case: the due index is global, and each case drives its own
/// clock, so a tick of one case must not meet another's due work.
async fn store() -> Arc<dyn Store> {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let file = format!("store-{}.db", N.fetch_add(1, Ordering::Relaxed));
    Arc::new(SqliteStore::open(&dir.path().join(file)).expect("open store"))
}

promo_conformance::events_conformance_tests!(store, 1);
