//! Retries of retryable store errors (throttling, an unreachable store): capped exponential
//! backoff with full jitter, shared by the issuer and the claimer. Waiting goes through the
//! clock port, so tests on a manual clock do not wait.

use std::time::Duration;

use crate::ports::clock::Clock;
use crate::ports::store::StoreError;

/// Capped exponential backoff with full jitter (AWS's recommendation), from a random value.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, random: u64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(20));
    let ceiling = exp.min(cap).as_millis().max(1) as u64;
    Duration::from_millis(random % ceiling)
}

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
    pub async fn pause(&self, clock: &dyn Clock, attempt: u32, random: u64) {
        let d = backoff(attempt, self.base, self.cap, random);
        if !d.is_zero() {
            clock.sleep(d).await;
        }
    }

    /// Runs `f`, again after a pause while it fails with a retryable error and retries are
    /// left; its last answer. `random` draws each pause's jitter.
    pub async fn run<T, F, Fut>(
        &self,
        clock: &dyn Clock,
        mut random: impl FnMut() -> u64,
        mut f: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut transient = 0;
        loop {
            match f().await {
                Err(e) if e.is_retryable() && transient < self.retries => {
                    transient += 1;
                    self.pause(clock, transient, random()).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let base = Duration::from_millis(10);
        let cap = Duration::from_millis(1000);
        assert!(backoff(0, base, cap, u64::MAX) < Duration::from_millis(10));
        assert!(backoff(30, base, cap, u64::MAX) < cap);
        assert_eq!(backoff(3, base, cap, 0), Duration::ZERO);
    }
}
