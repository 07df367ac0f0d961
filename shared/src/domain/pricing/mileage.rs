//! Steps (3) and (4) for a fixed amount after coupons `A`: the best mileage for one payment
//! promotion (or none), without trying every mileage value.
//!
//! # The problem
//!
//! The allowed mileage is `m = 0` or `m ∈ {m_lo, m_lo + u, …, m_hi}`, where `u` is the mileage
//! unit, `m_lo` the smallest multiple of `u` that is `≥ max(min_use, 1)` and `m_hi` the largest
//! multiple of `u` that is `≤ min(balance, ⌊A·r/100⌋)` (spec step 3) and, with a payment
//! promotion of minimum `t`, `≤ A − t` (spec step 4: `paid = A − m ≥ t`). So the paid amounts
//! form `{A}` plus one arithmetic progression `P ∈ {A − m_hi, …, A − m_lo}` of step `u`, and we
//! want the `P` minimising `price(P) = P − D(P)`, ties to the largest `P` (the least mileage).
//!
//! # Why a few candidates are enough
//!
//! * **No promotion**: `price(P) = P`, increasing: the smallest `P` (the most mileage).
//! * **`fixed: v`**: `price(P) = max(P − v, 0)`, non-decreasing: the smallest `P`, unless that
//!   is `≤ v`; then every `P ≤ v` is free and the largest such `P` uses the least mileage.
//! * **`percent: p`, rounding unit `R`, optional cap `c`**: `D(P) = min(R·⌊P·p/(100R)⌋, c)` (the
//!   spec's floor-then-round-down equals one floor, and `R·⌊P·p/(100R)⌋ ≤ P` makes the cap by
//!   `A` idle). Mileage changes `P`, and the rounding makes `price` a **saw-tooth**, not
//!   monotone: one more unit paid can cross a rounding step and lower the price (`p = 10`,
//!   `R = 10`: `price(99) = 99`, `price(100) = 90`). Split the `P` axis into *segments* on which
//!   `k = ⌊P·p/(100R)⌋` is constant:
//!   - inside a segment `price(P) = P − R·k` (or `P − c` once `R·k ≥ c`) rises with slope 1, so
//!     only the **first progression point of each segment** can be optimal (and within a segment
//!     there are no ties);
//!   - from the first segment with `R·k ≥ c` on, `price(P) = P − c` rises everywhere: only its
//!     first progression point counts, and nothing after it;
//!   - `100·price(P) ≥ P·(100 − p)`, a non-decreasing bound, so once the next segment's first
//!     point `x` has `⌈x·(100 − p)/100⌉` above the best price found, no later point can win or tie.
//!
//!   Walking segments upward from the smallest `P` therefore finds the exact optimum. Since the
//!   best price found is `< P₀·(100 − p)/100 + R`, the walk stops within
//!   `100R/(100 − p)` of its start, i.e. after at most about `p/(100 − p) + 3` segments
//!   (≤ 102 for `p = 99`; 2 or 3 for common promotions), **whatever the balance**.
//! * **`percent: 100`**: the bound above is 0 and the walk would not stop. Here
//!   `price(P) = P mod R` below the cap's segment and `P − c` from it on: the first is the
//!   minimum of `(P₀ + j·u) mod R` over `j ∈ [0, n]`, solved exactly in O(log² R) by
//!   [`super::modular::min_mod_progression`]; the second is its first point, as above.
//!
//! Then `m = 0` (paid `A`, if `A ≥ t`) is compared with the progression's best; on a tie `m = 0`
//! wins. The reference (`super::reference`) tries every `m` and agrees on random inputs.

use crate::domain::coupon::Discount;

use super::modular::min_mod_progression;
use super::request::Mileage;

/// The mileage rule in plain integers; with no mileage the balance is 0 and only `m = 0` exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MileageRule {
    balance: i64,
    ratio_percent: i64,
    min_use: i64,
    unit: i64,
}

