//! `promoctl products publish FILE` and `products export-kv`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use promo_shared::domain::price_book::CatalogProduct;
use promo_shared::pricing::catalog;

use super::TargetArgs;

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
pub struct ExportKv {}

#[derive(Args)]
pub struct Publish {
    file: PathBuf,
}

impl ProductsCommand {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        match self {
            ProductsCommand::ExportKv(c) => c.run(target).await,
            ProductsCommand::Publish(c) => c.run(target).await,
        }
    }
}

impl ExportKv {
    async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let target = target.open().await?;
        println!("{}", serde_json::to_string_pretty(&catalog::kv_bulk(&*target.store).await?)?);
        Ok(())
    }
}

impl Publish {
    async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
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
        let target = target.open().await?;
        catalog::publish_products(&*target.store, &products).await?;
        println!("published {} products to the {}", products.len(), target.description);
        if let Some(kv) = &target.edge {
            let entries = products.iter().map(catalog::product_kv_entry).collect::<Result<Vec<_>, _>>()?;
            kv.put_all(&entries).await.context("publishing products to the edge")?;
            println!("published {} products to the edge's KV", entries.len());
        }
        Ok(())
    }
}
