//! The core of the promotions platform, for every runtime (the Cloudflare Worker, the
//! Lambdas, the local runtime): no I/O — every side effect goes through a port. Builds for
//! `wasm32-unknown-unknown` and the host.
//!
//! - [`domain`]: money, ids, campaigns, coupons, payments, the pricing engine: pure types and
//!   rules.
//! - [`ports`]: every trait through which the core reaches the world (store, queue, mailer,
//!   clock, ids, delivery ledger, hand-off, payment look-up, rate limits, catalog, price
//!   cache, price book publisher, shopper tokens).
//! - [`items`]: the store's single-table layout: every item's key, and the typed items the
//!   use cases read and write.
//! - [`app`]: the use cases, generic over the ports: webhook acceptance, issuance and
//!   revocation, claims, deploys, quotes, price reads, the shoppers' API.
//! - [`http`]: runtime-neutral requests and responses, the one error-to-HTTP mapping and the
//!   one route table.

pub mod app;
pub mod domain;
pub mod http;
pub mod items;
pub mod ports;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
