//! The catalog at the edge: products (`product:<id>`) and the price book (`price-book`) in
//! KV, as JSON (`promoctl` and the sell-out republisher write them).

use std::sync::Arc;

use async_trait::async_trait;
use promo_shared::domain::price_book::{CatalogProduct, PRICE_BOOK_KV_KEY, PriceBook};
use promo_shared::http::ApiError;
use promo_shared::ports::catalog::Catalog;
use worker::Env;

use crate::config::KV_BINDING;

pub struct KvCatalog {
    kv: worker::kv::KvStore,
}

impl KvCatalog {
    pub fn new(env: &Env) -> Result<KvCatalog, ApiError> {
        Ok(KvCatalog { kv: env.kv(KV_BINDING).map_err(|e| ApiError::Internal(format!("KV binding: {e}")))? })
    }
}

#[async_trait(?Send)]
impl Catalog for KvCatalog {
    async fn product(&self, id: &str) -> Result<Option<CatalogProduct>, ApiError> {
        self.kv
            .get(&format!("product:{id}"))
            .json()
            .await
            .map_err(|e| ApiError::Unavailable(format!("KV product {id}: {e}")))
    }

    async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError> {
        let book = self
            .kv
            .get(PRICE_BOOK_KV_KEY)
            .json()
            .await
            .map_err(|e| ApiError::Unavailable(format!("KV price book: {e}")))?;
        Ok(Arc::new(book.unwrap_or(PriceBook { rounding_unit: 1, ..Default::default() })))
    }
}
