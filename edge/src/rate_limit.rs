//! Rate limits through the Workers Rate Limiting bindings. A binding that is not configured,
//! or that fails, limits nothing safely: the callback it guards answers 503 (the port's
//! `LimiterUnavailable`), and the Worker says why in its log (a missing binding once per
//! isolate, a failing one each time).

use std::sync::Once;

use async_trait::async_trait;
use promo_shared::ports::rate_limit::{LimitScope, LimiterUnavailable, RateLimiter};

use crate::config::{CLIENT_LIMITER_BINDING, PAYMENT_LIMITER_BINDING};

pub struct BindingLimiter {
    pub client: Option<worker::RateLimiter>,
    pub payment: Option<worker::RateLimiter>,
}

/// Set once this isolate has logged a missing binding.
static MISSING_LOGGED: Once = Once::new();

#[async_trait(?Send)]
impl RateLimiter for BindingLimiter {
    async fn allow(&self, scope: LimitScope, key: &str) -> Result<bool, LimiterUnavailable> {
        let (binding, name) = match scope {
            LimitScope::CallbackClient => (&self.client, CLIENT_LIMITER_BINDING),
            LimitScope::CallbackPayment => (&self.payment, PAYMENT_LIMITER_BINDING),
        };
        let Some(binding) = binding else {
            MISSING_LOGGED.call_once(|| {
                worker::console_error!(
                    "CONFIGURATION ERROR: the rate limiting binding {name} is missing (see [[ratelimits]] in \
                     wrangler.toml); payment callbacks answer 503 until it is bound"
                );
            });
            return Err(LimiterUnavailable(format!("binding {name} is not configured")));
        };
        match binding.limit(key.to_string()).await {
            Ok(outcome) => Ok(outcome.success),
            Err(e) => {
                worker::console_error!("the rate limiting binding {name} failed: {e}; the callback answers 503");
                Err(LimiterUnavailable(format!("binding {name} failed: {e}")))
            }
        }
    }
}
