//! The local runtime's catalog: products and the price book read from the store, kept in
//! memory for a while (a second, in `promoctl dev`), so a cached price read costs no store
//! round trip; a deploy or a product publish is seen within it, as the edge sees KV writes
//! within KV's own propagation delay. Time is the clock port's.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use promo_shared::app::catalog::StoreCatalog;
use promo_shared::domain::price_book::{CatalogProduct, PriceBook};
use promo_shared::http::ApiError;
use promo_shared::ports::catalog::Catalog;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::store::Store;

/// [`StoreCatalog`] with the price book and products kept in memory for `ttl`: a cached
/// price read then costs no store round trip. A deploy or a product publish is seen within
/// `ttl` (as the edge sees KV writes within KV's own propagation delay).
pub struct MemoCatalog<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    ttl: std::time::Duration,
    book: std::sync::Mutex<Option<Memo<Arc<PriceBook>>>>,
    products: std::sync::Mutex<std::collections::HashMap<String, Memo<Option<CatalogProduct>>>>,
}

/// A value and when it was read.
type Memo<T> = (DateTime<Utc>, T);

/// Products kept in memory at most; past it the memo starts over (a bound, not an LRU).
const MEMO_PRODUCTS: usize = 100_000;

impl<S: Store + ?Sized> MemoCatalog<S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, ttl: std::time::Duration) -> Self {
        MemoCatalog { store, clock, ttl, book: Default::default(), products: Default::default() }
    }
}

#[async_trait]
impl<S: Store + ?Sized> Catalog for MemoCatalog<S> {
    async fn product(&self, id: &str) -> Result<Option<CatalogProduct>, ApiError> {
        if let Ok(memo) = self.products.lock()
            && let Some((at, p)) = memo.get(id)
            && promo_shared::ports::clock::fresh(self.clock.now(), *at, self.ttl)
        {
            return Ok(p.clone());
        }
        let p = StoreCatalog(&*self.store).product(id).await?;
        if let Ok(mut memo) = self.products.lock() {
            if memo.len() >= MEMO_PRODUCTS {
                memo.clear();
            }
            memo.insert(id.to_string(), (self.clock.now(), p.clone()));
        }
        Ok(p)
    }

    async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError> {
        if let Ok(memo) = self.book.lock()
            && let Some((at, b)) = memo.as_ref()
            && promo_shared::ports::clock::fresh(self.clock.now(), *at, self.ttl)
        {
            return Ok(b.clone());
        }
        let b = StoreCatalog(&*self.store).price_book().await?;
        if let Ok(mut memo) = self.book.lock() {
            *memo = Some((self.clock.now(), b.clone()));
        }
        Ok(b)
    }
}
