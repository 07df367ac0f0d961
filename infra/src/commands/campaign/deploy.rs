//! `promoctl campaign deploy FILE`: one atomic change of the campaign and its stocks, then
//! the price book republished (to the edge's KV too when configured).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use promo_shared::app::{campaigns, catalog};
use promo_shared::ports::clock::Clock;
use promoctl::embedded::SystemClock;
use promoctl::{campaign_file, config, runtime};

use crate::commands::DataDir;

#[derive(Args)]
pub struct Deploy {
    /// The campaign file.
    file: PathBuf,
    #[command(flatten)]
    data: DataDir,
}

impl Deploy {
    pub async fn run(self) -> anyhow::Result<()> {
        let now = SystemClock.now();
        let c = campaign_file::load(&self.file, now)?;
        let edge = config::edge_kv()?; // a partial setting fails before anything is written
        let store = runtime::open_store(&self.data.data_dir)?;
        let version = campaigns::deploy(&*store, &SystemClock, &c).await.context("deploying the campaign")?;
        let s = config::price_settings()?;
        let book = catalog::publish_price_book(&*store, now, s.rounding_unit, Some(s.mileage))
            .await
            .context("publishing the price book")?;
        println!("deployed campaign `{}` version {version} ({:?} now)", c.id, c.status_at(now));
        println!(
            "published the price book: {} public coupons, {} payment promotions",
            book.coupons.len(),
            book.payment_promotions.len()
        );
        if let Some(kv) = edge {
            kv.put_price_book(&book).await.context("publishing the price book to the edge")?;
            println!("published the price book to the edge's KV");
        }
        Ok(())
    }
}
