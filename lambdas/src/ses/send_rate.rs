//! The account's send rate as a sliding window: [`RateWindow`] implements the core's
//! [`SendRate`] so that no window of one second (of `1 / rate` seconds below one message a
//! second) ever holds more than the limit — counted at the moment each bulk call is let go,
//! the whole call at once.
//!
//! # Why a sliding window, not a token bucket
//!
//! A bulk call sends up to 50 messages at one instant. A token bucket that lets 50 go at once
//! also lets its full bucket go on top of its rate: measured at 200/s, a GCRA bucket with a
//! burst of 50 put 253 messages into one second. The window keeps a log of the calls let go
//! in the last second and lets a call go only when it fits under the limit with them: exact
//! for any window, and it sustains the limit (a call goes as soon as old ones leave the
//! window; calls of uneven sizes may leave a window's last few messages unused). The log
//! holds at most `limit` entries.
//!
//! # Splitting the account's rate
//!
//! SES limits the whole account (`GetAccount`'s `MaxSendRate`), while every sender instance
//! (each concurrently running sender Lambda) has its own window and the instances never talk
//! to each other. So each instance gets an equal share: [`RateWindow::per_instance`] divides
//! the account's rate by the number of senders that can run at once — the sender function's
//! reserved concurrency. When fewer instances run than are reserved, part of the account's
//! rate goes unused; that is the price of needing no shared counter. SES's own throttling
//! (answered as [`MailError::Throttled`] and retried with backoff) remains the backstop.
//!
//! [`MailError::Throttled`]: promo_shared::ports::mail::MailError::Throttled

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use promo_shared::ports::mail::{MAX_BULK, SendRate};
use thiserror::Error;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Why a rate cannot be built.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RateError {
    #[error("a send rate is a finite number of messages a second above 0, not {0}")]
    Rate(f64),
    #[error("the account's rate is shared by at least 1 sender instance, not 0")]
    Instances,
}

/// At most `limit` messages in any `window`.
pub struct RateWindow {
    limit: u32,
    window: Duration,
    /// When each call in the last window was let go, and its size.
    log: Mutex<VecDeque<(Instant, u32)>>,
}

impl std::fmt::Debug for RateWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateWindow").field("limit", &self.limit).field("window", &self.window).finish()
    }
}

impl RateWindow {
    /// `per_second` messages a second: `floor(per_second)` in any second, or, below one a
    /// second, one message in any `1 / per_second` seconds.
    #[allow(clippy::float_arithmetic, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn per_second(per_second: f64) -> Result<RateWindow, RateError> {
        if !per_second.is_finite() || per_second <= 0.0 {
            return Err(RateError::Rate(per_second));
        }
        let (limit, window) = if per_second >= 1.0 {
            (per_second.floor().min(f64::from(u32::MAX)) as u32, Duration::from_secs(1))
        } else {
            let window = Duration::try_from_secs_f64(1.0 / per_second).map_err(|_| RateError::Rate(per_second))?;
            (1, window)
        };
        Ok(RateWindow::new(limit, window))
    }

    /// At most `limit` (≥ 1) messages in any `window`.
    pub fn new(limit: u32, window: Duration) -> RateWindow {
        RateWindow { limit: limit.max(1), window, log: Mutex::new(VecDeque::new()) }
    }

    /// This instance's share of the account's rate: `account_rate / instances`, where
    /// `instances` is the most sender instances that run at once (the sender function's
    /// reserved concurrency). See the module's documentation.
    #[allow(clippy::float_arithmetic)] // an equal share of a rate
    pub fn per_instance(account_rate: f64, instances: u32) -> Result<RateWindow, RateError> {
        if instances == 0 {
            return Err(RateError::Instances);
        }
        if !account_rate.is_finite() || account_rate <= 0.0 {
            return Err(RateError::Rate(account_rate));
        }
        RateWindow::per_second(account_rate / f64::from(instances))
    }

    /// Messages in any window, and the window.
    pub fn limit(&self) -> (u32, Duration) {
        (self.limit, self.window)
    }
}

