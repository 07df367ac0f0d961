//! The core of the promotions platform, for every runtime (the Cloudflare Worker, the
//! Lambdas, the local runtime): no I/O — every side effect goes through a port. Builds for
//! `wasm32-unknown-unknown` and the host.
//!
//! - [`domain`]: money, ids, campaigns, coupons, payments, the pricing engine: pure types and
//!   rules.
//! - [`ports`]: every trait through which the core reaches the world (store, queue, mailer,
//!   clock, ids, delivery ledger, hand-off, payment look-up, rate limits, catalog, price
//!   cache, price book publisher, shopper tokens).
//! - The features, each a folder with its use cases (generic over the ports) and its store
//!   items: [`payments`] (providers, webhooks, the gateway, issuance and revocation),
//!   [`claims`], [`wallet`], [`pricing`] (catalog, price book, cached price reads, quotes),
//!   [`email`] (audience, publish, send, feedback, unsubscribe), [`events`] (limited events:
//!   reserve, pay, schedule), and the cross-cutting [`campaigns`] (deploys and stocks) and
//!   [`idempotency`].
//! - [`items`]: the single-table layout and the item codec the features share; [`config`]
//!   and [`retry`]: settings and store retries shared by the features.
//! - [`http`]: runtime-neutral requests and responses, the one error-to-HTTP mapping and the
//!   one route table.
//! - [`serve`]: the two request handlers, [`serve::edge`] (public routes) and [`serve::api`]
//!   (the shoppers' API).

pub mod campaigns;
pub mod claims;
pub mod config;
pub mod domain;
pub mod email;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod items;
pub mod payments;
pub mod ports;
pub mod pricing;
pub mod retry;
pub mod serve;
pub mod wallet;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
