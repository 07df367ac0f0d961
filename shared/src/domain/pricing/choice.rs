//! The objective and its tie-break as one total order, shared by the engine and the reference.

use crate::domain::money::Amount;

use super::request::BenefitId;

/// One priced combination of benefits. **Its `Ord` is the spec's preference**, smaller is better:
/// `derive(Ord)` compares the fields in declaration order, so the rule is
///
/// 1. lower `final_price`;
/// 2. then less `mileage` (the shopper keeps their points);
/// 3. then fewer `coupons` (product coupons of all lines plus the cart coupon; a payment
///    promotion is not a coupon);
/// 4. then the smallest ids, "none" before any id, compared in this order: the product coupon of
///    each line (in line order; a single product has one line), then the cart coupon, then the
///    payment promotion. Ids compare bytewise.
///
/// Two different valid combinations never compare equal: with the same coupons and payment
/// promotion and the same mileage, the price is the same. So the optimum is unique and two
/// correct implementations return the same one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Choice {
    pub final_price: Amount,
    pub mileage: Amount,
    pub coupons: u32,
    /// One entry per line, in the request's line order.
    pub product_coupons: Vec<Option<BenefitId>>,
    pub cart_coupon: Option<BenefitId>,
    pub payment_promotion: Option<BenefitId>,
}