impl MileageRule {
    pub(crate) fn new(mileage: Option<&Mileage>) -> MileageRule {
        match mileage {
            None => MileageRule { balance: 0, ratio_percent: 0, min_use: 0, unit: 1 },
            Some(m) => MileageRule {
                balance: m.balance.minor(),
                ratio_percent: i64::from(m.max_ratio_percent),
                min_use: m.min_use.minor(),
                unit: m.unit.minor().max(1),
            },
        }
    }

    pub(crate) fn unit(&self) -> i64 {
        self.unit
    }

    /// The most mileage usable on `a`: `min(balance, ⌊a·r/100⌋)` rounded down to the unit
    /// (`min_use` aside). `a ≤ Amount::MAX = 1e15`, so `a·100` fits in i64.
    pub(crate) fn cap(&self, a: i64) -> i64 {
        let raw = self.balance.min(a * self.ratio_percent / 100);
        raw - raw % self.unit
    }

    /// The least positive mileage allowed: the first multiple of the unit that is `≥ min_use`.
    pub(crate) fn smallest_positive(&self) -> i64 {
        let need = self.min_use.max(1);
        (need + self.unit - 1) / self.unit * self.unit
    }

    /// A lower bound of the amount paid after mileage, `A − m`, valid for every amount `≥ a`
    /// and non-decreasing in `a` (each unit of `a` adds at most one to `⌊a·r/100⌋`).
    pub(crate) fn paid_floor(&self, a: i64) -> i64 {
        a - self.balance.min(a * self.ratio_percent / 100)
    }
}

/// What a payment promotion (or none) leaves to pay on a paid amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PayCurve {
    None,
    Fixed(i64),
    Percent { percent: i64, cap: Option<i64>, rounding_unit: i64 },
}

impl PayCurve {
    pub(crate) fn new(discount: Option<&Discount>, rounding_unit: i64) -> PayCurve {
        match discount {
            None => PayCurve::None,
            Some(Discount::Fixed { fixed }) => PayCurve::Fixed(fixed.minor()),
            Some(Discount::Percent { percent, max }) => PayCurve::Percent {
                percent: i64::from(*percent),
                cap: max.map(|m| m.minor()),
                rounding_unit: rounding_unit.max(1),
            },
        }
    }

    /// The discount on `paid`: the spec's formula, as `Discount::on` computes it.
    pub(crate) fn discount(&self, paid: i64) -> i64 {
        match *self {
            PayCurve::None => 0,
            PayCurve::Fixed(v) => v.min(paid),
            PayCurve::Percent { percent, cap, rounding_unit } => {
                let raw = paid * percent / 100;
                let rounded = raw - raw % rounding_unit;
                cap.map_or(rounded, |c| rounded.min(c)).min(paid)
            }
        }
    }

    /// The price left: `paid − discount(paid)`.
    pub(crate) fn price(&self, paid: i64) -> i64 {
        paid - self.discount(paid)
    }

    /// A lower bound of `price(P)` for every `P ≥ paid`, non-decreasing in `paid`: the discount
    /// before rounding (`⌊P·p/100⌋` grows by at most one per unit of `P`).
    pub(crate) fn price_floor(&self, paid: i64) -> i64 {
        match *self {
            PayCurve::None => paid,
            PayCurve::Fixed(v) => (paid - v).max(0),
            PayCurve::Percent { percent, cap, .. } => {
                let raw = paid * percent / 100;
                paid - cap.map_or(raw, |c| raw.min(c))
            }
        }
    }

