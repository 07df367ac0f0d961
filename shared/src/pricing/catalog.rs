//! The catalog and price book in the store, for max-benefit price reads
//! ([`crate::pricing::prices`]); the same JSON is what the edge reads from KV.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::claims::items as counter;
use crate::domain::ids::UserId;
use crate::domain::price_book::{CatalogProduct, MileagePolicy, Personal, PriceBook};
use crate::http::ApiError;
use crate::ports::catalog::Catalog;
use crate::ports::store::{ItemExt, Query, Store, StoreError, query_all};
use crate::pricing::items as catalog;
use crate::wallet::items as wallet;
use crate::{campaigns, claims};

/// Products and the price book read from the store.
pub struct StoreCatalog<'a, S: ?Sized>(pub &'a S);

impl<S: Store + ?Sized> StoreCatalog<'_, S> {
    pub async fn product(&self, id: &str) -> Result<Option<CatalogProduct>, ApiError> {
        let item = self.0.get(&catalog::product_key(id)).await.map_err(unavailable)?;
        item.map(|i| catalog::product_from(&i).map_err(|e| ApiError::Internal(e.to_string()))).transpose()
    }

    /// The stored price book (an empty one before the first deploy).
    pub async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError> {
        match self.0.get(&catalog::price_book_key()).await.map_err(unavailable)? {
            Some(item) => catalog::price_book_from(&item).map(Arc::new).map_err(|e| ApiError::Internal(e.to_string())),
            None => Ok(Arc::new(PriceBook { rounding_unit: 1, ..PriceBook::default() })),
        }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl<S: Store + ?Sized> Catalog for StoreCatalog<'_, S> {
    async fn product(&self, id: &str) -> Result<Option<CatalogProduct>, ApiError> {
        StoreCatalog::product(self, id).await
    }

    async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError> {
        StoreCatalog::price_book(self).await
    }
}

fn unavailable(e: StoreError) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

/// Publishes (creates or replaces) catalog products.
pub async fn publish_products<S: Store + ?Sized>(store: &S, products: &[CatalogProduct]) -> Result<(), StoreError> {
    for p in products {
        store.put(catalog::product_item(p)?, None).await?;
    }
    Ok(())
}

/// Rebuilds the price book from every deployed campaign and stores it; run after a deploy.
/// A claim campaign whose stock is all taken offers no coupon in it.
pub async fn publish_price_book<S: Store + ?Sized>(
    store: &S,
    now: DateTime<Utc>,
    rounding_unit: i64,
    mileage: Option<MileagePolicy>,
) -> Result<PriceBook, StoreError> {
    let deployed = campaigns::list(store).await?;
    let sold_out = claims::sold_out(store, &deployed, now).await?;
    let book = PriceBook::from_campaigns(&deployed, &sold_out, now, rounding_unit, mileage);
    store_price_book(store, &book, now).await?;
    Ok(book)
}

/// Stores `book` as the current price book (what `promoctl dev` and tokened reads price with).
pub async fn store_price_book<S: Store + ?Sized>(
    store: &S,
    book: &PriceBook,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    store.put(catalog::price_book_item(book, now)?, None).await
}

/// What the edge's KV must hold for product-page reads, as `wrangler kv bulk put` takes it:
/// `[{"key": "price-book", "value": "<json>"}, {"key": "product:<id>", "value": "<json>"}, ...]`.
pub async fn kv_bulk<S: Store + ?Sized>(store: &S) -> Result<Value, StoreError> {
    let catalog = StoreCatalog(store);
    let book = catalog.price_book().await.map_err(|e| StoreError::Invalid(e.to_string()))?;
    let mut entries = vec![book.kv_entry()];
    for item in query_all(store, catalog::all_products()).await? {
        entries.push(product_kv_entry(&catalog::product_from(&item)?)?);
    }
    Ok(Value::Array(entries))
}

/// A product's entry in the edge's KV (`{"key": "product:<id>", "value": "<json>"}`): the one
/// place the projection's product entries are built, for `export-kv` and for publishing.
pub fn product_kv_entry(p: &CatalogProduct) -> Result<Value, StoreError> {
    let value = serde_json::to_string(p).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(serde_json::json!({"key": format!("product:{}", p.id), "value": value}))
}

/// Sets a shopper's mileage balance.
pub async fn set_mileage<S: Store + ?Sized>(store: &S, user: &UserId, balance: i64) -> Result<(), StoreError> {
    store.put(catalog::mileage_item(user, balance), None).await
}

/// What a signed-in shopper adds to a price read: their coupons, mileage and claims made —
/// all in the shopper's partition, so one query (paged) reads them, strongly consistent. A
/// stored coupon that does not parse is logged and left out: it never fails the read.
pub async fn personal<S: Store + ?Sized>(store: &S, user: &UserId) -> Result<Personal, StoreError> {
    let mut personal = Personal::default();
    for item in query_all(store, Query::partition(wallet::partition(user))).await? {
        let sk = item.str_attr("sk").unwrap_or_default();
        if sk.starts_with(wallet::SK_PREFIX) {
            match wallet::coupon_from(&item) {
                Ok(c) => personal.coupons.push(c),
                Err(e) => {
                    tracing::warn!(user = %user.masked(), error = %e, "a wallet coupon that does not parse is left out")
                }
            }
        } else if sk.starts_with(counter::SK_PREFIX) {
            let campaign = item.str_attr("campaign_id");
            let count = u32::try_from(counter::count_of(Some(&item))).ok();
            if let (Some(campaign), Some(count)) = (campaign, count) {
                personal.claims.insert(campaign.to_string(), count);
            }
        } else if sk == catalog::MILEAGE_SK {
            personal.mileage_balance = catalog::mileage_from(&item);
        }
    }
    Ok(personal)
}
