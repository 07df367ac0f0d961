//! The local runtime's rate limits of client callbacks: keyed GCRA limiters in process (the
//! Worker uses the Workers Rate Limiting bindings instead).

use std::num::NonZeroU32;

use async_trait::async_trait;
use governor::{DefaultKeyedRateLimiter, Quota};
use promo_shared::ports::rate_limit::{LimitScope, LimiterUnavailable, RateLimiter};

/// Keys kept before the limiters forget the ones that are back to full allowance.
const PRUNE_AT: usize = 100_000;

pub struct KeyedLimits {
    client: DefaultKeyedRateLimiter<String>,
    payment: DefaultKeyedRateLimiter<String>,
}

impl KeyedLimits {
    /// `per_client` and `per_payment` requests a minute (each at least 1), in bursts of as many.
    pub fn per_minute(per_client: u32, per_payment: u32) -> KeyedLimits {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        KeyedLimits {
            client: DefaultKeyedRateLimiter::keyed(quota(per_client)),
            payment: DefaultKeyedRateLimiter::keyed(quota(per_payment)),
        }
    }
}

#[async_trait]
impl RateLimiter for KeyedLimits {
    /// Never unavailable: the limiters are in this process.
    async fn allow(&self, scope: LimitScope, key: &str) -> Result<bool, LimiterUnavailable> {
        let limiter = match scope {
            LimitScope::CallbackClient => &self.client,
            LimitScope::CallbackPayment => &self.payment,
        };
        if limiter.len() > PRUNE_AT {
            limiter.retain_recent();
        }
        Ok(limiter.check_key(&key.to_string()).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_key_has_its_own_allowance() {
        let limits = KeyedLimits::per_minute(2, 1);
        assert!(limits.allow(LimitScope::CallbackClient, "10.0.0.1").await.unwrap());
        assert!(limits.allow(LimitScope::CallbackClient, "10.0.0.1").await.unwrap());
        assert!(!limits.allow(LimitScope::CallbackClient, "10.0.0.1").await.unwrap(), "over 2 a minute");
        assert!(limits.allow(LimitScope::CallbackClient, "10.0.0.2").await.unwrap(), "another client");
        assert!(limits.allow(LimitScope::CallbackPayment, "pay-1").await.unwrap());
        assert!(!limits.allow(LimitScope::CallbackPayment, "pay-1").await.unwrap());
        assert!(limits.allow(LimitScope::CallbackPayment, "pay-2").await.unwrap());
    }
}