    /// `(price, paid)`: the least price over `paid ∈ {lo, lo + step, …, hi}` (`hi − lo` a
    /// multiple of `step ≥ 1`, `0 ≤ lo ≤ hi`), ties to the largest `paid`. See the module docs.
    pub(crate) fn best_on_progression(&self, lo: i64, step: i64, hi: i64) -> (i64, i64) {
        debug_assert!(0 <= lo && lo <= hi && step >= 1 && (hi - lo) % step == 0);
        match *self {
            PayCurve::None => (lo, lo),
            PayCurve::Fixed(v) if lo > v => (lo - v, lo),
            PayCurve::Fixed(v) => (0, lo + (v.min(hi) - lo) / step * step),
            PayCurve::Percent { percent, cap, rounding_unit } if percent >= 100 => {
                full_percent(lo, step, hi, cap, rounding_unit)
            }
            PayCurve::Percent { percent, cap, rounding_unit } => {
                percent_walk(lo, step, hi, percent, cap, rounding_unit)
            }
        }
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    debug_assert!(a >= 0 && b > 0);
    (a + b - 1) / b
}

fn narrow(v: i128) -> i64 {
    // Every value here lies between 0 and `hi` ≤ `Amount::MAX`.
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The segment walk for `1 ≤ p ≤ 99` (module docs).
fn percent_walk(lo: i64, step: i64, hi: i64, percent: i64, cap: Option<i64>, unit: i64) -> (i64, i64) {
    let (lo, step, hi, p, r) =
        (i128::from(lo), i128::from(step), i128::from(hi), i128::from(percent), i128::from(unit));
    if p <= 0 {
        return (narrow(lo), narrow(lo));
    }
    let n = 100 * r; // P is in segment k while k·n ≤ P·p < (k+1)·n
    let mut best = (i128::MAX, lo);
    let mut x = lo;
    loop {
        let k = x * p / n;
        let d = r * k;
        if let Some(c) = cap.map(i128::from)
            && d >= c
        {
            // Capped from here on: price = P − c rises; x is the last candidate.
            if x - c <= best.0 {
                best = (x - c, x);
            }
            break;
        }
        if x - d <= best.0 {
            best = (x - d, x);
        }
        let next_segment = ceil_div((k + 1) * n, p);
        let next = lo + ceil_div(next_segment - lo, step) * step;
        if next > hi || ceil_div(next * (100 - p), 100) > best.0 {
            break;
        }
        x = next;
    }
    (narrow(best.0), narrow(best.1))
}

/// `p = 100`: `price(P) = P mod R` below the cap's first segment, `P − c` from it on.
fn full_percent(lo: i64, step: i64, hi: i64, cap: Option<i64>, unit: i64) -> (i64, i64) {
    let (lo, step, hi, r) = (i128::from(lo), i128::from(step), i128::from(hi), i128::from(unit));
    let capped_from = cap.map(|c| ceil_div(i128::from(c), r) * r);
    let mut best: Option<(i128, i128)> = None;
    if capped_from.is_none_or(|from| lo < from) {
        let last = capped_from.map_or(hi, |from| hi.min(from - 1));
        let (v, j) = min_mod_progression(lo % r, step % r, r, (last - lo) / step);
        best = Some((v, lo + j * step));
    }
    if let (Some(from), Some(c)) = (capped_from, cap.map(i128::from)) {
        let x = lo + ceil_div((from - lo).max(0), step) * step;
        if x <= hi && best.is_none_or(|(v, _)| x - c <= v) {
            best = Some((x - c, x));
        }
    }
    let (v, x) = best.unwrap_or((lo, lo));
    (narrow(v), narrow(x))
}

/// `(price, mileage)`: the best mileage on the amount after coupons `a` for one payment curve
/// whose promotion needs `paid ≥ threshold`; `None` when even `m = 0` misses the threshold.
/// Ties go to less mileage.
pub(crate) fn best_mileage(a: i64, rule: &MileageRule, curve: &PayCurve, threshold: i64) -> Option<(i64, i64)> {
    if a < threshold {
        return None;
    }
    let mut best = (curve.price(a), 0);
    let unit = rule.unit();
    let m_lo = rule.smallest_positive();
    let room = a - threshold;
    let m_hi = rule.cap(a).min(room - room % unit);
    if m_lo <= m_hi {
        let (price, paid) = curve.best_on_progression(a - m_hi, unit, a - m_lo);
        if price < best.0 {
            best = (price, a - paid);
        }
    }
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Amount;
    use proptest::prelude::*;

    fn rule(balance: i64, ratio: u8, min_use: i64, unit: i64) -> MileageRule {
        MileageRule::new(Some(&Mileage {
            balance: Amount::new(balance).unwrap(),
            max_ratio_percent: ratio,
            min_use: Amount::new(min_use).unwrap(),
            unit: Amount::new(unit).unwrap(),
        }))
    }

    /// Every allowed m, literally.
    fn brute(a: i64, rule: &MileageRule, curve: &PayCurve, threshold: i64) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        let mut m = 0;
        while m <= rule.balance {
            let allowed = (m == 0 || m >= rule.min_use) && m <= rule.cap(a) && a - m >= threshold;
            if allowed {
                let cand = (curve.price(a - m), m);
                if best.is_none_or(|b| cand < b) {
                    best = Some(cand);
                }
            }
            m += rule.unit;
        }
        best
    }

    fn curve() -> impl Strategy<Value = PayCurve> {
        prop_oneof![
            Just(PayCurve::None),
            (1i64..3000).prop_map(PayCurve::Fixed),
            (1i64..=100, proptest::option::of(0i64..3000), prop_oneof![Just(1i64), Just(10), Just(7), 1i64..500])
                .prop_map(|(percent, cap, rounding_unit)| PayCurve::Percent { percent, cap, rounding_unit }),
            // close to and at 100 %, where the walk is longest or replaced
            (95i64..=100, proptest::option::of(0i64..3000), 1i64..300)
                .prop_map(|(percent, cap, rounding_unit)| PayCurve::Percent { percent, cap, rounding_unit }),
        ]
    }

    #[test]
    fn the_curve_is_the_spec_formula() {
        for (d, unit) in [
            (Discount::Percent { percent: 15, max: Some(Amount::new(7000).unwrap()) }, 10),
            (Discount::Percent { percent: 33, max: None }, 7),
            (Discount::Percent { percent: 100, max: None }, 100),
            (Discount::Fixed { fixed: Amount::new(450).unwrap() }, 10),
        ] {
            let c = PayCurve::new(Some(&d), unit);
            for paid in 0..5000 {
                assert_eq!(c.discount(paid), d.on(Amount::new(paid).unwrap(), unit).minor(), "{d:?} on {paid}");
            }
        }
    }

    #[test]
    fn rounding_makes_a_larger_payment_cheaper() {
        // 10 % rounded to 10: paying 100 costs 90, paying 99 costs 99.
        let c = PayCurve::Percent { percent: 10, cap: None, rounding_unit: 10 };
        assert_eq!((c.price(99), c.price(100)), (99, 90));
        // Balance 10, unit 1, no minimum: on A = 100 the best is no mileage at all.
        assert_eq!(best_mileage(100, &rule(10, 100, 0, 1), &c, 0), Some((90, 0)));
        // On A = 109 the best is 9 mileage (paid 100 → 90); 10 mileage (paid 99) costs 99.
        assert_eq!(best_mileage(109, &rule(10, 100, 0, 1), &c, 0), Some((90, 9)));
    }

    #[test]
    fn the_threshold_limits_mileage() {
        // 10 % card from 40,000: on 41,000 with 3,000 mileage (unit 10, min 1,000) use only 1,000.
        let c = PayCurve::Percent { percent: 10, cap: Some(5000), rounding_unit: 10 };
        assert_eq!(best_mileage(41_000, &rule(3000, 100, 1000, 10), &c, 40_000), Some((36_000, 1000)));
        // With min_use 1,500 the card still needs paid ≥ 40,000: no positive mileage fits.
        assert_eq!(best_mileage(41_000, &rule(3000, 100, 1500, 10), &c, 40_000), Some((36_900, 0)));
        assert_eq!(best_mileage(39_999, &rule(3000, 100, 0, 10), &c, 40_000), None);
    }

    #[test]
    fn a_full_percent_promotion_uses_the_modular_minimum() {
        // price = paid mod 100; A = 1,234, up to 1,000 mileage in units of 30: 1234 − 30·j ≡ 4 (mod 100)
        // needs 30·j ≡ 30 (mod 100), j = 1, 11, 21, 31 → least mileage is 30.
        let c = PayCurve::Percent { percent: 100, cap: None, rounding_unit: 100 };
        assert_eq!(best_mileage(1234, &rule(1000, 100, 0, 30), &c, 0), Some((4, 30)));
    }

    #[test]
    fn a_tie_between_the_capped_and_the_rounded_region_keeps_the_larger_payment() {
        // 100 % rounded to 100, capped at 95: price(5) = 5 mod 100 = 5 and price(100) = 100 − 95 = 5.
        let c = PayCurve::Percent { percent: 100, cap: Some(95), rounding_unit: 100 };
        assert_eq!((c.price(5), c.price(100)), (5, 5));
        assert_eq!(c.best_on_progression(5, 95, 100), (5, 100));
        // 50 % rounded to 10, capped at 20: price(39) = 39 − 10 = 29 and price(49) = 49 − 20 = 29.
        let c = PayCurve::Percent { percent: 50, cap: Some(20), rounding_unit: 10 };
        assert_eq!((c.price(39), c.price(49)), (29, 29));
        assert_eq!(c.best_on_progression(39, 10, 49), (29, 49));
    }

    /// Small numbers, so that equal prices at different payments (ties) are common.
    fn tiny_curve() -> impl Strategy<Value = PayCurve> {
        prop_oneof![
            (1i64..60).prop_map(PayCurve::Fixed),
            (1i64..=100, proptest::option::of(0i64..80), 1i64..40)
                .prop_map(|(percent, cap, rounding_unit)| PayCurve::Percent { percent, cap, rounding_unit }),
            (90i64..=100, proptest::option::of(0i64..80), 1i64..40)
                .prop_map(|(percent, cap, rounding_unit)| PayCurve::Percent { percent, cap, rounding_unit }),
        ]
    }

    /// `best_on_progression` by trying every point (the last of equal prices wins).
    fn enumerate(curve: &PayCurve, lo: i64, step: i64, count: i64) -> (i64, i64) {
        let mut best = (i64::MAX, 0);
        for j in 0..=count {
            let p = lo + j * step;
            if curve.price(p) <= best.0 {
                best = (curve.price(p), p);
            }
        }
        best
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(6000))]

