//! promoctl's commands: one module per command, each with its arguments (clap) and its
//! `run`. Shared arguments and output helpers live here.

mod campaign;
mod coupons;
mod dev;
mod mileage;
mod products;
mod quote;
mod token;
mod webhook;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use promoctl::config::DEFAULT_DATA_DIR;

#[derive(Parser)]
#[command(name = "promoctl", version, about = "Run the promotions platform locally and drive its campaigns.")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in one process on embedded adapters (no services needed).
    Dev(dev::Dev),
    /// Validate, deploy and list campaigns.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Shoppers' coupons.
    #[command(subcommand)]
    Coupons(coupons::CouponsCommand),
    /// Sign and send webhooks as a payment provider would (to test an integration).
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Publish the shop's products for max-benefit price reads.
    #[command(subcommand)]
    Products(products::ProductsCommand),
    /// Shoppers' mileage.
    #[command(subcommand)]
    Mileage(mileage::MileageCommand),
    /// Price a product or a cart at its best: reads the quote request JSON (SPEC.md "Pricing
    /// rules") on stdin, prints the answer JSON on stdout. Exit 1 with the problems on stderr
    /// for an invalid request.
    Quote(quote::Quote),
    /// Print a shopper bearer token (HS256, signed with PROMO_SHOPPER_JWT_SECRET or the
    /// development secret of `promoctl dev`), for `Authorization: Bearer <token>`.
    Token(token::Token),
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Dev(c) => c.run().await,
            Command::Campaign(c) => c.run().await,
            Command::Coupons(c) => c.run().await,
            Command::Webhook(c) => c.run().await,
            Command::Products(c) => c.run().await,
            Command::Mileage(c) => c.run().await,
            Command::Quote(c) => c.run(),
            Command::Token(c) => c.run(),
        }
    }
}

/// Where the local platform keeps its data.
#[derive(Args)]
struct DataDir {
    /// Directory of the local platform's store, queue and outbox.
    #[arg(long, env = "PROMO_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// A time as tables print it.
fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
