//! `promoctl campaign pause|resume|end ID`: an operator's change, recorded with who and when,
//! then the price book republished (a paused or ended campaign is not on product pages).

use anyhow::Context;
use clap::Args;
use promo_shared::app::campaigns::{self, Control};
use promo_shared::domain::ids::CampaignId;
use promoctl::config;
use promoctl::embedded::SystemClock;

use super::deploy::republish;
use crate::commands::TargetArgs;

#[derive(Args)]
pub struct Id {
    /// The campaign's id.
    id: String,
}

impl Id {
    pub async fn run(self, target: &TargetArgs, what: Control) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        let by = config::operator();
        let done = campaigns::control(&*target.store, &SystemClock, &id, what, &by)
            .await
            .with_context(|| format!("campaign `{id}`"))?;
        let verb = match what {
            Control::Pause => "paused",
            Control::Resume => "resumed",
            Control::End => "ended",
        };
        if done.unchanged() {
            println!("no changes: campaign `{id}` is already {verb} (version {})", done.version);
        } else {
            println!("campaign `{id}` {verb} by {by}: version {}", done.version);
        }
        println!("{}", republish(&target).await?);
        Ok(())
    }
}
