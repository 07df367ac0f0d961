//! The Cloudflare Worker: a thin entry (`entry`) that converts a `worker::Request` into the
//! core's request, serves it with the core's edge application
//! (`promo_shared::serve::edge::Edge`), and converts the answer back; and the Cloudflare
//! adapters of that application's ports:
//!
//! | port | adapter |
//! | --- | --- |
//! | delivery ledger | Durable Objects, deliveries hashed over 64 of them (`durable`), deciding by [`ledger`] |
//! | hand-off | the delivery object's outbox, sent on to the payment events queue in `SendMessageBatch`es signed with SigV4 ([`outbox`], [`sqs`]); or, without a queue, a signed `fetch` to the issuer's function URL (`fetch`) |
//! | payment look-up | `fetch` to PortOne's API (`fetch`) |
//! | personal prices | `fetch` to the API Lambda (`fetch`) |
//! | rate limits | the Workers Rate Limiting bindings (`rate_limit`) |
//! | catalog | KV (`kv`) |
//! | price cache | the Cache API (`cache`) |
//! | the core's log (`tracing`) | the console, kept by Workers Logs (`log`) |
//!
//! The environment is read in one place, [`config`]. What does not need the Worker's
//! runtime ([`config`], [`ledger`], [`outbox`]'s keys, [`sqs`]'s signing) builds and is tested on the host.

pub mod config;
pub mod ledger;
pub mod outbox;
pub mod sqs;

#[cfg(target_arch = "wasm32")]
mod cache;
#[cfg(target_arch = "wasm32")]
mod clock;
#[cfg(target_arch = "wasm32")]
mod durable;
#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod kv;
#[cfg(target_arch = "wasm32")]
mod log;
#[cfg(target_arch = "wasm32")]
mod rate_limit;
