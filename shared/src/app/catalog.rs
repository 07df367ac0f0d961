//! The catalog and price book in the store, for max-benefit price reads
//! ([`crate::app::prices`]); the same JSON is what the edge reads from KV.

use std::sync::Arc;

use crate::domain::ids::UserId;
use crate::domain::price_book::CatalogProduct;
use crate::domain::price_book::MileagePolicy;
use crate::domain::price_book::Personal;
use crate::domain::price_book::PriceBook;
use crate::http::ApiError;
use crate::items::keys;
use crate::ports::catalog::Catalog;
use crate::ports::store::ItemExt;
use crate::ports::store::Query;
use crate::ports::store::Store;
use crate::ports::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::app::campaigns;

use crate::app::claims;

use crate::app::wallet;

/// Products and the price book read from the store.
pub struct StoreCatalog<'a, S: ?Sized>(pub &'a S);

impl<S: Store + ?Sized> StoreCatalog<'_, S> {
    pub async fn product(&self, id: &str) -> Result<Option<CatalogProduct>, ApiError> {
        let item = self.0.get(&keys::product(id)).await.map_err(unavailable)?;
        item.and_then(|i| i.get("product").cloned())
            .map(|v| serde_json::from_value(v).map_err(|e| ApiError::Internal(format!("stored product: {e}"))))
            .transpose()
    }

    /// The stored price book (an empty one before the first deploy).
    pub async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError> {
        let item = self.0.get(&keys::price_book()).await.map_err(unavailable)?;
        match item.and_then(|i| i.get("book").cloned()) {
            Some(v) => serde_json::from_value(v)
                .map(Arc::new)
                .map_err(|e| ApiError::Internal(format!("stored price book: {e}"))),
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
        let mut item = keys::product(&p.id).item();
        item.insert("type".into(), "product".into());
        item.insert("product".into(), serde_json::to_value(p).map_err(|e| StoreError::Invalid(e.to_string()))?);
        store.put(item, None).await?;
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
    let mut item = keys::price_book().item();
    item.insert("book".into(), serde_json::to_value(book).map_err(|e| StoreError::Invalid(e.to_string()))?);
    item.insert("published_at".into(), now.to_rfc3339().into());
    store.put(item, None).await
}

/// What the edge's KV must hold for product-page reads, as `wrangler kv bulk put` takes it:
/// `[{"key": "price-book", "value": "<json>"}, {"key": "product:<id>", "value": "<json>"}, ...]`.
pub async fn kv_bulk<S: Store + ?Sized>(store: &S) -> Result<Value, StoreError> {
    let catalog = StoreCatalog(store);
    let book = catalog.price_book().await.map_err(|e| StoreError::Invalid(e.to_string()))?;
    let mut entries = vec![book.kv_entry()];
    let mut after = None;
    loop {
        let page = store
            .query(
                &crate::ports::store::Query::partition(keys::PRODUCTS_PK).prefix(keys::PRODUCT_SK_PREFIX).after(after),
            )
            .await?;
        for item in &page.items {
            if let Some(p) = item.get("product") {
                let id = p.get("id").and_then(Value::as_str).unwrap_or_default();
                entries.push(serde_json::json!({"key": format!("product:{id}"), "value": p.to_string()}));
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(Value::Array(entries)),
        }
    }
}

/// Sets a shopper's mileage balance.
pub async fn set_mileage<S: Store + ?Sized>(store: &S, user: &UserId, balance: i64) -> Result<(), StoreError> {
    let mut item = keys::mileage(user).item();
    item.insert("balance".into(), Value::from(balance));
    store.put(item, None).await
}

/// What a signed-in shopper adds to a price read: their coupons, mileage and claims made —
/// all in the shopper's partition, so one query (paged) reads them, strongly consistent. A
/// stored coupon that does not parse is logged and left out: it never fails the read.
pub async fn personal<S: Store + ?Sized>(store: &S, user: &UserId) -> Result<Personal, StoreError> {
    let mut personal = Personal::default();
    let mut after = None;
    loop {
        let page = store.query(&Query::partition(keys::wallet_partition(user)).after(after)).await?;
        for item in &page.items {
            let sk = item.get("sk").and_then(Value::as_str).unwrap_or_default();
            if sk.starts_with(keys::COUPON_SK_PREFIX) {
                match wallet::parse(item) {
                    Ok(c) => personal.coupons.push(c),
                    Err(e) => {
                        tracing::warn!(user = %user.masked(), error = %e, "a wallet coupon that does not parse is left out")
                    }
                }
            } else if sk.starts_with(keys::CLAIMS_SK_PREFIX) {
                let campaign = item.get("campaign_id").and_then(Value::as_str);
                let count = item.i64_attr("count").and_then(|n| u32::try_from(n).ok());
                if let (Some(campaign), Some(count)) = (campaign, count) {
                    personal.claims.insert(campaign.to_string(), count);
                }
            } else if sk == keys::MILEAGE_SK {
                personal.mileage_balance = item.i64_attr("balance").unwrap_or(0);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(personal),
        }
    }
}
