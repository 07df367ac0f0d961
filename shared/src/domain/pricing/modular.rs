//! Minimum of `(a + b·j) mod m` over a range of `j`, in O(log² m) steps instead of one step per `j`.
//!
//! The mileage optimiser needs it for a 100 % payment promotion: there the price left after the
//! promotion is `paid mod rounding_unit`, and mileage moves `paid` in steps of the mileage unit,
//! so the best mileage is the `j` minimising `(paid₀ − j·unit) mod rounding_unit`. Enumerating
//! every `j` would cost one step per mileage unit of the balance.
//!
//! Everything is `i128`: `m·y` below reaches `m²`, and `m` may be as large as an amount.

/// The smallest `x ≥ 0` with `l ≤ (a·x) mod m ≤ r`, if there is one.
///
/// Requires `m ≥ 1`, `0 ≤ a < m` and `0 ≤ l ≤ r < m`. Euclid-like recursion, depth O(log m):
///
/// * `l = 0`: `x = 0`.
/// * `2a > m`: mirror. For `l ≥ 1`, `(a·x) mod m ∈ [l, r]` ⇔ `((m−a)·x) mod m ∈ [m−r, m−l]`,
///   and `m − a < m/2`.
/// * No wrap: the smallest `x` with `a·x ≥ l` is `⌈l/a⌉`; if `a·x ≤ r` (< m) it is the answer.
/// * Otherwise `[l, r]` holds no multiple of `a`, so `1 ≤ l mod a ≤ r mod a`. A solution is
///   `a·x − m·y ∈ [l, r]` with `y = ⌊a·x/m⌋`; `x` grows with `y`, so take the smallest `y` for
///   which `[l + m·y, r + m·y]` holds a multiple of `a`, which is when
///   `z = (−m·y) mod a ∈ [l mod a, r mod a]`: the same problem with `(−m mod a, a)`, `a ≤ m/2`.
///   Then `x = ⌈(l + m·y)/a⌉`.
pub(crate) fn first_in_range(a: i128, m: i128, l: i128, r: i128) -> Option<i128> {
    debug_assert!(m >= 1 && (0..m).contains(&a) && 0 <= l && l <= r && r < m);
    if l == 0 {
        return Some(0);
    }
    if a == 0 {
        return None;
    }
    if 2 * a > m {
        return first_in_range(m - a, m, m - r, m - l);
    }
    let x = (l + a - 1) / a;
    if a * x <= r {
        return Some(x);
    }
    let y = first_in_range((a - m % a) % a, a, l % a, r % a)?;
    Some((l + m * y + a - 1) / a)
}

/// `(v, j)`: `v` the minimum of `(a + b·j) mod m` over `0 ≤ j ≤ n`, and `j` the **largest**
/// index attaining it (the engine prefers less mileage on ties, which is the larger `j`).
///
/// Requires `m ≥ 1`, `a, b ≥ 0`, `n ≥ 0`.
///
/// The values repeat with period `T = m / gcd(b, m)` and one period takes every value
/// `≡ a (mod g)` in `[0, m)`; so with `n ≥ T − 1` the minimum is `a mod g`. With a shorter
/// range, binary search the smallest `v` for which some `j ≤ n` has a value in `[0, v]`
/// ([`first_in_range`] on the one or two intervals of `b·j mod m` that map to `[0, v]`).
/// The indices attaining `v` are `j₀ + k·T`; the largest one `≤ n` follows.
pub(crate) fn min_mod_progression(a: i128, b: i128, m: i128, n: i128) -> (i128, i128) {
    debug_assert!(m >= 1 && a >= 0 && b >= 0 && n >= 0);
    let (a, b) = (a % m, b % m);
    if m == 1 || b == 0 {
        return (a, n);
    }
    let g = gcd(b, m);
    let period = m / g;
    let first_at_most = |v: i128| -> Option<i128> {
        // (a + b·j) mod m ≤ v  ⇔  b·j mod m ∈ [lo, lo + v] (cyclically), lo = −a mod m.
        let lo = (m - a) % m;
        if lo + v < m {
            first_in_range(b, m, lo, lo + v)
        } else {
            let upper = first_in_range(b, m, lo, m - 1);
            let lower = first_in_range(b, m, 0, lo + v - m);
            match (upper, lower) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            }
        }
    };
    let v = if n >= period - 1 {
        a % g
    } else {
        let (mut lo, mut hi) = (0, m - 1); // hi always feasible (j = 0 has a value ≤ m − 1)
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if first_at_most(mid).is_some_and(|j| j <= n) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    };
    let target = (v - a).rem_euclid(m);
    // v is attained within [0, n], so the search finds j₀ ≤ n.
    let j0 = first_in_range(b, m, target, target).unwrap_or(0);
    (v, j0 + (n - j0) / period * period)
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn first_brute(a: i128, m: i128, l: i128, r: i128) -> Option<i128> {
        // (a·x) mod m is periodic with period ≤ m: looking at x < m is enough.
        (0..m).find(|x| (l..=r).contains(&(a * x % m)))
    }

    fn min_brute(a: i128, b: i128, m: i128, n: i128) -> (i128, i128) {
        let mut best = (i128::MAX, 0);
        for j in 0..=n {
            let v = (a + b * j) % m;
            if v <= best.0 {
                best = (v, j);
            }
        }
        best
    }

    #[test]
    fn first_in_range_examples() {
        // 7·x mod 10: 0 7 4 1 8 5 2 9 6 3
        assert_eq!(first_in_range(7, 10, 1, 1), Some(3));
        assert_eq!(first_in_range(7, 10, 2, 3), Some(6));
        assert_eq!(first_in_range(7, 10, 0, 0), Some(0));
        // 4·x mod 10 is always even
        assert_eq!(first_in_range(4, 10, 3, 3), None);
        assert_eq!(first_in_range(0, 10, 3, 9), None);
    }

    #[test]
    fn min_mod_progression_examples() {
        // 3 + 7j mod 10 for j = 0..=3: 3 0 7 4 → min 0 at j = 1
        assert_eq!(min_mod_progression(3, 7, 10, 3), (0, 1));
        // over a full period the minimum repeats; the largest j wins: j = 1, 11, 21 → 21
        assert_eq!(min_mod_progression(3, 7, 10, 25), (0, 21));
        // even steps from an odd start never reach 0
        assert_eq!(min_mod_progression(5, 4, 10, 100), (1, 99));
        assert_eq!(min_mod_progression(5, 0, 10, 4), (5, 4));
        assert_eq!(min_mod_progression(5, 3, 1, 4), (0, 4));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn first_in_range_matches_brute_force(m in 1i128..200, a in 0i128..200, l in 0i128..200, w in 0i128..200) {
            let a = a % m;
            let l = l % m;
            let r = (l + w).min(m - 1);
            prop_assert_eq!(first_in_range(a, m, l, r), first_brute(a, m, l, r));
        }

        #[test]
        fn min_mod_progression_matches_brute_force(m in 1i128..300, a in 0i128..1000, b in 0i128..1000, n in 0i128..700) {
            prop_assert_eq!(min_mod_progression(a, b, m, n), min_brute(a % m, b % m, m, n));
        }

        #[test]
        fn min_mod_progression_large_moduli(m in 1i128..1_000_000_000_000, a in 0i128..1_000_000_000_000, b in 0i128..1_000_000_000_000, n in 0i128..300) {
            prop_assert_eq!(min_mod_progression(a, b, m, n), min_brute(a % m, b % m, m, n));
        }
    }
}
