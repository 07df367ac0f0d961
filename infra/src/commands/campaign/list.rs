//! `promoctl campaign list`: the deployed campaigns, their status now and their stock left.

use std::collections::BTreeMap;

use clap::Args;
use promo_shared::domain::campaign::Campaign;
use promo_shared::payments::issuer;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::store::Store;
use promo_shared::{campaigns, claims};
use promoctl::embedded::SystemClock;
use serde_json::{Value, json};

use crate::commands::{TargetArgs, rfc3339};

#[derive(Args)]
pub struct List {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl List {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let target = target.open().await?;
        let store: &dyn Store = &*target.store;
        let all = campaigns::list(store).await?;
        let now = SystemClock.now();
        let mut stocks = Vec::with_capacity(all.len());
        for c in &all {
            stocks.push(stock_of(store, c).await?);
        }
        if self.json {
            let out: Vec<_> = all
                .iter()
                .zip(&stocks)
                .map(|(c, stock)| json!({"campaign": c, "status": c.status_at(now), "stock": stock}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(());
        }
        println!("{:<24} {:<10} {:<26} {:<26} {:<24} NAME", "ID", "STATUS", "STARTS", "ENDS", "STOCK LEFT");
        for (c, stock) in all.iter().zip(&stocks) {
            let left: Vec<String> =
                stock.iter().map(|(rule, s)| format!("{rule} {}/{}", s["left"], s["total"])).collect();
            println!(
                "{:<24} {:<10} {:<26} {:<26} {:<24} {}",
                c.id.as_str(),
                format!("{:?}", c.status_at(now)).to_uppercase(),
                rfc3339(c.starts_at),
                rfc3339(c.ends_at),
                if left.is_empty() { "-".to_string() } else { left.join(", ") },
                c.name
            );
        }
        Ok(())
    }
}

/// What is left of a campaign's limited stocks, by rule (`claim`, then each reward rule with
/// a stock): `{"left", "total"}`.
pub async fn stock_of(store: &dyn Store, campaign: &Campaign) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    if let Some(claim) = &campaign.claim {
        let left: i64 = claims::stock_left(store, campaign).await?.iter().sum();
        out.insert("claim".to_string(), json!({"left": left, "total": claim.stock}));
    }
    for rule in &campaign.rewards {
        if let Some(total) = rule.stock {
            let left: i64 = issuer::reward_stock_left(store, campaign, rule).await?.iter().sum();
            out.insert(format!("reward {}", rule.id), json!({"left": left, "total": total}));
        }
    }
    Ok(out)
}
