//! Retries of retryable store errors (throttling, an unreachable store): capped exponential
//! backoff with full jitter, shared by the issuer and the claimer.

use std::time::Duration;

use promo_shared::ports::backoff;
use promo_shared::store::StoreError;

/// How often and how patiently a retryable store error is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { retries: 8, base: Duration::from_millis(20), cap: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// Waits before retry number `attempt` (1-based); `random` spreads the wait.
    pub async fn pause(&self, attempt: u32, random: u64) {
        let d = backoff(attempt, self.base, self.cap, random);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// Runs `f`, again after a pause while it fails with a retryable error and retries are
    /// left; its last answer. `random` draws each pause's jitter.
    pub async fn run<T, F, Fut>(&self, mut random: impl FnMut() -> u64, mut f: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut transient = 0;
        loop {
            match f().await {
                Err(e) if e.is_retryable() && transient < self.retries => {
                    transient += 1;
                    self.pause(transient, random()).await;
                }
                other => return other,
            }
        }
    }
}
