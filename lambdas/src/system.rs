//! The system clock and OS randomness: the production adapters of the clock and id ports.

use chrono::{DateTime, Utc};
use promo_shared::ports::clock::Clock;
use promo_shared::ports::ids::IdGen;

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep(&self, d: std::time::Duration) {
        tokio::time::sleep(d).await;
    }
}

/// UUIDv7 ids and OS randomness.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsIds;

impl IdGen for OsIds {
    fn new_id(&self) -> String {
        uuid::Uuid::now_v7().to_string()
    }

    fn random_12(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        // The OS random source failing is unrecoverable for code generation.
        getrandom::fill(&mut b).unwrap_or_else(|e| panic!("OS randomness unavailable: {e}"));
        b
    }
}
