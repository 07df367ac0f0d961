//! Rate limits through the Workers Rate Limiting bindings; a binding that is not configured
//! limits nothing.

use async_trait::async_trait;
use promo_shared::ports::rate_limit::{LimitScope, RateLimiter};

pub struct BindingLimiter {
    pub client: Option<worker::RateLimiter>,
    pub payment: Option<worker::RateLimiter>,
}

#[async_trait(?Send)]
impl RateLimiter for BindingLimiter {
    async fn allow(&self, scope: LimitScope, key: &str) -> bool {
        let binding = match scope {
            LimitScope::CallbackClient => &self.client,
            LimitScope::CallbackPayment => &self.payment,
        };
        match binding {
            // The binding failing is not the caller's fault: let the request through.
            Some(b) => b.limit(key.to_string()).await.map(|o| o.success).unwrap_or(true),
            None => true,
        }
    }
}
