//! Embedded adapters of the domain's ports: everything the platform needs, in one data
//! directory, with no services running.
//!
//! ```text
//! <data-dir>/store.db   the store (SQLite)
//! <data-dir>/queue.db   the durable queue (SQLite)
//! <data-dir>/outbox/    one .eml file per message sent
//! ```

pub mod ledger;
pub mod mailer;
pub mod memo_catalog;
pub mod price_cache;
pub mod queue;
pub mod rate_limit;
pub mod shopper_api;
pub mod sqlite;
pub mod store;
pub mod tokens;
pub mod wal_checkpointer;

pub use mailer::OutboxMailer;
pub use price_cache::BoundedPriceCache;
pub use queue::{QueueConfig, SqliteQueue};
pub use rate_limit::KeyedLimits;
pub use store::SqliteStore;

/// The system clock and OS randomness, shared with the Lambda binaries.
pub use promo_lambdas::system::OsIds;
pub use promo_lambdas::system::SystemClock;
