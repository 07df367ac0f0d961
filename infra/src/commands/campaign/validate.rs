//! `promoctl campaign validate FILE [--json]`.

use std::path::PathBuf;

use clap::Args;
use promo_shared::ports::clock::Clock;
use promoctl::campaign_file::{self, Problems};
use promoctl::embedded::SystemClock;
use serde_json::json;

#[derive(Args)]
pub struct Validate {
    /// The campaign file.
    file: PathBuf,
    /// Print `{"valid", "campaign", "problems": [{file, line, column, field, message, hint}]}`.
    #[arg(long)]
    json: bool,
}

impl Validate {
    pub fn run(self) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", self.file.display()))?;
        match campaign_file::check(&text, &self.file, SystemClock.now()) {
            Ok(c) if self.json => {
                println!("{}", serde_json::to_string_pretty(&json!({"valid": true, "campaign": c, "problems": []}))?);
                Ok(())
            }
            Ok(c) => {
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
            Err(Problems { problems, .. }) if self.json => {
                println!("{}", serde_json::to_string_pretty(&json!({"valid": false, "problems": problems}))?);
                Err(super::super::Silent.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
