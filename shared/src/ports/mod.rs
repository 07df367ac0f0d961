//! Every port of the platform: the traits through which the core's use cases reach the world.
//! Each has an adapter per cloud (Cloudflare in `edge/`, AWS and RabbitMQ in `lambdas/`) and an
//! embedded one (`infra/`); the conformance suites (`infra/conformance`) hold them to one
//! contract.

pub mod auth;
pub mod catalog;
pub mod clock;
pub mod handoff;
pub mod http_client;
pub mod ids;
pub mod ledger;
pub mod lookup;
pub mod mail;
pub mod price_cache;
pub mod publish;
pub mod queue;
pub mod rate_limit;
pub mod shopper_api;
pub mod store;

/// `Send + Sync` on the host, nothing on wasm32: the edge's ports are implemented there by
/// single-threaded JavaScript bindings, and on the host shared across tasks. A port bounded
/// by it can be held as a trait object in both.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSend for T {}

/// `Send + Sync` on the host, nothing on wasm32 (see the host's definition).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}
