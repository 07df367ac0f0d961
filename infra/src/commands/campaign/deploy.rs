//! `promoctl campaign deploy FILE [--dry-run]`: one atomic change of the campaign, its stocks
//! and its history (nothing when it is deployed as it is), then the price book republished
//! to the store and the edge's KV.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use promo_shared::campaigns;
use promo_shared::ports::clock::Clock;
use promo_shared::pricing::catalog;
use promoctl::embedded::SystemClock;
use promoctl::target::Target;
use promoctl::{campaign_file, config};
use serde_json::json;

use super::diff;
use crate::commands::TargetArgs;

#[derive(Args)]
pub struct Deploy {
    /// The campaign file.
    file: PathBuf,
    /// Show what would change and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON: `{"campaign", "version", "changed", "changes", "price_book"}`.
    #[arg(long)]
    json: bool,
}

impl Deploy {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let file = campaign_file::load_file(&self.file, SystemClock.now())?;
        let target = target.open().await?;
        let plan = diff::plan(&*target.store, &file).await?;
        if self.dry_run {
            if self.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                println!("dry run against the {}: nothing written", target.description);
                plan.print();
            }
            return Ok(());
        }
        let c = &plan.campaign_to_deploy;
        let by = config::operator();
        let done =
            campaigns::deploy_as(&*target.store, &SystemClock, c, &by).await.context("deploying the campaign")?;
        let now = SystemClock.now();
        let published = republish(&target).await?;
        if self.json {
            let out = json!({
                "campaign": c.id, "version": done.version, "changed": !done.unchanged(),
                "changes": done.changes, "price_book": plan.price_book, "status": c.status_at(now),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(());
        }
        if done.unchanged() {
            println!("no changes: campaign `{}` is deployed as it is (version {})", c.id, done.version);
        } else {
            for line in &plan.resolved {
                println!("  {line}");
            }
            println!(
                "deployed campaign `{}` version {} to the {} as {by} ({:?} now)",
                c.id,
                done.version,
                target.description,
                c.status_at(now)
            );
            for line in done.changes.iter().filter(|_| done.version > 1) {
                println!("  ~ {line}");
            }
        }
        println!("{published}");
        Ok(())
    }
}

/// Rebuilds the price book from the target's campaigns, stores it and writes it to the edge's
/// KV when there is one (the projection is refreshed even when nothing changed, so a deploy
/// run again repairs a publication that failed). Returns what it did, in a line.
pub async fn republish(target: &Target) -> anyhow::Result<String> {
    let s = config::price_settings()?;
    let book = catalog::publish_price_book(&*target.store, SystemClock.now(), s.rounding_unit, Some(s.mileage))
        .await
        .context("publishing the price book")?;
    let mut line = format!(
        "published the price book: {} public coupons, {} payment promotions",
        book.coupons.len(),
        book.payment_promotions.len()
    );
    if let Some(kv) = &target.edge {
        kv.put_price_book(&book).await.context("publishing the price book to the edge")?;
        line.push_str(", and to the edge's KV");
    }
    Ok(line)
}
