//! `promoctl campaign diff FILE`: what a deploy of the file would change on the target.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::campaign_diff;
use promo_shared::domain::price_book::PriceBook;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::store::Store;
use promo_shared::{campaigns, claims};
use promoctl::campaign_file::{self, CampaignFile};
use promoctl::embedded::SystemClock;
use serde::Serialize;
use serde_json::Value;

use crate::commands::TargetArgs;

#[derive(Args)]
pub struct Diff {
    /// The campaign file.
    file: PathBuf,
    /// Print JSON: `{"campaign", "deployed_version", "changes", "price_book"}`.
    #[arg(long)]
    json: bool,
}

/// What a deploy would change.
#[derive(Serialize)]
pub struct Plan {
    pub campaign: String,
    /// The version deployed now (none: a new campaign).
    pub deployed_version: Option<i64>,
    /// The campaign's changes, one line each (empty: nothing to deploy).
    pub changes: Vec<String>,
    /// The price book entries that would appear (`+`), go (`-`) or change (`~`).
    pub price_book: Vec<String>,
    /// The relative times and the instants they stand for.
    pub resolved: Vec<String>,
    #[serde(skip)]
    pub campaign_to_deploy: Campaign,
}

impl Plan {
    pub fn print(&self) {
        for line in &self.resolved {
            println!("  {line}");
        }
        match self.deployed_version {
            None => println!("campaign `{}`: new", self.campaign),
            Some(v) if self.changes.is_empty() => println!("campaign `{}`: no changes (version {v})", self.campaign),
            Some(v) => {
                println!("campaign `{}` (version {v} → {}):", self.campaign, v + 1);
                for line in &self.changes {
                    println!("  ~ {line}");
                }
            }
        }
        for line in &self.price_book {
            println!("  price book: {line}");
        }
    }
}

/// The plan of deploying `file` on `store` at the moment the file was loaded.
pub async fn plan(store: &dyn Store, file: &CampaignFile) -> anyhow::Result<Plan> {
    let now = SystemClock.now();
    let deployed = campaigns::list_deployed(store).await?;
    let old = deployed.iter().find(|d| d.campaign.id == file.campaign.id);
    let new = file.anchored(old.map(|d| &d.campaign))?;
    let changes = match old {
        Some(o) => campaign_diff::diff(Some(&o.campaign), &new),
        None => vec![],
    };
    let resolved = file
        .relative
        .iter()
        .map(|f| {
            let at = CampaignFile::instant(&new, f).unwrap_or(new.starts_at);
            let when = if old.is_some() { "kept from the first deploy" } else { "resolved now" };
            format!("{f} = {} ({when})", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        })
        .collect();
    let before: Vec<Campaign> = deployed.iter().map(|d| d.campaign.clone()).collect();
    let mut after: Vec<Campaign> = before.iter().filter(|c| c.id != new.id).cloned().collect();
    after.push(new.clone().with_paused(old.is_some_and(|o| o.paused.is_some())));
    let sold_out = claims::sold_out(store, &before, now).await?;
    let book = |cs: &[Campaign]| PriceBook::from_campaigns(cs, &sold_out, now, 1, None);
    Ok(Plan {
        campaign: new.id.to_string(),
        deployed_version: old.map(|o| o.version),
        changes,
        price_book: book_changes(&book(&before), &book(&after)),
        resolved,
        campaign_to_deploy: new,
    })
}

/// The entries of two price books, keyed: coupons by campaign and template, payment
/// promotions by id.
fn book_changes(before: &PriceBook, after: &PriceBook) -> Vec<String> {
    fn entries(book: &PriceBook) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for c in &book.coupons {
            out.insert(
                format!("coupon {}/{}", c.campaign_id, c.template_id),
                serde_json::to_value(c).unwrap_or_default(),
            );
        }
        for p in &book.payment_promotions {
            let v = serde_json::to_value(p).unwrap_or_default();
            let id = v.pointer("/promotion/id").and_then(Value::as_str).unwrap_or("?").to_string();
            out.insert(format!("payment promotion {id}"), v);
        }
        out
    }
    let (a, b) = (entries(before), entries(after));
    let mut lines = Vec::new();
    for (k, v) in &a {
        match b.get(k) {
            None => lines.push(format!("- {k}")),
            Some(w) if w != v => lines.push(format!("~ {k}")),
            _ => {}
        }
    }
    lines.extend(b.keys().filter(|k| !a.contains_key(*k)).map(|k| format!("+ {k}")));
    lines
}

impl Diff {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let file = campaign_file::load_file(&self.file, SystemClock.now())?;
        let target = target.open().await?;
        let plan = plan(&*target.store, &file).await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            println!("against the {}:", target.description);
            plan.print();
        }
        Ok(())
    }
}
