//! `promoctl mileage set --user U --balance N`.

use clap::{Args, Subcommand};
use promo_shared::domain::ids::UserId;
use promo_shared::pricing::catalog;

use super::TargetArgs;

#[derive(Subcommand)]
pub enum MileageCommand {
    /// Set a shopper's mileage balance (minor units).
    Set(Set),
}

#[derive(Args)]
pub struct Set {
    #[arg(long)]
    user: String,
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    balance: i64,
}

impl MileageCommand {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        match self {
            MileageCommand::Set(c) => c.run(target).await,
        }
    }
}

impl Set {
    async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let user = UserId::parse(self.user)?;
        let target = target.open().await?;
        catalog::set_mileage(&*target.store, &user, self.balance).await?;
        println!("mileage of `{user}`: {}", self.balance);
        Ok(())
    }
}
