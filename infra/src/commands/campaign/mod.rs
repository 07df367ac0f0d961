//! `promoctl campaign …`: campaign files (validate, diff, deploy) and the deployed campaigns
//! (list, show, pause, resume, end), on the target chosen with `--env`.

mod control;
mod deploy;
mod diff;
mod email;
mod history;
mod list;
mod preview;
mod show;
mod validate;

use clap::Subcommand;

use super::TargetArgs;

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Check a campaign file (.toml or .json): every problem as `file:line:column: field:
    /// message` with a hint. Exit 1 when there is any.
    Validate(validate::Validate),
    /// Show what deploying a campaign file would change on the target (campaign, stocks,
    /// price book entries); writes nothing.
    Diff(diff::Diff),
    /// Validate and deploy a campaign file: nothing is written when it is already deployed as
    /// it is; `--dry-run` shows the changes only.
    Deploy(deploy::Deploy),
    /// List deployed campaigns, their status now and their stock left.
    List(list::List),
    /// One deployed campaign: its status, stock, rules and history of changes.
    Show(show::Show),
    /// The versions of a campaign: who deployed, paused, resumed or ended it, when, and what
    /// each deploy changed.
    History(history::History),
    /// Deploy an earlier version again (`--to N`), through the normal deploy: the diff is
    /// shown first, and what a deploy refuses (a stock below what is issued) is refused.
    Rollback(history::Rollback),
    /// Pause a campaign: no claims, no rewards, no promotion on product pages, and no email
    /// sent, until resumed (`--email-only`: only its email).
    Pause(control::EmailControl),
    /// Resume a paused campaign and its email (`--email-only`: only its email).
    Resume(control::EmailControl),
    /// End a campaign now (its end becomes now).
    End(control::Id),
    /// Print the campaign's email as one recipient gets it, headers included (`--user` takes an
    /// audience member's attributes, `--attr NAME=VALUE` sets one); sends nothing.
    Preview(preview::Preview),
    /// Send the campaign's email to a seed list (`--to a@x,b@y`) through the target's mailer,
    /// leaving the campaign's delivery records and counts alone.
    TestSend(preview::TestSend),
    /// Send the campaign's email to its audience and follow the send: once, however often
    /// it is triggered; again to resume publishing after an interruption.
    Trigger(email::Trigger),
    /// The campaign email's progress: audience = sent + skipped + failed + uncertain + pending.
    Status(email::Status),
    /// Cancel the campaign's email: queued jobs are skipped, nothing more is sent.
    Cancel(email::Cancel),
    /// Send again to the recipients left UNCERTAIN by a crash (`--uncertain` required).
    Resend(email::Resend),
}

impl CampaignCommand {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        match self {
            CampaignCommand::Validate(c) => c.run(),
            CampaignCommand::Diff(c) => c.run(target).await,
            CampaignCommand::Deploy(c) => c.run(target).await,
            CampaignCommand::List(c) => c.run(target).await,
            CampaignCommand::Show(c) => c.run(target).await,
            CampaignCommand::History(c) => c.run(target).await,
            CampaignCommand::Rollback(c) => c.run(target).await,
            CampaignCommand::Pause(c) => c.run(target, promo_shared::campaigns::Control::Pause).await,
            CampaignCommand::Resume(c) => c.run(target, promo_shared::campaigns::Control::Resume).await,
            CampaignCommand::End(c) => c.run(target).await,
            CampaignCommand::Preview(c) => c.run(target).await,
            CampaignCommand::TestSend(c) => c.run(target).await,
            CampaignCommand::Trigger(c) => c.run(target).await,
            CampaignCommand::Status(c) => c.run(target).await,
            CampaignCommand::Cancel(c) => c.run(target).await,
            CampaignCommand::Resend(c) => c.run(target).await,
        }
    }
}
