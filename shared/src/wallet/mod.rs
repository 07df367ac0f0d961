//! A shopper's coupons.

pub mod items;

use crate::domain::coupon::IssuedCoupon;
use crate::domain::ids::UserId;
use crate::ports::store::{Store, StoreError, query_all};
use crate::wallet::items as wallet;

/// All coupons of a user, in code order.
pub async fn list<S: Store + ?Sized>(store: &S, user: &UserId) -> Result<Vec<IssuedCoupon>, StoreError> {
    query_all(store, wallet::of_user(user)).await?.iter().map(wallet::coupon_from).collect()
}
