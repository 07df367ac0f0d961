//! `promoctl campaign …`: campaign files and the deployed campaigns.

mod deploy;
mod list;
mod validate;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Check a campaign file (.toml or .json) and print every problem found.
    Validate(validate::Validate),
    /// Validate and deploy a campaign file to the local platform's store.
    Deploy(deploy::Deploy),
    /// List deployed campaigns and their status now.
    List(list::List),
}

impl CampaignCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            CampaignCommand::Validate(c) => c.run(),
            CampaignCommand::Deploy(c) => c.run().await,
            CampaignCommand::List(c) => c.run().await,
        }
    }
}
