//! `promoctl coupons list --user U`: a shopper's wallet.

use clap::{Args, Subcommand};
use promo_shared::domain::ids::UserId;
use promo_shared::wallet;

use super::{TargetArgs, rfc3339};

#[derive(Subcommand)]
pub enum CouponsCommand {
    /// List a shopper's coupons.
    List(List),
}

#[derive(Args)]
pub struct List {
    /// The shopper's user id.
    #[arg(long)]
    user: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl CouponsCommand {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        match self {
            CouponsCommand::List(c) => c.run(target).await,
        }
    }
}

impl List {
    async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let user = UserId::parse(self.user)?;
        let target = target.open().await?;
        let coupons = wallet::list(&*target.store, &user).await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&coupons)?);
            return Ok(());
        }
        println!("{:<16} {:<20} {:<16} {:<9} ENDS", "CODE", "CAMPAIGN", "COUPON", "STATUS");
        for c in coupons {
            println!(
                "{:<16} {:<20} {:<16} {:<9} {}",
                c.code.as_str(),
                c.campaign_id.as_str(),
                c.template.id.as_str(),
                format!("{:?}", c.status).to_uppercase(),
                rfc3339(c.ends_at)
            );
        }
        Ok(())
    }
}
