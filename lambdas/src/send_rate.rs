//! The account's send rate as a token bucket: [`TokenBucket`] implements the core's
//! [`SendRate`] with `governor`'s GCRA limiter, in memory, one per sender process.
//!
//! # Splitting the account's rate
//!
//! SES limits the whole account (a rate per second, `GetAccount`'s `MaxSendRate`), while
//! every sender instance (each concurrently running sender Lambda) holds a bucket of its own
//! and the instances never talk to each other. So each instance gets an equal share:
//! [`TokenBucket::per_instance`] divides the account's rate by the number of senders that can
//! run at once — the sender function's reserved concurrency. When fewer instances run than are
//! reserved, part of the account's rate goes unused; that is the price of needing no shared
//! counter. SES's own throttling (answered as [`MailError::Throttled`] and retried with
//! backoff) remains the backstop.
//!
//! # Bursts
//!
//! A bucket holds at most `burst` messages (by default the rate per second, at least 1 and at
//! most [`MAX_BULK`], so a fast account sends a whole bulk job at once). `acquire(n)` with `n`
//! above the burst takes the messages in pieces of at most `burst`, so it waits about
//! `(n - burst) / rate` seconds on a full bucket instead of failing.
//!
//! [`MailError::Throttled`]: promo_shared::ports::mail::MailError::Throttled

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use promo_shared::ports::mail::{MAX_BULK, SendRate};
use thiserror::Error;

/// Why a bucket cannot be built.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RateError {
    #[error("a send rate is a finite number of messages a second above 0, not {0}")]
    Rate(f64),
    #[error("a burst is at least 1 message")]
    Burst,
    #[error("the account's rate is shared by at least 1 sender instance, not 0")]
    Instances,
}

/// A send rate of `per_second` messages a second in bursts of at most `burst`.
pub struct TokenBucket {
    limiter: DefaultDirectRateLimiter,
    per_second: f64,
    burst: NonZeroU32,
}

impl std::fmt::Debug for TokenBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBucket")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl TokenBucket {
    /// `per_second` messages a second (e.g. `14.0`), in bursts of the default size: the rate
    /// rounded down, at least 1 and at most [`MAX_BULK`].
    pub fn new(per_second: f64) -> Result<TokenBucket, RateError> {
        TokenBucket::with_burst(per_second, default_burst(per_second))
    }

    /// `per_second` messages a second in bursts of at most `burst` (≥ 1).
    pub fn with_burst(per_second: f64, burst: u32) -> Result<TokenBucket, RateError> {
        let period = period(per_second)?;
        let burst = NonZeroU32::new(burst).ok_or(RateError::Burst)?;
        let quota = Quota::with_period(period).ok_or(RateError::Rate(per_second))?.allow_burst(burst);
        Ok(TokenBucket { limiter: RateLimiter::direct(quota), per_second, burst })
    }

    /// This instance's share of the account's rate: `account_rate / instances`, where
    /// `instances` is the most sender instances that run at once (the sender function's
    /// reserved concurrency). See the module's documentation.
    pub fn per_instance(account_rate: f64, instances: u32) -> Result<TokenBucket, RateError> {
        if instances == 0 {
            return Err(RateError::Instances);
        }
        period(account_rate)?;
        TokenBucket::new(share(account_rate, instances))
    }

    /// Messages a second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// The most messages taken at once.
    pub fn burst(&self) -> u32 {
        self.burst.get()
    }
}

#[async_trait]
impl SendRate for TokenBucket {
    async fn acquire(&self, n: u32) {
        let mut left = n;
        while let Some(cells) = NonZeroU32::new(left.min(self.burst.get())) {
            if self.limiter.until_n_ready(cells).await.is_err() {
                // Cannot happen (a piece is never above the burst); one by one still works.
                for _ in 0..cells.get() {
                    self.limiter.until_ready().await;
                }
            }
            left -= cells.get();
        }
    }
}

/// The time one message's token takes to come back; refuses 0, negative, NaN, infinite rates
/// and rates so small that the period overflows a `Duration`.
#[allow(clippy::float_arithmetic)] // a rate a second is a fraction of a second a message
fn period(per_second: f64) -> Result<Duration, RateError> {
    if !per_second.is_finite() || per_second <= 0.0 {
        return Err(RateError::Rate(per_second));
    }
    match Duration::try_from_secs_f64(1.0 / per_second) {
        Ok(p) if !p.is_zero() => Ok(p),
        _ => Err(RateError::Rate(per_second)),
    }
}

#[allow(clippy::float_arithmetic)] // an equal share of a rate
fn share(account_rate: f64, instances: u32) -> f64 {
    account_rate / f64::from(instances)
}

fn default_burst(per_second: f64) -> u32 {
    // `as` saturates (and NaN becomes 0): `with_burst` refuses a bad rate anyway.
    (per_second.floor() as u32).clamp(1, MAX_BULK as u32)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn refuses_rates_that_are_not_positive_finite_numbers() {
        for bad in [0.0, -0.0, -1.0, -14.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-300] {
            assert!(matches!(TokenBucket::new(bad), Err(RateError::Rate(_))), "accepted {bad}");
            assert!(matches!(TokenBucket::with_burst(bad, 5), Err(RateError::Rate(_))), "accepted {bad}");
            assert!(matches!(TokenBucket::per_instance(bad, 2), Err(RateError::Rate(_))), "accepted {bad}");
        }
        assert_eq!(TokenBucket::with_burst(14.0, 0).unwrap_err(), RateError::Burst);
        assert_eq!(TokenBucket::per_instance(14.0, 0).unwrap_err(), RateError::Instances);
    }

    #[test]
    fn default_burst_is_the_rate_between_1_and_a_bulk_call() {
        assert_eq!(TokenBucket::new(14.0).unwrap().burst(), 14);
        assert_eq!(TokenBucket::new(14.9).unwrap().burst(), 14);
        assert_eq!(TokenBucket::new(200.0).unwrap().burst(), MAX_BULK as u32);
        assert_eq!(TokenBucket::new(0.5).unwrap().burst(), 1);
        assert_eq!(TokenBucket::with_burst(14.0, 3).unwrap().burst(), 3);
    }

    #[test]
    fn per_instance_divides_the_account_rate() {
        let b = TokenBucket::per_instance(14.0, 7).unwrap();
        assert_eq!(b.per_second().to_bits(), 2.0f64.to_bits());
        assert_eq!(b.burst(), 2);
        let b = TokenBucket::per_instance(200.0, 1).unwrap();
        assert_eq!(b.per_second().to_bits(), 200.0f64.to_bits());
        assert_eq!(b.burst(), MAX_BULK as u32);
    }

    #[tokio::test]
    async fn acquires_more_than_the_burst_in_pieces() {
        // 1000/s: the 18 messages past the burst come back within a few milliseconds. The
        // timeout only catches a hang (e.g. asking for more than the bucket holds at once).
        let bucket = TokenBucket::with_burst(1000.0, 2).unwrap();
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            bucket.acquire(0).await;
            bucket.acquire(1).await;
            bucket.acquire(20).await;
            bucket.acquire(MAX_BULK as u32).await;
        })
        .await;
        assert!(waited.is_ok(), "acquire above the burst did not return");
    }
}