#[async_trait]
impl SendRate for RateWindow {
    async fn acquire(&self, n: u32) {
        // A call above the limit could never fit: the sender asks for at most `max_batch`.
        let n = n.min(self.limit);
        if n == 0 {
            return;
        }
        loop {
            let mut log = self.log.lock().await;
            let now = Instant::now();
            while log.front().is_some_and(|(at, _)| *at + self.window <= now) {
                log.pop_front();
            }
            let used: u32 = log.iter().map(|(_, k)| k).sum();
            if used + n <= self.limit {
                log.push_back((now, n));
                return;
            }
            // The earliest moment enough calls have left the window.
            let mut free = self.limit - used;
            let mut until = now + self.window;
            for (at, k) in log.iter() {
                free += k;
                if free >= n {
                    until = *at + self.window;
                    break;
                }
            }
            drop(log);
            tokio::time::sleep_until(until).await;
        }
    }

    fn max_batch(&self) -> usize {
        usize::try_from(self.limit).unwrap_or(MAX_BULK).min(MAX_BULK)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;

    #[test]
    fn refuses_rates_that_are_not_positive_finite_numbers() {
        for bad in [0.0, -0.0, -1.0, -14.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-300] {
            assert!(matches!(RateWindow::per_second(bad), Err(RateError::Rate(_))), "accepted {bad}");
            assert!(matches!(RateWindow::per_instance(bad, 2), Err(RateError::Rate(_))), "accepted {bad}");
        }
        assert_eq!(RateWindow::per_instance(14.0, 0).unwrap_err(), RateError::Instances);
    }

    #[test]
    fn limits_and_shares() {
        assert_eq!(RateWindow::per_second(14.9).unwrap().limit(), (14, Duration::from_secs(1)));
        assert_eq!(RateWindow::per_second(0.5).unwrap().limit(), (1, Duration::from_secs(2)));
        assert_eq!(RateWindow::per_instance(200.0, 4).unwrap().limit(), (50, Duration::from_secs(1)));
        assert_eq!(RateWindow::per_instance(14.0, 7).unwrap().max_batch(), 2, "a slow share sends small calls");
        assert_eq!(RateWindow::per_second(200.0).unwrap().max_batch(), MAX_BULK);
    }

    /// Many callers at once, on tokio's paused clock: every 1-second window holds at most the
    /// limit, and the limit is reached (nothing waits longer than it must).
    #[tokio::test(start_paused = true)]
    async fn no_window_holds_more_than_the_limit_and_the_limit_is_sustained() {
        let rate = Arc::new(RateWindow::per_second(200.0).unwrap());
        let start = Instant::now();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..4)
            .map(|k| {
                let (rate, log) = (rate.clone(), log.clone());
                tokio::spawn(async move {
                    for i in 0..30u32 {
                        // Full bulk calls, and a job's short tail now and then.
                        let n = if (i + k) % 10 == 9 { 25 } else { 50 };
                        rate.acquire(n).await;
                        log.lock().unwrap().push((Instant::now() - start, n));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut calls = log.lock().unwrap().clone();
        calls.sort();
        let total: u32 = calls.iter().map(|c| c.1).sum();
        for (i, (t, _)) in calls.iter().enumerate() {
            let window: u32 =
                calls[i..].iter().take_while(|(u, _)| *u < *t + Duration::from_secs(1)).map(|c| c.1).sum();
            assert!(window <= 200, "{window} in the second from {t:?}");
        }
        // 5,700 messages at 200 a second: the first second's 200 go at once, the rest take
        // 27.5 seconds; each of the 12 short calls may leave its missing 25 of one window
        // unused (a 50 waits for room), 0.125 s each: 29 s at most, nothing waits longer.
        let last = calls.last().unwrap().0;
        assert_eq!(total, 5700);
        assert!(last <= Duration::from_millis(27_500 + 12 * 125), "the limit was not sustained: last call at {last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_larger_than_the_limit_takes_the_limit() {
        let rate = RateWindow::per_second(14.0).unwrap();
        rate.acquire(50).await; // 14, not a hang
        rate.acquire(0).await;
        let t = Instant::now();
        rate.acquire(1).await;
        assert_eq!(Instant::now() - t, Duration::from_secs(1), "the window was full");
    }
}
