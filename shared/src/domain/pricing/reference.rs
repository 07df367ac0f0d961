//! The pricing rules read literally: try every combination. **For tests and benchmarks only** —
//! its cost is `(coupons + 1)^lines × (coupons + 1) × (balance / unit + 1) × (promotions + 1)`.
//!
//! It shares nothing with the engine but the spec's primitives (`Discount::on`, `Window::live_at`,
//! `Coupon::applies_to`) and the order of [`Choice`]: every product coupon or none on each line
//! (each coupon at most once), × every cart coupon or none, × every mileage value
//! `0, unit, 2·unit, …, ≤ balance`, × every payment promotion or none, keeping the valid ones and
//! the smallest [`Choice`].

use std::cmp::Ordering;

use crate::domain::coupon::CouponKind;
use crate::domain::money::Amount;

use super::answer::{Answer, settle};
use super::choice::Choice;
use super::request::{Coupon, PaymentPromotion, ValidQuote};

/// The answer of the best combination, found by trying them all.
pub fn quote(q: &ValidQuote) -> Answer {
    settle(q, &best_choice(q))
}

/// The best combination, found by trying them all.
pub fn best_choice(q: &ValidQuote) -> Choice {
    let mut best: Option<Choice> = None;
    let mut assignment: Vec<Option<&Coupon>> = Vec::with_capacity(q.lines().len());
    assign(q, &mut assignment, &mut best);
    // The empty combination is always valid.
    best.unwrap_or_else(|| Choice {
        final_price: q.base(),
        mileage: Amount::ZERO,
        coupons: 0,
        product_coupons: vec![None; q.lines().len()],
        cart_coupon: None,
        payment_promotion: None,
    })
}

/// Every assignment of product coupons to the remaining lines.
fn assign<'q>(q: &'q ValidQuote, chosen: &mut Vec<Option<&'q Coupon>>, best: &mut Option<Choice>) {
    let i = chosen.len();
    if i == q.lines().len() {
        price_assignment(q, chosen, best);
        return;
    }
    chosen.push(None);
    assign(q, chosen, best);
    chosen.pop();
    for c in q.coupons() {
        let line = &q.lines()[i];
        let valid = c.kind == CouponKind::Product
            && c.window.live_at(q.now())
            && c.applies_to(&line.product)
            && c.min_order <= line.base
            && !chosen.iter().flatten().any(|used| used.id == c.id);
        if valid {
            chosen.push(Some(c));
            assign(q, chosen, best);
            chosen.pop();
        }
    }
}

fn price_assignment(q: &ValidQuote, chosen: &[Option<&Coupon>], best: &mut Option<Choice>) {
    let unit = q.rounding_unit();
    let now = q.now();
    let mut after_products = 0;
    for (line, c) in q.lines().iter().zip(chosen) {
        after_products += line.base.minor() - c.map_or(0, |c| c.discount.on(line.base, unit).minor());
    }
    let product_count = chosen.iter().flatten().count() as u32;
    let all_stackable = chosen.iter().flatten().all(|c| c.stackable);

    let mut carts: Vec<Option<&Coupon>> = vec![None];
    carts.extend(q.coupons().iter().map(Some));
    let mut promotions: Vec<Option<&PaymentPromotion>> = vec![None];
    promotions.extend(q.payment_promotions().iter().map(Some));
    for cart in carts {
        if let Some(c) = cart {
            let valid = c.kind == CouponKind::Cart
                && c.window.live_at(now)
                && q.lines().iter().all(|l| c.applies_to(&l.product))
                && c.min_order.minor() <= after_products
                && (product_count == 0 || (c.stackable && all_stackable));
            if !valid {
                continue;
            }
        }
        let cart_discount = cart.map_or(0, |c| c.discount.on(amount(after_products), unit).minor());
        let after_coupons = after_products - cart_discount;

        let (balance, ratio, min_use, mileage_unit) = match q.mileage() {
            Some(m) => (m.balance.minor(), i64::from(m.max_ratio_percent), m.min_use.minor(), m.unit.minor()),
            None => (0, 0, 0, 1),
        };
        // floor(amount_after_coupons × max_ratio_percent / 100) rounded down to the unit
        let ratio_cap = after_coupons * ratio / 100 / mileage_unit * mileage_unit;
        let coupons = product_count + u32::from(cart.is_some());
        let mut m = 0;
        while m <= balance {
            if (m == 0 || m >= min_use) && m <= ratio_cap {
                let paid = after_coupons - m;
                for &p in &promotions {
                    if let Some(p) = p
                        && !(p.window.live_at(now) && p.min_payment.minor() <= paid)
                    {
                        continue;
                    }
                    let payment_discount = p.map_or(0, |p| p.discount.on(amount(paid), unit).minor());
                    let choice = || Choice {
                        final_price: amount(paid - payment_discount),
                        mileage: amount(m),
                        coupons,
                        product_coupons: chosen.iter().map(|c| c.map(|c| c.id.clone())).collect(),
                        cart_coupon: cart.map(|c| c.id.clone()),
                        payment_promotion: p.map(|p| p.id.clone()),
                    };
                    // `Choice`'s order; its first three fields are compared here without building
                    // the choice (cloning ids), the rest by `Choice::cmp` itself.
                    let head = (amount(paid - payment_discount), amount(m), coupons);
                    let better = match best.as_ref() {
                        None => true,
                        Some(b) => match head.cmp(&(b.final_price, b.mileage, b.coupons)) {
                            Ordering::Less => true,
                            Ordering::Greater => false,
                            Ordering::Equal => choice() < *b,
                        },
                    };
                    if better {
                        *best = Some(choice());
                    }
                }
            }
            m += mileage_unit;
        }
    }
}

fn amount(v: i64) -> Amount {
    Amount::new(v).unwrap_or(Amount::ZERO)
}
