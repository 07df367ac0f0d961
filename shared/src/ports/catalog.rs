//! The catalog port: the products and the price book that price reads are computed from (KV
//! at the edge, the store locally).

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::price_book::{CatalogProduct, PriceBook, public_cache_key};
use crate::http::ApiError;

/// What a public price read needs of one product: the product, the price book in force and
/// the product's public cache key, which digests both.
#[derive(Clone, Debug)]
pub struct Priced {
    pub product: Arc<CatalogProduct>,
    pub book: Arc<PriceBook>,
    pub public_key: Arc<str>,
}

/// Where products and the price book are read from (KV at the edge, the store locally).
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait Catalog: super::MaybeSend {
    async fn product(&self, id: &str) -> Result<Option<CatalogProduct>, ApiError>;
    async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError>;

    /// The product with the price book and its public cache key; `None` for a product not
    /// in the catalog. A catalog that keeps them in memory answers from there, so a cached
    /// read recomputes nothing.
    async fn priced(&self, id: &str) -> Result<Option<Priced>, ApiError> {
        let Some(product) = self.product(id).await? else { return Ok(None) };
        let book = self.price_book().await?;
        let public_key = public_cache_key(&product, &book).into();
        Ok(Some(Priced { product: Arc::new(product), book, public_key }))
    }
}
