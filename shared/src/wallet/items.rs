//! A shopper's wallet: their coupons, in their own partition, and the code items that make
//! every coupon code unique (each put under "must not exist").

use crate::domain::coupon::{CouponCode, IssuedCoupon};
use crate::domain::ids::UserId;
use crate::ports::store::{Item, Key, Query, StoreError};

pub const SK_PREFIX: &str = "COUPON#";

/// The partition of a shopper: their coupons, claim counters and mileage.
pub fn partition(user: &UserId) -> String {
    format!("USER#{user}")
}

pub fn key(user: &UserId, code: &CouponCode) -> Key {
    Key::new(partition(user), format!("{SK_PREFIX}{code}"))
}

/// Every coupon of a shopper, in code order.
pub fn of_user(user: &UserId) -> Query {
    Query::partition(partition(user)).prefix(SK_PREFIX)
}

/// The wallet item of a coupon: its fields, its key in the shopper's wallet, `type = coupon`.
pub fn coupon_item(coupon: &IssuedCoupon) -> Result<Item, StoreError> {
    crate::items::to_item(&key(&coupon.user_id, &coupon.code), "coupon", coupon)
}

pub fn coupon_from(item: &Item) -> Result<IssuedCoupon, StoreError> {
    crate::items::from_item("coupon", item)
}

pub fn code_key(code: &CouponCode) -> Key {
    Key::new(format!("CODE#{code}"), "CODE")
}

/// The item reserving a coupon code for its owner.
pub fn code_item(code: &CouponCode, user: &UserId) -> Item {
    let mut item = code_key(code).item();
    item.insert("type".into(), "coupon_code".into());
    item.insert("user_id".into(), user.as_str().into());
    item
}