        #[test]
        fn best_on_progression_breaks_ties_like_enumeration(
            lo in 0i64..300, step in 1i64..60, count in 0i64..40, curve in tiny_curve(),
        ) {
            prop_assert_eq!(curve.best_on_progression(lo, step, lo + count * step), enumerate(&curve, lo, step, count));
        }

        #[test]
        fn best_mileage_matches_trying_every_m(
            a in 0i64..20_000,
            balance in 0i64..6000,
            ratio in 0u8..=100,
            min_use in 0i64..3000,
            unit in prop_oneof![Just(1i64), Just(10), Just(100), 1i64..700],
            threshold in prop_oneof![Just(0i64), 0i64..20_000],
            curve in curve(),
        ) {
            let r = rule(balance, ratio, min_use, unit);
            prop_assert_eq!(best_mileage(a, &r, &curve, threshold), brute(a, &r, &curve, threshold));
        }

        #[test]
        fn best_on_progression_matches_enumeration(
            lo in 0i64..50_000, step in 1i64..400, count in 0i64..400, curve in curve(),
        ) {
            prop_assert_eq!(curve.best_on_progression(lo, step, lo + count * step), enumerate(&curve, lo, step, count));
        }

        #[test]
        fn price_floor_is_a_monotone_lower_bound(paid in 0i64..100_000, delta in 0i64..5000, curve in curve()) {
            prop_assert!(curve.price_floor(paid) <= curve.price(paid + delta));
            prop_assert!(curve.price_floor(paid) <= curve.price_floor(paid + delta));
        }
    }
}
