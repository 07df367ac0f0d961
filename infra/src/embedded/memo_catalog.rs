//! The local runtime's catalog: products and the price book read from the store, kept in
//! memory for a while (a second, in `promoctl dev`), so a cached price read costs no store
//! round trip; a deploy or a product publish is seen within it, as the edge sees KV writes
//! within KV's own propagation delay. Time is the clock port's.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use promo_shared::domain::price_book::{CatalogProduct, PriceBook, public_cache_key};
use promo_shared::http::ApiError;
use promo_shared::ports::catalog::{Catalog, Priced};
use promo_shared::ports::clock::Clock;
use promo_shared::ports::store::Store;
use promo_shared::pricing::catalog::StoreCatalog;

/// [`StoreCatalog`] with the price book and products kept in memory for `ttl`: a cached
/// price read then costs no store round trip. A deploy or a product publish is seen within
/// `ttl` (as the edge sees KV writes within KV's own propagation delay).
pub struct MemoCatalog<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    ttl: std::time::Duration,
    book: std::sync::Mutex<Option<Memo<Arc<PriceBook>>>>,
    products: std::sync::Mutex<std::collections::HashMap<String, Memo<Option<CatalogProduct>>>>,
    /// Each product's [`Priced`], good while its product memo is fresh and the price book is
    /// the one it was keyed with (the same `Arc`).
    priced: std::sync::Mutex<std::collections::HashMap<String, Memo<Option<Priced>>>>,
}

/// A value and when it was read.
type Memo<T> = (DateTime<Utc>, T);

/// Products kept in memory at most; past it the memo starts over (a bound, not an LRU).
const MEMO_PRODUCTS: usize = 100_000;

impl<S: Store + ?Sized> MemoCatalog<S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, ttl: std::time::Duration) -> Self {
        MemoCatalog {
            store,
            clock,
            ttl,
            book: Default::default(),
            products: Default::default(),
            priced: Default::default(),
        }
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

    async fn priced(&self, id: &str) -> Result<Option<Priced>, ApiError> {
        let book = self.price_book().await?;
        if let Ok(memo) = self.priced.lock()
            && let Some((at, p)) = memo.get(id)
            && promo_shared::ports::clock::fresh(self.clock.now(), *at, self.ttl)
            && p.as_ref().is_none_or(|p| Arc::ptr_eq(&p.book, &book))
        {
            return Ok(p.clone());
        }
        let priced = StoreCatalog(&*self.store).product(id).await?.map(|product| {
            let public_key = public_cache_key(&product, &book).into();
            Priced { product: Arc::new(product), book, public_key }
        });
        if let Ok(mut memo) = self.priced.lock() {
            if memo.len() >= MEMO_PRODUCTS {
                memo.clear();
            }
            memo.insert(id.to_string(), (self.clock.now(), priced.clone()));
        }
        Ok(priced)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use promo_shared::ports::clock::ManualClock;
    use promo_shared::pricing::catalog;
    use promo_shared::testing::at;

    fn product(sale: i64) -> CatalogProduct {
        serde_json::from_value(serde_json::json!({"id": "p-1", "brand": "b-1", "currency": "KRW",
            "list_price": 59000, "sale_price": sale}))
        .unwrap()
    }

    /// The key comes from memory while the product and the book are the ones it was made
    /// of; a republished product or price book is seen once the memo's time has passed, and
    /// the key then changes with it — it is always the key of what is served.
    #[tokio::test]
    async fn priced_is_memoised_and_follows_the_store_after_its_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::embedded::SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let clock = Arc::new(ManualClock::new(at("2026-12-01T00:00:00Z")));
        let memo = MemoCatalog::new(store.clone(), clock.clone(), std::time::Duration::from_secs(1));
        assert!(memo.priced("p-1").await.unwrap().is_none(), "not in the catalog");
        catalog::publish_products(&*store, &[product(52000)]).await.unwrap();
        assert!(memo.priced("p-1").await.unwrap().is_none(), "an absence is remembered for the ttl too");
        clock.advance(chrono::Duration::seconds(1));
        let first = memo.priced("p-1").await.unwrap().unwrap();
        let again = memo.priced("p-1").await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&first.public_key, &again.public_key), "served from memory");
        assert_eq!(*first.public_key, public_cache_key(&first.product, &first.book));

        catalog::publish_products(&*store, &[product(51000)]).await.unwrap();
        assert_eq!(memo.priced("p-1").await.unwrap().unwrap().product.sale_price.minor(), 52000, "within the ttl");
        clock.advance(chrono::Duration::seconds(1));
        let changed = memo.priced("p-1").await.unwrap().unwrap();
        assert_eq!(changed.product.sale_price.minor(), 51000);
        assert_ne!(changed.public_key, first.public_key, "a changed product has a new key");
        assert_eq!(*changed.public_key, public_cache_key(&changed.product, &changed.book));
    }
}
