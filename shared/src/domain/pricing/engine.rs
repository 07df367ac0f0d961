//! The exact optimum without trying every combination.
//!
//! 1. **Coupons → amounts.** `cart::outcomes` gives every distinct cart total `T` after
//!    product coupons (with its stackability class and best tie-break key); a single product is a
//!    one-line cart. Each `T` meets each usable cart coupon (or none): `A = T − cart discount`.
//! 2. **Amount → payment.** For an amount after coupons `A`, mileage and the payment promotion
//!    depend on nothing else: `Engine::pay` finds the best `(price, mileage, promotion)` with
//!    `mileage::best_mileage` per promotion (a handful of candidates each, see that
//!    module), skipping a promotion whose lower bound is already worse. It is memoised by `A`.
//! 3. **Pruning.** The final price is not monotone in `A` (thresholds, rounding), so no amount can
//!    be skipped for being larger — but it has a monotone **lower bound**
//!    `LB(A) = min over promotions q (and none) of floor_q(max(min_payment_q, paid_floor(A)))`,
//!    valid for every amount `≥ A`. Totals are visited in increasing order, and each cart option
//!    has a monotone lower bound of its `A` in `T`; once that bound is past the largest amount
//!    whose `LB` does not exceed the best price found, the option is finished (strictly worse
//!    prices only — ties are still visited, so the tie-break stays exact).
//!
//! Internally coupons and promotions are identified by their rank in id order, so comparing
//! ranks is comparing ids; the result is converted to a [`Choice`], the order the reference uses.

use std::collections::BTreeMap;

use crate::domain::coupon::Discount;
use crate::domain::money::Amount;

use super::cart::{self, Outcome, Pick};
use super::choice::Choice;
use super::mileage::{MileageRule, PayCurve, best_mileage};
use super::request::{BenefitId, ValidQuote};

/// The best combination of a quote, by the order of [`Choice`].
pub fn best_choice(quote: &ValidQuote) -> Choice {
    Engine::new(quote).run()
}

/// A live payment promotion, by rank (id order).
struct Promotion {
    id: BenefitId,
    min_payment: i64,
    curve: PayCurve,
}

/// A usable cart coupon, by rank (id order).
struct CartCoupon {
    rank: u32,
    discount: Discount,
    min_order: i64,
    stackable: bool,
}

/// What remains to pay on an amount after coupons, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Payment {
    price: i64,
    mileage: i64,
    promotion: Option<u32>,
}

struct Engine<'q> {
    quote: &'q ValidQuote,
    /// Coupon ids by rank.
    coupon_ids: Vec<&'q BenefitId>,
    rule: MileageRule,
    promotions: Vec<Promotion>,
    payments: BTreeMap<i64, Payment>,
}

/// A candidate's place in the order of [`Choice`], with ranks for ids.
type Key<'a> = (i64, i64, u32, &'a [Option<u32>], Option<u32>, Option<u32>);

struct Best {
    price: i64,
    mileage: i64,
    count: u32,
    product: Vec<Option<u32>>,
    cart: Option<u32>,
    promotion: Option<u32>,
}

impl Best {
    fn key(&self) -> Key<'_> {
        (self.price, self.mileage, self.count, &self.product, self.cart, self.promotion)
    }
}

