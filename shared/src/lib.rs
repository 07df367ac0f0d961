//! Domain core of the promotions platform. No I/O: every side effect goes through a port
//! (`store::Store`, `ports::{Queue, Mailer, Clock, IdGen}`) implemented outside this crate.
//! Builds for `wasm32-unknown-unknown` and the host.

pub mod campaign;
pub mod coupon;
pub mod email;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod limited_event;
pub mod money;
pub mod payment;
pub mod ports;
pub mod price_book;
pub mod pricing;
pub mod secret;
pub mod store;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::ValidationError;
