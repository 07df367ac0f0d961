//! Step (1) for a whole cart: every distinct outcome of assigning product coupons to lines.
//!
//! What happens after step (1) depends on the assignment only through
//! * the cart's total after product coupons `T` (cart coupon threshold and discount, mileage and
//!   payment all read only this amount), and
//! * its [`Stack`] class (whether a cart coupon may join), and
//! * its tie-break key `(coupons used, coupon of each line)`.
//!
//! So for each `(T, class)` only the assignment with the smallest key matters. It is **not**
//! enough to keep the assignment with the largest total discount: a smaller discount can keep the
//! total above a cart coupon's `min_order` or the payment above a card's `min_payment`, and the
//! rounding of percentages and mileage makes even the final price of a larger total sometimes
//! lower. Keeping every distinct `T` is exact; the engine then prunes by a lower bound.
//!
//! The assignment is a dynamic programme over the lines. Its state is the running total, the
//! class and the coupons already used **that a later line could still use** (a coupon usable on
//! one line only, or used on the last line that can take it, needs no remembering). Two partial
//! assignments with the same state have the same completions, and the better prefix key gives the
//! better full key (keys have one entry per line, so comparing `(count₁ + c, ids₁ ++ s)` with
//! `(count₂ + c, ids₂ ++ s)` is comparing the prefixes): keep the better one. In the worst case
//! the states are the assignments themselves, at most [`super::request::MAX_ASSIGNMENTS`].

use std::collections::BTreeMap;

/// Which cart coupons may join the chosen product coupons (spec: "a product coupon and a cart
/// coupon may be combined only when both are stackable").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Stack {
    /// No product coupon: any cart coupon may join.
    Free,
    /// Only stackable product coupons: stackable cart coupons may join.
    Stackable,
    /// Some product coupon is not stackable: no cart coupon may join.
    Closed,
}

impl Stack {
    fn with(self, stackable: bool) -> Stack {
        match (self, stackable) {
            (Stack::Closed, _) | (_, false) => Stack::Closed,
            _ => Stack::Stackable,
        }
    }

    /// Whether a cart coupon with this stackability may join.
    pub(crate) fn admits(self, cart_coupon_stackable: bool) -> bool {
        match self {
            Stack::Free => true,
            Stack::Stackable => cart_coupon_stackable,
            Stack::Closed => false,
        }
    }
}

/// A product coupon usable on a line: its rank (position by id) and its discount on that line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pick {
    pub rank: u32,
    pub discount: i64,
    pub stackable: bool,
}

/// An assignment's tie-break key: coupons used, then each line's coupon rank (`None` first).
pub(crate) type AssignmentKey = (u32, Vec<Option<u32>>);

/// One distinct outcome of step (1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The cart's total after product coupons.
    pub total: i64,
    pub stack: Stack,
    pub key: AssignmentKey,
}

