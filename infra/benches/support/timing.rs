//! What the benches share for timing: percentiles of latencies, and a pool of tasks working
//! through a number of operations.

#![allow(dead_code)] // each bench uses what it needs
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)] // rates

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Tasks working at once in the throughput runs.
pub const CONCURRENCY: usize = 32;

/// (p50, p99) of one operation's latencies.
pub fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let n = times.len();
    (times[n / 2], times[(n * 99 / 100).min(n - 1)])
}

/// Runs `f(0..total)` on [`CONCURRENCY`] tasks, one operation at a time each; operations a
/// second.
pub async fn concurrent<F, Fut>(total: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (f, next) = (f.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    f(i).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    total as f64 / t0.elapsed().as_secs_f64()
}
