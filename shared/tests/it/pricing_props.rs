//! The engine against the brute-force reference on random quotes: the same final price **and the
//! same combination** (the tie-break is a total order, so the optimum is unique), and the same
//! printed answer.
//!
//! The generators favour the cases where shortcuts go wrong: windows at their exact boundaries,
//! thresholds near the amounts, equal discounts (ties), percentages with caps and coarse
//! rounding, 100 % promotions, mileage minimums above the allowed maximum, coupons usable on
//! several cart lines. Amounts are small so that the reference, which tries every mileage value,
//! stays quick in a debug build.

use promo_shared::domain::pricing;

use promo_shared::domain::pricing::Answer;

use promo_shared::domain::pricing::BreakdownKind;

use promo_shared::domain::pricing::ValidQuote;

use promo_shared::domain::pricing::engine;

use promo_shared::domain::pricing::reference;
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: &str = "2026-11-22T12:00:00Z";

/// Windows relative to `now`, including the boundaries (starts now: live; ends now: not live).
fn window() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop_oneof![
        6 => Just(("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")),
        1 => Just((NOW, "2026-12-01T00:00:00Z")),
        1 => Just(("2026-11-01T00:00:00Z", NOW)),
        1 => Just(("2026-11-22T12:00:01Z", "2026-12-01T00:00:00Z")),
        1 => Just(("2026-11-01T00:00:00Z", "2026-11-22T12:00:01Z")),
        1 => Just(("2026-10-01T00:00:00Z", "2026-10-31T00:00:00Z")),
    ]
}

fn discount(fixed_max: i64, cap_max: i64) -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => (1..fixed_max).prop_map(|v| json!({"fixed": v})),
        1 => prop::sample::select(vec![500i64, 1000, 2000]).prop_map(|v| json!({"fixed": v})),
        2 => (1i64..=100).prop_map(|p| json!({"percent": p})),
        2 => (1i64..=100, 0..cap_max).prop_map(|(p, m)| json!({"percent": p, "max": m})),
        1 => prop::sample::select(vec![5i64, 10, 20, 50]).prop_map(|p| json!({"percent": p})),
        1 => (90i64..=100, prop::option::of(0..cap_max)).prop_map(|(p, m)| match m {
            Some(m) => json!({"percent": p, "max": m}),
            None => json!({"percent": p}),
        }),
    ]
}

fn targets() -> impl Strategy<Value = Value> {
    let pick = |universe: &'static [&'static str]| prop::sample::subsequence(universe.to_vec(), 0..=2);
    prop_oneof![
        3 => Just(json!({})),
        2 => (pick(&["p-1", "p-2", "p-3"]), pick(&["b-1", "b-2"]), pick(&["c-1", "c-2"]))
            .prop_map(|(p, b, c)| json!({"products": p, "brands": b, "categories": c})),
    ]
}

fn coupon(max_amount: i64) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["a", "b", "c", "x", "y"]),
        prop_oneof![Just("product"), Just("cart")],
        discount(max_amount / 4, max_amount / 4),
        prop_oneof![2 => Just(0i64), 1 => 0..max_amount],
        window(),
        targets(),
        prop_oneof![4 => Just(json!({})), 1 => targets()],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(name, kind, discount, min_order, (starts, ends), applies, excludes, stackable, owned)| {
            json!({"id": name, "kind": kind, "discount": discount, "min_order": min_order,
                "starts_at": starts, "ends_at": ends, "applies_to": applies, "excludes": excludes,
                "stackable": stackable, "owned": owned})
        })
}

fn promotion(max_amount: i64) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["card-a", "card-b", "pay-z"]),
        discount(max_amount / 4, max_amount / 4),
        prop_oneof![1 => Just(0i64), 2 => 0..max_amount],
        window(),
    )
        .prop_map(|(name, discount, min_payment, (starts, ends))| {
            json!({"id": name, "method": "card:x", "discount": discount, "min_payment": min_payment,
                "starts_at": starts, "ends_at": ends})
        })
}

/// Mileage with few values for the reference to try: `balance / unit` ≤ `max_steps`.
fn mileage(max_steps: i64) -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        4 => (prop::sample::select(vec![1i64, 7, 10, 50, 100]), 0..=max_steps, 0u8..=100, prop_oneof![Just(0i64), 0i64..3000])
            .prop_map(|(unit, steps, ratio, min_use)| {
                json!({"balance": unit * steps + (steps % 3), "max_ratio_percent": ratio, "min_use": min_use, "unit": unit})
            }),
    ]
}

fn product(max_price: i64) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["p-1", "p-2", "p-3"]),
        prop::option::of(prop::sample::select(vec!["b-1", "b-2"])),
        prop::option::of(prop::sample::select(vec!["c-1", "c-2"])),
        1..max_price,
    )
        .prop_map(|(id, brand, category, sale)| {
            let mut p = json!({"id": id, "sale_price": sale, "list_price": sale + sale / 10});
            if let Some(b) = brand {
                p["brand"] = json!(b);
            }
            if let Some(c) = category {
                p["category"] = json!(c);
            }
            p
        })
}

/// Coupons with unique ids: the generated names get the index as a suffix, so the id order is
/// random with respect to the request order.
fn uniquely_named(mut coupons: Vec<Value>) -> Vec<Value> {
    for (i, c) in coupons.iter_mut().enumerate() {
        c["id"] = json!(format!("{}{}", c["id"].as_str().unwrap(), i));
    }
    coupons
}

