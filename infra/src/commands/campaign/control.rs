//! `promoctl campaign pause|resume|end ID`: an operator's change, recorded with who and when,
//! then the price book republished (a paused or ended campaign is not on product pages).

use anyhow::Context;
use clap::Args;
use promo_shared::campaigns::{self, Control};
use promo_shared::domain::ids::CampaignId;
use promo_shared::email::items::send::SendState;
use promoctl::config;
use promoctl::embedded::SystemClock;
use promoctl::target::Target;

use super::deploy::republish;
use crate::commands::{Confirm, TargetArgs};

#[derive(Args)]
pub struct Id {
    /// The campaign's id.
    id: String,
    #[command(flatten)]
    confirm: Confirm,
}

/// `pause` and `resume`: the campaign, or with `--email-only` only its email.
#[derive(Args)]
pub struct EmailControl {
    /// The campaign's id.
    id: String,
    /// Pause or resume only the campaign's email, not its offers.
    #[arg(long)]
    email_only: bool,
}

impl Id {
    /// `end`: the campaign's end becomes now (its email stops with it).
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        self.confirm.check(target.env, &target.description, &format!("end campaign `{id}` now"))?;
        control(&target, &id, Control::End, &config::operator()).await
    }
}

impl EmailControl {
    pub async fn run(self, target: &TargetArgs, what: Control) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        let by = config::operator();
        let to = match what {
            Control::Pause => SendState::Paused,
            Control::Resume => SendState::Sending,
            Control::End => anyhow::bail!("`end` is not an email control"),
        };
        match super::email::control(&target, &id, to, &by).await? {
            Some(msg) => println!("campaign `{id}`: {msg}"),
            None if self.email_only => anyhow::bail!("the email of campaign `{id}` has not been triggered"),
            None => {}
        }
        if self.email_only {
            return Ok(());
        }
        control(&target, &id, what, &by).await
    }
}

/// Records the operator's change, then republishes the price book.
async fn control(target: &Target, id: &CampaignId, what: Control, by: &str) -> anyhow::Result<()> {
    let done = campaigns::control(&*target.store, &SystemClock, id, what, by)
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
    println!("{}", republish(target).await?);
    Ok(())
}
