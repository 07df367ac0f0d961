//! `promoctl campaign history ID` and `campaign rollback ID --to N`: the versions of a deployed
//! campaign, and any deployed version deployed again — through the normal deploy, so a
//! rollback is shown as a diff first, writes nothing when it changes nothing, and is refused
//! for what a deploy refuses (a stock below what is already issued).

use anyhow::{Context, bail};
use clap::Args;
use promo_shared::campaigns;
use promo_shared::campaigns::items::ChangeAction;
use promo_shared::domain::ids::CampaignId;
use promoctl::campaign_file::CampaignFile;
use promoctl::config;
use promoctl::embedded::SystemClock;
use serde_json::json;

use super::{deploy, diff};
use crate::commands::{TargetArgs, rfc3339};

#[derive(Args)]
pub struct History {
    /// The campaign's id.
    id: String,
    /// Print JSON: one object per version (`version`, `action`, `at`, `by`, `changes`,
    /// `rollback`: whether it can be deployed again).
    #[arg(long)]
    json: bool,
}

impl History {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        let history = campaigns::history(&*target.store, &id).await?;
        if history.is_empty() {
            bail!("campaign `{id}` has no history on the {}: it was never deployed there", target.description);
        }
        if self.json {
            let out: Vec<_> = history
                .iter()
                .map(|h| {
                    json!({"version": h.version, "action": h.action, "at": h.at, "by": h.by,
                           "changes": h.changes, "rollback": h.deployed.is_some()})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(());
        }
        println!("{:<8} {:<26} {:<8} BY", "VERSION", "AT", "ACTION");
        for h in &history {
            let action = format!("{:?}", h.action).to_lowercase();
            println!("v{:<7} {:<26} {:<8} {}", h.version, rfc3339(h.at), action, h.by);
            for line in &h.changes {
                println!("         ~ {line}");
            }
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct Rollback {
    /// The campaign's id.
    id: String,
    /// The version to deploy again (`campaign history ID` lists them).
    #[arg(long = "to", value_name = "VERSION")]
    to: i64,
    /// Show what would change and write nothing.
    #[arg(long)]
    dry_run: bool,
}

impl Rollback {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        let store = &*target.store;
        let Some(version) = campaigns::version(store, &id, self.to).await? else {
            bail!("campaign `{id}` has no version {} (see `promoctl campaign history {id}`)", self.to);
        };
        if version.action != ChangeAction::Deploy {
            let deploys: Vec<String> = campaigns::history(store, &id)
                .await?
                .iter()
                .filter(|h| h.action == ChangeAction::Deploy)
                .map(|h| format!("v{}", h.version))
                .collect();
            bail!(
                "version {} of campaign `{id}` was a {}, not a deploy: roll back to one of {}",
                self.to,
                format!("{:?}", version.action).to_lowercase(),
                deploys.join(", ")
            );
        }
        let Some(campaign) = version.deployed else {
            bail!(
                "version {} of campaign `{id}` was deployed before versions were kept whole: deploy its file instead",
                self.to
            );
        };
        let plan = diff::plan(store, &CampaignFile { campaign, relative: vec![] }).await?;
        println!("rolling campaign `{id}` back to version {} on the {}:", self.to, target.description);
        plan.print();
        if self.dry_run {
            println!("dry run: nothing written");
            return Ok(());
        }
        let by = config::operator();
        let done = campaigns::deploy_as(
            store,
            &SystemClock,
            &plan.campaign_to_deploy,
            &format!("{by} (rollback to v{})", self.to),
        )
        .await
        .context("deploying the earlier version")?;
        if done.unchanged() {
            println!("no changes: version {} is what is deployed (version {})", self.to, done.version);
        } else {
            println!("deployed version {} again as version {}", self.to, done.version);
        }
        println!("{}", deploy::republish(&target).await?);
        Ok(())
    }
}
