//! The rate limit port: fixed-window counts per key.

use async_trait::async_trait;
use thiserror::Error;

/// What a rate limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// Client callbacks from one client (its address).
    CallbackClient,
    /// Client callbacks about one payment.
    CallbackPayment,
}

/// The limiter could not count the request (at the edge: its binding is missing, or it
/// failed). The request is refused with 503 `unavailable`, never let through unlimited: a
/// limit that fails open is no limit.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("the rate limiter is unavailable: {0}")]
pub struct LimiterUnavailable(pub String);

/// Fixed-window rate limits (the Workers Rate Limiting binding at the edge, in process locally).
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait RateLimiter: super::MaybeSend {
    /// Counts one request of `key` in `scope`: `Ok(false)` when it is over the limit, an
    /// error when the limiter could not count it.
    async fn allow(&self, scope: LimitScope, key: &str) -> Result<bool, LimiterUnavailable>;
}

/// No limits (tests, and a deployment that chose none).
pub struct Unlimited;

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl RateLimiter for Unlimited {
    async fn allow(&self, _scope: LimitScope, _key: &str) -> Result<bool, LimiterUnavailable> {
        Ok(true)
    }
}