impl<'q> Engine<'q> {
    fn new(quote: &'q ValidQuote) -> Engine<'q> {
        let mut coupon_ids: Vec<&BenefitId> = quote.coupons().iter().map(|c| &c.id).collect();
        coupon_ids.sort();
        let mut promotions: Vec<Promotion> = quote
            .payment_promotions()
            .iter()
            .filter(|p| p.window.live_at(quote.now()))
            .map(|p| Promotion {
                id: p.id.clone(),
                min_payment: p.min_payment.minor(),
                curve: PayCurve::new(Some(&p.discount), quote.rounding_unit()),
            })
            .collect();
        promotions.sort_by(|a, b| a.id.cmp(&b.id));
        Engine { quote, coupon_ids, rule: MileageRule::new(quote.mileage()), promotions, payments: BTreeMap::new() }
    }

    fn rank(&self, id: &BenefitId) -> u32 {
        // Ids are unique and all present.
        self.coupon_ids.binary_search(&id).map_or(u32::MAX, |r| r as u32)
    }

    fn run(mut self) -> Choice {
        let quote = self.quote;
        let now = quote.now();
        let unit = quote.rounding_unit();
        let lines = quote.lines();
        let bases: Vec<i64> = lines.iter().map(|l| l.base.minor()).collect();
        let picks: Vec<Vec<Pick>> = lines
            .iter()
            .map(|line| {
                quote
                    .coupons()
                    .iter()
                    .filter(|c| c.usable_on(line, now))
                    .map(|c| Pick {
                        rank: self.rank(&c.id),
                        discount: c.discount.on(line.base, unit).minor(),
                        stackable: c.stackable,
                    })
                    .collect()
            })
            .collect();
        let outcomes = cart::outcomes(&bases, &picks);

        let mut carts: Vec<CartCoupon> = quote
            .coupons()
            .iter()
            .filter(|c| c.usable_on_cart(lines, now))
            .map(|c| CartCoupon {
                rank: self.rank(&c.id),
                discount: c.discount,
                min_order: c.min_order.minor(),
                stackable: c.stackable,
            })
            .collect();
        carts.sort_by_key(|c| c.rank);

        let total_base = quote.base().minor();
        // options: None (index 0) then each cart coupon.
        let mut alive = vec![true; carts.len() + 1];
        let mut best: Option<Best> = None;
        // The largest amount whose lower bound does not exceed the best price (all, at first).
        let mut reach = total_base;
        for Outcome { total, stack, key: (count, product) } in &outcomes {
            let total = *total;
            for (option, live) in alive.iter_mut().enumerate() {
                if !*live {
                    continue;
                }
                let cart = option.checked_sub(1).map(|i| &carts[i]);
                let amount_floor = match cart {
                    None => total,
                    Some(c) => total - discount_ceiling(&c.discount, total),
                };
                if amount_floor > reach {
                    *live = false;
                    continue;
                }
                let (amount, count, cart_rank) = match cart {
                    None => (total, *count, None),
                    Some(c) if c.min_order <= total && stack.admits(c.stackable) => {
                        (total - c.discount.on(amount(total), unit).minor(), count + 1, Some(c.rank))
                    }
                    Some(_) => continue,
                };
                let pay = self.pay(amount);
                let key: Key<'_> = (pay.price, pay.mileage, count, product, cart_rank, pay.promotion);
                if best.as_ref().is_none_or(|b| key < b.key()) {
                    let improved = best.as_ref().is_none_or(|b| pay.price < b.price);
                    best = Some(Best {
                        price: pay.price,
                        mileage: pay.mileage,
                        count,
                        product: product.clone(),
                        cart: cart_rank,
                        promotion: pay.promotion,
                    });
                    if improved {
                        reach = self.reach(pay.price, total_base);
                    }
                }
            }
            if !alive.iter().any(|a| *a) {
                break;
            }
        }
        // The empty assignment with no cart coupon is always valid, so `best` is set.
        let best = best.unwrap_or(Best {
            price: total_base,
            mileage: 0,
            count: 0,
            product: vec![None; lines.len()],
            cart: None,
            promotion: None,
        });
        let id = |rank: u32| self.coupon_ids[rank as usize].clone();
        Choice {
            final_price: amount(best.price),
            mileage: amount(best.mileage),
            coupons: best.count,
            product_coupons: best.product.iter().map(|r| r.map(id)).collect(),
            cart_coupon: best.cart.map(id),
            payment_promotion: best.promotion.map(|r| self.promotions[r as usize].id.clone()),
        }
    }

    /// The best `(price, mileage, promotion)` on the amount after coupons `a`: no promotion first,
    /// then promotions in id order, replacing only on a strictly better `(price, mileage)`, so
    /// ties keep "none", then the smallest id.
    fn pay(&mut self, a: i64) -> Payment {
        if let Some(p) = self.payments.get(&a) {
            return *p;
        }
        let rule = self.rule;
        let (price, mileage) = best_mileage(a, &rule, &PayCurve::None, 0).unwrap_or((a, 0));
        let mut best = Payment { price, mileage, promotion: None };
        let paid_floor = rule.paid_floor(a);
        for (rank, promo) in self.promotions.iter().enumerate() {
            if a < promo.min_payment || promo.curve.price_floor(promo.min_payment.max(paid_floor)) > best.price {
                continue;
            }
            if let Some((price, mileage)) = best_mileage(a, &rule, &promo.curve, promo.min_payment)
                && (price, mileage) < (best.price, best.mileage)
            {
                best = Payment { price, mileage, promotion: Some(rank as u32) };
            }
        }
        self.payments.insert(a, best);
        best
    }

    /// `LB(a)`: no amount `≥ a` can end below it (module docs).
    fn lower_bound(&self, a: i64) -> i64 {
        let paid = self.rule.paid_floor(a);
        self.promotions.iter().map(|p| p.curve.price_floor(p.min_payment.max(paid))).fold(paid, i64::min)
    }

    /// The largest amount `x ≤ limit` with `LB(x) ≤ price`; amounts above it cannot reach `price`.
    fn reach(&self, price: i64, limit: i64) -> i64 {
        if self.lower_bound(limit) <= price {
            return limit;
        }
        let (mut lo, mut hi) = (0, limit); // LB(lo) ≤ price ≤ ... < LB(hi); LB(0) = 0 ≤ price
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.lower_bound(mid) <= price {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// The most a discount can take off `t`, before rounding, non-decreasing in `t`: so that
/// `t − discount_ceiling(t)` is a non-decreasing lower bound of the amount after the discount.
fn discount_ceiling(d: &Discount, t: i64) -> i64 {
    match *d {
        Discount::Fixed { fixed } => fixed.minor().min(t),
        Discount::Percent { percent, max } => {
            let raw = t * i64::from(percent) / 100;
            max.map_or(raw, |m| raw.min(m.minor()))
        }
    }
}

fn amount(v: i64) -> Amount {
    // Every amount here lies between 0 and the quote's base, itself ≤ Amount::MAX.
    Amount::new(v).unwrap_or(Amount::ZERO)
}
