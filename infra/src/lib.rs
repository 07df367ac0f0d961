//! promoctl's library: the local runtime and the embedded adapters, used by the binary and
//! by tests that spawn the whole platform.

pub mod campaign_file;
pub mod config;
pub mod demo;
pub use promo_lambdas::edge_kv;
pub mod embedded;
pub mod http_client;
pub mod portone_standin;
pub mod runtime;
pub mod stages;
pub mod target;
pub mod webhook_events;
