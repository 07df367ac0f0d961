//! `promoctl campaign pause|resume|end ID`: an operator's change, recorded with who and when,
//! then the price book republished (a paused or ended campaign is not on product pages).

use anyhow::Context;
use clap::Args;
use promo_shared::app::campaigns::{self, Control};
use promo_shared::domain::ids::CampaignId;
use promo_shared::items::email_send::SendState;
use promoctl::config;
use promoctl::embedded::SystemClock;

use super::deploy::republish;
use crate::commands::TargetArgs;

#[derive(Args)]
pub struct Id {
    /// The campaign's id.
    id: String,
    /// Pause or resume only the campaign's email, not its offers (pause/resume only).
    #[arg(long)]
    email_only: bool,
}

impl Id {
    pub async fn run(self, target: &TargetArgs, what: Control) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        let by = config::operator();
        let email_to = match what {
            Control::Pause => Some(SendState::Paused),
            Control::Resume => Some(SendState::Sending),
            Control::End => None,
        };
        anyhow::ensure!(email_to.is_some() || !self.email_only, "--email-only goes with pause and resume");
        if let Some(to) = email_to {
            match super::email::control(&target, &id, to, &by).await? {
                Some(msg) => println!("campaign `{id}`: {msg}"),
                None if self.email_only => anyhow::bail!("the email of campaign `{id}` has not been triggered"),
                None => {}
            }
            if self.email_only {
                return Ok(());
            }
        }
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
