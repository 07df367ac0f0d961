//! `promoctl quote`: the pricing engine on a quote request read from stdin.

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct Quote {
    /// Print the answer on one line instead of indented.
    #[arg(long)]
    compact: bool,
}

impl Quote {
    pub fn run(self) -> anyhow::Result<()> {
        let mut request = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut request).context("reading stdin")?;
        anyhow::ensure!(!request.trim().is_empty(), "no quote request on stdin (see docs/marketers/pricing.md)");
        let answer = promo_shared::domain::pricing::quote_json(&request)?;
        let out = if self.compact { serde_json::to_string(&answer)? } else { serde_json::to_string_pretty(&answer)? };
        println!("{out}");
        Ok(())
    }
}
