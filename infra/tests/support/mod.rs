//! What the end-to-end tests share: the example campaign, and the runtime on a free loopback
//! port. (Each test file is its own crate and uses only part of this.)

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use promo_shared::campaign::Campaign;
use promoctl::campaign_file;
use promoctl::runtime::{self, Platform, RunOptions, Running};

/// `examples/black-friday.toml`, the campaign the README deploys.
pub fn example_campaign() -> Campaign {
    campaign_file::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/black-friday.toml"))
        .unwrap()
}

/// Starts `platform`'s runtime (HTTP API, schedules every `tick`, `consumers` payment
/// consumers) on a free loopback port.
pub async fn serve(platform: Arc<Platform>, tick: Duration, consumers: usize) -> Running {
    runtime::start(platform, "127.0.0.1:0".parse().unwrap(), RunOptions { tick, consumers }).await.unwrap()
}
