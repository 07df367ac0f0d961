//! `promoctl products publish FILE` and `products export-kv`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use promo_shared::app::catalog;
use promo_shared::domain::price_book::CatalogProduct;
use promoctl::{config, runtime};

use super::DataDir;

#[derive(Subcommand)]
pub enum ProductsCommand {
    /// Print what the edge's KV must hold (the price book and every product) in the format
    /// of `wrangler kv bulk put --binding PROMO_KV FILE`; run after deploys and publishes.
    ExportKv(ExportKv),
    /// Publish (create or replace) products from a JSON file: an array of
    /// `{"id","brand","category","currency","list_price","sale_price"}`.
    Publish(Publish),
}

#[derive(Args)]
pub struct ExportKv {
    #[command(flatten)]
    data: DataDir,
}

#[derive(Args)]
pub struct Publish {
    file: PathBuf,
    #[command(flatten)]
    data: DataDir,
}

impl ProductsCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            ProductsCommand::ExportKv(c) => c.run().await,
            ProductsCommand::Publish(c) => c.run().await,
        }
    }
}

impl ExportKv {
    async fn run(self) -> anyhow::Result<()> {
        let store = runtime::open_store(&self.data.data_dir)?;
        println!("{}", serde_json::to_string_pretty(&catalog::kv_bulk(&*store).await?)?);
        Ok(())
    }
}

impl Publish {
    async fn run(self) -> anyhow::Result<()> {
        let file = &self.file;
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let raw: Vec<serde_json::Value> =
            serde_json::from_str(&text).with_context(|| format!("{}: not a JSON array of products", file.display()))?;
        // Parsed once into the domain's types: an invalid product is named with its position
        // and nothing is written.
        let products = raw
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let id = v.get("id").and_then(|id| id.as_str()).unwrap_or("?").to_string();
                serde_json::from_value::<CatalogProduct>(v)
                    .with_context(|| format!("{}: products[{i}] (`{id}`)", file.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let edge = config::edge_kv()?; // a partial setting fails before anything is written
        let store = runtime::open_store(&self.data.data_dir)?;
        catalog::publish_products(&*store, &products).await?;
        println!("published {} products", products.len());
        if let Some(kv) = edge {
            let entries = products
                .iter()
                .map(|p| {
                    Ok(serde_json::json!({"key": format!("product:{}", p.id), "value": serde_json::to_string(p)?}))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            kv.put_all(&entries).await.context("publishing products to the edge")?;
            println!("published {} products to the edge's KV", entries.len());
        }
        Ok(())
    }
}
