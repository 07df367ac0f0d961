//! The answer a page prints: the price, how to get it, and until when it holds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ids::ProductId;
use crate::domain::money::Amount;
use crate::domain::money::Currency;

use super::choice::Choice;
use super::request::{BenefitId, ValidQuote};

/// The max-benefit price of a quote.
///
/// ```json
/// {"currency":"KRW","list_total":59000,"base":52000,"final_price":37800,
///  "product_coupon":"welcome","cart_coupon":null,"payment_promotion":"card-x","payment_method":"card:x",
///  "mileage_used":3000,"to_download":["welcome"],
///  "lines":[{"product":"p-1","quantity":1,"base":52000,"product_coupon":"welcome","product_discount":7000}],
///  "breakdown":[{"kind":"base","id":null,"amount":52000},
///               {"kind":"product_coupon","id":"welcome","line":0,"amount":7000},
///               {"kind":"mileage","id":null,"amount":3000},
///               {"kind":"payment_promotion","id":"card-x","amount":4200},
///               {"kind":"final_price","id":null,"amount":37800}],
///  "valid_until":"2026-12-01T00:00:00Z"}
/// ```
///
/// Every answer has the same keys. `product_coupon` is the product coupon of a quote of one
/// line (a `product`, or a cart of one line), and null for a cart of several lines, whose
/// product coupons are in `lines` (one per line, or null).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub currency: Currency,
    /// `Σ list_price × quantity`, for a "was" price.
    pub list_total: Amount,
    /// `Σ sale_price × quantity`.
    pub base: Amount,
    pub final_price: Amount,
    /// The product coupon of a one-line quote; `None` without one, or for several lines.
    pub product_coupon: Option<BenefitId>,
    pub cart_coupon: Option<BenefitId>,
    pub payment_promotion: Option<BenefitId>,
    /// The payment method the promotion needs (pay with it to get the price).
    pub payment_method: Option<String>,
    pub mileage_used: Amount,
    /// The chosen coupons the shopper does not own yet: download them first.
    pub to_download: Vec<BenefitId>,
    pub lines: Vec<AnswerLine>,
    /// Printable top to bottom: the base, each discount (positive amounts to subtract), the price.
    pub breakdown: Vec<BreakdownLine>,
    /// The earliest instant after `now` at which a coupon or promotion of the quote starts or
    /// ends (null if none): the answer may change then, so caches should not outlive it.
    pub valid_until: Option<DateTime<Utc>>,
}

impl Answer {
    /// The product coupon of each line, in line order.
    pub fn product_coupons(&self) -> impl Iterator<Item = Option<&BenefitId>> {
        self.lines.iter().map(|l| l.product_coupon.as_ref())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerLine {
    pub product: ProductId,
    pub quantity: u32,
    pub base: Amount,
    pub product_coupon: Option<BenefitId>,
    pub product_discount: Amount,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakdownKind {
    Base,
    ProductCoupon,
    CartCoupon,
    Mileage,
    PaymentPromotion,
    FinalPrice,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakdownLine {
    pub kind: BreakdownKind,
    pub id: Option<BenefitId>,
    /// The cart line a product coupon is on (index into `lines`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub amount: Amount,
}

/// Builds the answer of a chosen combination, recomputing every amount from the quote (so the
/// engine and the reference print the same thing for the same choice).
///
/// The choice must be valid for the quote (ids of the quote, mileage allowed): it comes from
/// [`super::quote`] or [`super::reference`]. Ids that are not in the quote count as no benefit.
pub fn settle(quote: &ValidQuote, choice: &Choice) -> Answer {
    let unit = quote.rounding_unit();
    let coupon = |id: &Option<BenefitId>| id.as_ref().and_then(|id| quote.coupons().iter().find(|c| &c.id == id));
    let mut breakdown = vec![BreakdownLine { kind: BreakdownKind::Base, id: None, line: None, amount: quote.base() }];
    let mut to_download = Vec::new();
    let mut lines = Vec::new();
    let mut after_products = Amount::ZERO;
    for (i, line) in quote.lines().iter().enumerate() {
        let chosen = choice.product_coupons.get(i).cloned().flatten();
        let c = coupon(&chosen);
        let discount = c.map_or(Amount::ZERO, |c| c.discount.on(line.base, unit));
        if let Some(c) = c {
            breakdown.push(BreakdownLine {
                kind: BreakdownKind::ProductCoupon,
                id: Some(c.id.clone()),
                line: Some(i),
                amount: discount,
            });
            if !c.owned {
                to_download.push(c.id.clone());
            }
        }
        after_products = after_products.checked_add(line.base.saturating_sub(discount)).unwrap_or(after_products);
        lines.push(AnswerLine {
            product: line.product.id.clone(),
            quantity: line.quantity,
            base: line.base,
            product_coupon: c.map(|c| c.id.clone()),
            product_discount: discount,
        });
    }
    let cart = coupon(&choice.cart_coupon);
    let cart_discount = cart.map_or(Amount::ZERO, |c| c.discount.on(after_products, unit));
    if let Some(c) = cart {
        breakdown.push(BreakdownLine {
            kind: BreakdownKind::CartCoupon,
            id: Some(c.id.clone()),
            line: None,
            amount: cart_discount,
        });
        if !c.owned {
            to_download.push(c.id.clone());
        }
    }
    let after_coupons = after_products.saturating_sub(cart_discount);
    if choice.mileage > Amount::ZERO {
        breakdown.push(BreakdownLine { kind: BreakdownKind::Mileage, id: None, line: None, amount: choice.mileage });
    }
    let paid = after_coupons.saturating_sub(choice.mileage);
    let promotion =
        choice.payment_promotion.as_ref().and_then(|id| quote.payment_promotions().iter().find(|p| &p.id == id));
    let payment_discount = promotion.map_or(Amount::ZERO, |p| p.discount.on(paid, unit));
    if let Some(p) = promotion {
        breakdown.push(BreakdownLine {
            kind: BreakdownKind::PaymentPromotion,
            id: Some(p.id.clone()),
            line: None,
            amount: payment_discount,
        });
    }
    let final_price = paid.saturating_sub(payment_discount);
    debug_assert_eq!(final_price, choice.final_price, "the choice's price is the settled price");
    breakdown.push(BreakdownLine { kind: BreakdownKind::FinalPrice, id: None, line: None, amount: final_price });
    Answer {
        currency: quote.currency(),
        list_total: quote.list_total(),
        base: quote.base(),
        final_price,
        product_coupon: match lines.as_slice() {
            [only] => only.product_coupon.clone(),
            _ => None,
        },
        cart_coupon: cart.map(|c| c.id.clone()),
        payment_promotion: promotion.map(|p| p.id.clone()),
        payment_method: promotion.map(|p| p.method.clone()),
        mileage_used: choice.mileage,
        to_download,
        lines,
        breakdown,
        valid_until: quote.valid_until(),
    }
}
