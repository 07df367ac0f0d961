//! The catalog port: the products and the price book that price reads are computed from (KV
//! at the edge, the store locally).

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::price_book::CatalogProduct;

use crate::domain::price_book::PriceBook;
use crate::http::ApiError;

/// Where products and the price book are read from (KV at the edge, the store locally).
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait Catalog: super::MaybeSend {
    async fn product(&self, id: &str) -> Result<Option<CatalogProduct>, ApiError>;
    async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError>;
}
