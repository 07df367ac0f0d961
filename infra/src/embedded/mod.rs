//! Embedded adapters of the domain's ports: everything the platform needs, in one data
//! directory, with no services running.
//!
//! ```text
//! <data-dir>/store.db   the store (SQLite)
//! <data-dir>/queue.db   the durable queue (SQLite)
//! <data-dir>/outbox/    one .eml file per message sent
//! ```

pub mod mailer;
pub mod queue;
pub mod sqlite;
pub mod store;

use chrono::{DateTime, Utc};
use promo_shared::ports::{Clock, IdGen};

pub use mailer::OutboxMailer;
pub use queue::{QueueConfig, SqliteQueue};
pub use store::SqliteStore;

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// UUIDv7 ids and OS randomness.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsIds;

impl IdGen for OsIds {
    fn new_id(&self) -> String {
        uuid::Uuid::now_v7().to_string()
    }

    fn random_12(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        // The OS random source failing is unrecoverable for code generation.
        getrandom::fill(&mut b).unwrap_or_else(|e| panic!("OS randomness unavailable: {e}"));
        b
    }
}
