//! What product pages are priced from, as the store keeps it: products, the price book and
//! shoppers' mileage balances.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::ids::UserId;
use crate::domain::price_book::{CatalogProduct, PriceBook};
use crate::ports::store::{Item, ItemExt, Key, Query, StoreError};

pub const PRODUCTS: &str = "PRODUCTS";
pub const PRODUCT_SK_PREFIX: &str = "PRODUCT#";
pub const MILEAGE_SK: &str = "MILEAGE";

/// A catalog product. One partition holds them all, so they can be listed for export to the
/// edge's KV (reads at the edge come from KV).
pub fn product_key(id: &str) -> Key {
    Key::new(PRODUCTS, format!("{PRODUCT_SK_PREFIX}{id}"))
}

/// Every product.
pub fn all_products() -> Query {
    Query::partition(PRODUCTS).prefix(PRODUCT_SK_PREFIX)
}

pub fn product_item(p: &CatalogProduct) -> Result<Item, StoreError> {
    let mut item = product_key(p.id.as_str()).item();
    item.insert("type".into(), "product".into());
    item.insert("product".into(), serde_json::to_value(p).map_err(|e| StoreError::Invalid(e.to_string()))?);
    Ok(item)
}

pub fn product_from(item: &Item) -> Result<CatalogProduct, StoreError> {
    serde_json::from_value(item.get("product").cloned().unwrap_or(Value::Null))
        .map_err(|e| StoreError::Invalid(format!("stored product is invalid: {e}")))
}

/// The price book: the public offers of the deployed campaigns (rebuilt on every deploy and
/// every sell-out).
pub fn price_book_key() -> Key {
    Key::new("PRICEBOOK", "CURRENT")
}

pub fn price_book_item(book: &PriceBook, now: DateTime<Utc>) -> Result<Item, StoreError> {
    let mut item = price_book_key().item();
    item.insert("book".into(), serde_json::to_value(book).map_err(|e| StoreError::Invalid(e.to_string()))?);
    item.insert("published_at".into(), now.to_rfc3339().into());
    Ok(item)
}

pub fn price_book_from(item: &Item) -> Result<PriceBook, StoreError> {
    serde_json::from_value(item.get("book").cloned().unwrap_or(Value::Null))
        .map_err(|e| StoreError::Invalid(format!("stored price book is invalid: {e}")))
}

/// A shopper's mileage balance.
pub fn mileage_key(user: &UserId) -> Key {
    Key::new(crate::wallet::items::partition(user), MILEAGE_SK)
}

pub fn mileage_item(user: &UserId, balance: i64) -> Item {
    let mut item = mileage_key(user).item();
    item.insert("balance".into(), Value::from(balance));
    item
}

pub fn mileage_from(item: &Item) -> i64 {
    item.i64_attr("balance").unwrap_or(0)
}