fn single_quote() -> impl Strategy<Value = Value> {
    single_quote_with(40_000, vec![1, 5, 10, 100])
}

fn single_quote_with(max_price: i64, roundings: Vec<i64>) -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("KRW"), Just("USD")],
        prop::sample::select(roundings),
        product(max_price),
        1i64..=3,
        prop::collection::vec(coupon(max_price), 0..=5),
        prop::collection::vec(promotion(max_price * 3 / 2), 0..=3),
        mileage(300),
    )
        .prop_map(|(currency, rounding, product, quantity, coupons, promotions, mileage)| {
            json!({"currency": currency, "now": NOW, "rounding_unit": rounding, "quantity": quantity,
                "product": product, "coupons": uniquely_named(coupons),
                "payment_promotions": uniquely_named(promotions), "mileage": mileage})
        })
}

fn cart_quote() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![1i64, 10, 100]),
        prop::collection::vec((product(20_000), 1i64..=2), 2..=3),
        prop::collection::vec(coupon(30_000), 0..=5),
        prop::collection::vec(promotion(50_000), 0..=2),
        mileage(60),
    )
        .prop_map(|(rounding, lines, coupons, promotions, mileage)| {
            let lines: Vec<Value> = lines.into_iter().map(|(p, q)| json!({"product": p, "quantity": q})).collect();
            json!({"currency": "KRW", "now": NOW, "rounding_unit": rounding, "lines": lines,
                "coupons": uniquely_named(coupons), "payment_promotions": uniquely_named(promotions),
                "mileage": mileage})
        })
}

/// The answer adds up: base − each discount − mileage = final price, and it survives JSON.
fn check_answer(a: &Answer) {
    let amount =
        |kind: BreakdownKind| -> i64 { a.breakdown.iter().filter(|l| l.kind == kind).map(|l| l.amount.minor()).sum() };
    let discounts = amount(BreakdownKind::ProductCoupon)
        + amount(BreakdownKind::CartCoupon)
        + amount(BreakdownKind::Mileage)
        + amount(BreakdownKind::PaymentPromotion);
    assert_eq!(amount(BreakdownKind::Base) - discounts, a.final_price.minor());
    assert_eq!(amount(BreakdownKind::FinalPrice), a.final_price.minor());
    assert_eq!(amount(BreakdownKind::Mileage), a.mileage_used.minor());
    assert!(a.final_price <= a.base);
    let back: Answer = serde_json::from_str(&serde_json::to_string(a).unwrap()).unwrap();
    assert_eq!(&back, a);
}

fn agree(v: &Value) -> Result<(), TestCaseError> {
    let q = ValidQuote::parse(&v.to_string()).map_err(|e| TestCaseError::fail(format!("{e} in {v}")))?;
    let fast = engine::best_choice(&q);
    let slow = reference::best_choice(&q);
    prop_assert_eq!(&fast, &slow, "request: {}", v);
    let answer = pricing::quote(&q);
    prop_assert_eq!(&answer, &reference::quote(&q));
    check_answer(&answer);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn a_single_product_is_priced_like_the_brute_force(v in single_quote()) {
        agree(&v)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Rounding steps as large as the discounts: where "more discount, lower price" fails most.
    #[test]
    fn coarse_rounding_is_priced_like_the_brute_force(v in single_quote_with(3_000, vec![50, 100, 500])) {
        agree(&v)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn a_cart_is_priced_like_the_brute_force(v in cart_quote()) {
        agree(&v)?;
    }
}

/// Many equal benefits: ties everywhere, so the whole tie-break order is exercised.
fn tie_heavy_quote() -> impl Strategy<Value = Value> {
    let coupon = (
        prop::sample::select(vec!["m", "n", "o"]),
        prop_oneof![Just("product"), Just("cart")],
        prop::sample::select(vec![json!({"fixed": 1000}), json!({"percent": 10}), json!({"percent": 10, "max": 500})]),
        prop::sample::select(vec![0i64, 9000, 10_000]),
        any::<bool>(),
    )
        .prop_map(|(id, kind, discount, min_order, stackable)| {
            json!({"id": id, "kind": kind, "discount": discount, "min_order": min_order, "stackable": stackable,
                "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"})
        });
    let promo = (prop::sample::select(vec!["q", "r"]), prop::sample::select(vec![0i64, 8000, 9000])).prop_map(
        |(id, min_payment)| {
            json!({"id": id, "method": "card:q", "discount": {"fixed": 1000}, "min_payment": min_payment,
                "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"})
        },
    );
    (
        prop::collection::vec(coupon, 0..=5),
        prop::collection::vec(promo, 0..=3),
        prop::sample::select(vec![
            Value::Null,
            json!({"balance": 1000, "unit": 500}),
            json!({"balance": 2000, "min_use": 1000, "unit": 1000}),
        ]),
        1usize..=2,
    )
        .prop_map(|(coupons, promotions, mileage, lines)| {
            let line = json!({"product": {"id": "p-1", "sale_price": 10000}});
            json!({"currency": "KRW", "now": NOW, "rounding_unit": 10, "lines": vec![line; lines],
                "coupons": uniquely_named(coupons), "payment_promotions": uniquely_named(promotions),
                "mileage": mileage})
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ties_are_broken_like_the_brute_force(v in tie_heavy_quote()) {
        agree(&v)?;
    }
}
