//! A shopper's coupons.

use crate::domain::coupon::CouponCode;

use crate::domain::coupon::IssuedCoupon;
use crate::domain::ids::UserId;
use crate::items::keys;
use crate::ports::store::Item;
use crate::ports::store::Query;
use crate::ports::store::Store;
use crate::ports::store::StoreError;

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

/// The wallet item of a coupon: its fields, its key in the user's wallet, `type = coupon`.
pub fn item(coupon: &IssuedCoupon) -> Result<Item, StoreError> {
    // The coupon's fields, then its key and type: a few inserts into the map serde built,
    // rather than every field moved into another one.
    let mut item = match serde_json::to_value(coupon) {
        Ok(serde_json::Value::Object(fields)) => fields,
        Ok(other) => return Err(StoreError::Invalid(format!("a coupon serialised to {other}, not an object"))),
        Err(e) => return Err(StoreError::Invalid(e.to_string())),
    };
    item.extend(keys::wallet_coupon(&coupon.user_id, &coupon.code).item());
    item.insert("type".into(), "coupon".into());
    Ok(item)
}

/// The item reserving a coupon code (written under "must not exist": codes are unique).
pub fn code_item(code: &CouponCode, user: &UserId) -> Item {
    let mut item = keys::coupon_code(code).item();
    item.insert("type".into(), "coupon_code".into());
    item.insert("user_id".into(), user.as_str().into());
    item
}

pub fn parse(item: &Item) -> Result<IssuedCoupon, StoreError> {
    serde_json::from_value(serde_json::Value::Object(item.clone()))
        .map_err(|e| StoreError::Invalid(format!("stored coupon is invalid: {e}")))
}
