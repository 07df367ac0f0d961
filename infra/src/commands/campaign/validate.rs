//! `promoctl campaign validate FILE`.

use std::path::PathBuf;

use clap::Args;
use promo_shared::ports::clock::Clock;
use promoctl::campaign_file;
use promoctl::embedded::SystemClock;

#[derive(Args)]
pub struct Validate {
    /// The campaign file.
    file: PathBuf,
}

impl Validate {
    pub fn run(self) -> anyhow::Result<()> {
        let c = campaign_file::load(&self.file, SystemClock.now())?;
        println!(
            "{}: campaign `{}` is valid ({} coupons, {} reward rules{})",
            self.file.display(),
            c.id,
            c.coupons.len(),
            c.rewards.len(),
            if c.claim.is_some() { ", claims" } else { "" }
        );
        Ok(())
    }
}
