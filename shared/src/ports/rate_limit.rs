//! The rate limit port: fixed-window counts per key.

use async_trait::async_trait;

/// What a rate limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// Client callbacks from one client (its address).
    CallbackClient,
    /// Client callbacks about one payment.
    CallbackPayment,
}

/// Fixed-window rate limits (the Workers Rate Limiting binding at the edge, in process locally).
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait RateLimiter: super::MaybeSend {
    /// Counts one request of `key` in `scope`; false when it is over the limit.
    async fn allow(&self, scope: LimitScope, key: &str) -> bool;
}

/// No limits (tests, and a deployment that chose none).
pub struct Unlimited;

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl RateLimiter for Unlimited {
    async fn allow(&self, _scope: LimitScope, _key: &str) -> bool {
        true
    }
}
