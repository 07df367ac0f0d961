//! `promoctl campaign show ID [--json]`: one deployed campaign, its stock and its history.

use clap::Args;
use promo_shared::campaigns;
use promo_shared::domain::ids::CampaignId;
use promo_shared::ports::clock::Clock;
use promoctl::embedded::SystemClock;
use serde_json::json;

use super::list::stock_of;
use crate::commands::{TargetArgs, rfc3339};

#[derive(Args)]
pub struct Show {
    /// The campaign's id.
    id: String,
    /// Print JSON: `{"campaign", "version", "status", "paused", "stock", "history"}`.
    #[arg(long)]
    json: bool,
}

impl Show {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        let store = &*target.store;
        let d = campaigns::get_deployed(store, &id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("campaign `{id}` is not deployed on the {}", target.description))?;
        let history = campaigns::history(store, &id).await?;
        let stock = stock_of(store, &d.campaign).await?;
        let status = d.campaign.status_at(SystemClock.now());
        if self.json {
            let out = json!({
                "campaign": d.campaign, "version": d.version, "status": status, "paused": d.paused,
                "deployed_at": d.deployed_at, "deployed_by": d.deployed_by, "stock": stock, "history": history,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(());
        }
        let c = &d.campaign;
        println!("campaign  {} ({})", c.id, c.name);
        println!("status    {}", format!("{status:?}").to_uppercase());
        println!("window    {} → {}", rfc3339(c.starts_at), rfc3339(c.ends_at));
        println!("version   {}", d.version);
        if let Some(p) = &d.paused {
            println!("paused    since {} by {}", rfc3339(p.at), p.by);
        }
        println!("coupons   {}", c.coupons.iter().map(|c| c.id.to_string()).collect::<Vec<_>>().join(", "));
        println!("rewards   {}", c.rewards.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(", "));
        for (rule, s) in &stock {
            println!("stock     {rule}: {} left of {}", s["left"], s["total"]);
        }
        println!("history");
        for h in &history {
            println!(
                "  v{:<4} {} {:<7} by {}",
                h.version,
                rfc3339(h.at),
                format!("{:?}", h.action).to_lowercase(),
                h.by
            );
            for line in &h.changes {
                println!("         ~ {line}");
            }
        }
        Ok(())
    }
}