/// Every `(total, class)` reachable by assigning at most one coupon of `picks[i]` to line `i`,
/// each coupon at most once, with the best key of each; sorted by total, then class. Outcomes
/// dominated by a more permissive class with a key at least as good at the same total are dropped.
pub(crate) fn outcomes(bases: &[i64], picks: &[Vec<Pick>]) -> Vec<Outcome> {
    debug_assert_eq!(bases.len(), picks.len());
    // still_usable[i]: ranks usable on some line after i.
    let mut still_usable: Vec<Vec<u32>> = vec![Vec::new(); picks.len()];
    for i in (0..picks.len().saturating_sub(1)).rev() {
        let mut later: Vec<u32> = still_usable[i + 1].clone();
        later.extend(picks[i + 1].iter().map(|p| p.rank));
        later.sort_unstable();
        later.dedup();
        still_usable[i] = later;
    }

    type State = (i64, Stack, Vec<u32>);
    let mut states: BTreeMap<State, AssignmentKey> = BTreeMap::new();
    states.insert((0, Stack::Free, Vec::new()), (0, Vec::new()));
    for (i, (&base, line_picks)) in bases.iter().zip(picks).enumerate() {
        let keep = &still_usable[i];
        let mut next: BTreeMap<State, AssignmentKey> = BTreeMap::new();
        let mut offer = |state: State, key: AssignmentKey| match next.get(&state) {
            Some(existing) if *existing <= key => {}
            _ => {
                next.insert(state, key);
            }
        };
        for ((total, stack, used), (count, ids)) in &states {
            let mut ids_none = ids.clone();
            ids_none.push(None);
            let used_none: Vec<u32> = used.iter().copied().filter(|r| keep.binary_search(r).is_ok()).collect();
            offer((total + base, *stack, used_none), (*count, ids_none));
            for pick in line_picks {
                if used.binary_search(&pick.rank).is_ok() {
                    continue;
                }
                let mut used_now: Vec<u32> = used.iter().copied().filter(|r| keep.binary_search(r).is_ok()).collect();
                if keep.binary_search(&pick.rank).is_ok() {
                    let at = used_now.partition_point(|r| *r < pick.rank);
                    used_now.insert(at, pick.rank);
                }
                let mut ids_pick = ids.clone();
                ids_pick.push(Some(pick.rank));
                offer((total + base - pick.discount, stack.with(pick.stackable), used_now), (count + 1, ids_pick));
            }
        }
        states = next;
    }

    // After the last line nothing is remembered: states are (total, class) → key, in order.
    let mut out: Vec<Outcome> = Vec::with_capacity(states.len());
    for ((total, stack, _), key) in states {
        // Same total, more permissive class already kept (classes come in order Free,
        // Stackable, Closed) with a key at least as good: this one can never be chosen.
        let dominated = out.iter().rev().take_while(|o| o.total == total).any(|o| o.key <= key);
        if !dominated {
            out.push(Outcome { total, stack, key });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(rank: u32, discount: i64, stackable: bool) -> Pick {
        Pick { rank, discount, stackable }
    }

    #[test]
    fn a_coupon_is_used_once_across_lines() {
        // One coupon (rank 0, 500 off) usable on both lines: never 1,000 off in total. Which line
        // takes it is decided by the key: "none" first in line order, so the second line.
        let out = outcomes(&[1000, 1000], &[vec![pick(0, 500, true)], vec![pick(0, 500, true)]]);
        let totals: Vec<(i64, Stack, AssignmentKey)> = out.into_iter().map(|o| (o.total, o.stack, o.key)).collect();
        assert_eq!(
            totals,
            vec![(1500, Stack::Stackable, (1, vec![None, Some(0)])), (2000, Stack::Free, (0, vec![None, None]))]
        );
    }

    #[test]
    fn equal_totals_keep_the_smallest_key_per_class() {
        // Ranks 0 (not stackable) and 1 (stackable) take 100 off line 0; rank 2 takes 100 off line 1.
        let out = outcomes(&[1000, 1000], &[vec![pick(0, 100, false), pick(1, 100, true)], vec![pick(2, 100, true)]]);
        let at = |total: i64| -> Vec<(Stack, AssignmentKey)> {
            out.iter().filter(|o| o.total == total).map(|o| (o.stack, o.key.clone())).collect()
        };
        // 1,900, one coupon: [0, –] Closed, [1, –] and [–, 2] Stackable. The best Stackable key is
        // [–, 2], which also beats [0, –]: Closed is dominated (a more permissive class, better key).
        assert_eq!(at(1900), vec![(Stack::Stackable, (1, vec![None, Some(2)]))]);
        // 1,800, two coupons: Stackable needs 1 on line 0 ([1, 2]); Closed has the smaller key [0, 2]
        // but admits no cart coupon: both can be the optimum, both stay.
        assert_eq!(
            at(1800),
            vec![(Stack::Stackable, (2, vec![Some(1), Some(2)])), (Stack::Closed, (2, vec![Some(0), Some(2)]))]
        );
    }

    #[test]
    fn a_less_permissive_class_with_a_worse_key_is_dropped() {
        // Rank 0 (stackable) and rank 1 (not) both take 100 off the only line.
        let out = outcomes(&[1000], &[vec![pick(0, 100, true), pick(1, 100, false)]]);
        let keys: Vec<(i64, Stack)> = out.iter().map(|o| (o.total, o.stack)).collect();
        assert_eq!(keys, vec![(900, Stack::Stackable), (1000, Stack::Free)]);
    }
}
