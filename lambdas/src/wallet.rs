//! A shopper's coupons.

use promo_shared::coupon::IssuedCoupon;
use promo_shared::ids::UserId;
use promo_shared::keys;
use promo_shared::store::{Item, Query, Store, StoreError};

/// All coupons of a user, in code order.
pub async fn list<S: Store + ?Sized>(store: &S, user: &UserId) -> Result<Vec<IssuedCoupon>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .query(&Query::partition(keys::wallet_partition(user)).prefix(keys::COUPON_SK_PREFIX).after(after))
            .await?;
        for item in &page.items {
            out.push(parse(item)?);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

pub fn parse(item: &Item) -> Result<IssuedCoupon, StoreError> {
    serde_json::from_value(serde_json::Value::Object(item.clone()))
        .map_err(|e| StoreError::Invalid(format!("stored coupon is invalid: {e}")))
}
