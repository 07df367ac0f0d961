//! The pricing rules, case by case, through the public JSON API. Every expected answer is worked
//! out by hand in the comments; every case is also checked against the brute-force reference.

use promo_shared::domain::pricing;

use promo_shared::domain::pricing::Answer;

use promo_shared::domain::pricing::QuoteError;

use promo_shared::domain::pricing::ValidQuote;

use promo_shared::domain::pricing::reference;
use serde_json::{Value, json};

const NOW: &str = "2026-11-22T12:00:00Z";
const NOV: (&str, &str) = ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");

/// The spec's example request, verbatim (the file README's `promoctl quote` example uses).
fn spec_example() -> Value {
    serde_json::from_str(include_str!("../../../examples/quote-request.json")).unwrap()
}

/// A one-product KRW request with the given price and benefits (live all November).
fn request(sale_price: i64, coupons: Value, promotions: Value, mileage: Value) -> Value {
    json!({"currency":"KRW","now":NOW,"rounding_unit":10,
        "product":{"id":"p-1","brand":"b-1","category":"c-1","sale_price":sale_price},
        "coupons":coupons,"payment_promotions":promotions,"mileage":mileage})
}

fn coupon(id: &str, kind: &str, discount: Value) -> Value {
    json!({"id":id,"kind":kind,"discount":discount,"starts_at":NOV.0,"ends_at":NOV.1})
}

fn with(mut v: Value, fields: Value) -> Value {
    for (k, x) in fields.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn card(id: &str, discount: Value, min_payment: i64) -> Value {
    json!({"id":id,"method":format!("card:{id}"),"discount":discount,"min_payment":min_payment,
        "starts_at":NOV.0,"ends_at":NOV.1})
}

/// Prices a request with the engine, checks the reference agrees on the whole answer.
fn price(v: &Value) -> Answer {
    let q = ValidQuote::parse(&v.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let fast = pricing::quote(&q);
    let slow = reference::quote(&q);
    assert_eq!(fast, slow, "engine and reference disagree on {v}");
    fast
}

/// (final price, product coupon, cart coupon, payment promotion, mileage)
type Outcome = (i64, Option<&'static str>, Option<&'static str>, Option<&'static str>, i64);

fn outcome(a: &Answer) -> (i64, Option<String>, Option<String>, Option<String>, i64) {
    (
        a.final_price.minor(),
        a.lines[0].product_coupon.as_ref().map(|c| c.to_string()),
        a.cart_coupon.as_ref().map(|c| c.to_string()),
        a.payment_promotion.as_ref().map(|c| c.to_string()),
        a.mileage_used.minor(),
    )
}

fn check(name: &str, v: Value, expected: Outcome) {
    let a = price(&v);
    let e = (
        expected.0,
        expected.1.map(String::from),
        expected.2.map(String::from),
        expected.3.map(String::from),
        expected.4,
    );
    assert_eq!(outcome(&a), e, "case `{name}`");
}

#[test]
fn the_spec_example() {
    // base 52,000. welcome: 15 % = 7,800 → cap 7,000 → 45,000 (min_order 30,000 met, brand b-1).
    // Mileage: ⌊45,000 × 10 %⌋ = 4,500, balance 3,000 → up to 3,000. Paid 42,000 ≥ 40,000, so
    // card-x: 10 % = 4,200 (cap 5,000) → 37,800. Without welcome: 52,000 − 3,000 = 49,000 → −4,900
    // → 44,100. Less mileage only raises the paid amount, and 10 % of it is rounded to 10.
    let a = price(&spec_example());
    let expected = json!({
        "currency":"KRW","list_total":59000,"base":52000,"final_price":37800,
        "product_coupon":"welcome","cart_coupon":null,"payment_promotion":"card-x","payment_method":"card:x",
        "mileage_used":3000,"to_download":["welcome"],
        "lines":[{"product":"p-1","quantity":1,"base":52000,"product_coupon":"welcome","product_discount":7000}],
        "breakdown":[
            {"kind":"base","id":null,"amount":52000},
            {"kind":"product_coupon","id":"welcome","line":0,"amount":7000},
            {"kind":"mileage","id":null,"amount":3000},
            {"kind":"payment_promotion","id":"card-x","amount":4200},
            {"kind":"final_price","id":null,"amount":37800}],
        "valid_until":"2026-12-01T00:00:00Z"});
    assert_eq!(serde_json::to_value(&a).unwrap(), expected);
    // The answer reads back.
    let back: Answer = serde_json::from_value(expected).unwrap();
    assert_eq!(back, a);
}

#[test]
fn thresholds_rounding_and_caps() {
    let none = json!(null);
    let cases: Vec<(&str, Value, Outcome)> = vec![
        (
            // big: 10,000 → paid 40,000 < card's 45,000 → 40,000. small: 4,000 → 46,000 ≥ 45,000
            // → 20 % = 9,200 → 36,800. The smaller coupon wins.
            "a bigger coupon pushes the payment under the card's minimum",
            request(
                50_000,
                json!([
                    coupon("big", "product", json!({"fixed":10000})),
                    coupon("small", "product", json!({"fixed":4000}))
                ]),
                json!([card("card", json!({"percent":20}), 45_000)]),
                none.clone(),
            ),
            (36_800, Some("small"), None, Some("card"), 0),
        ),
        (
            // 41,000, up to 3,000 mileage (min 1,000, unit 10); card 10 % from 40,000.
            // 3,000 → 38,000, no card. 1,000 → 40,000 → −4,000 → 36,000. 0 → 41,000 → 36,900.
            "mileage pushes the payment under the card's minimum",
            request(
                41_000,
                json!([]),
                json!([card("card", json!({"percent":10}), 40_000)]),
                json!({"balance":3000,"min_use":1000,"unit":10}),
            ),
            (36_000, None, None, Some("card"), 1000),
        ),
        (
            // 15 % of 100,000 = 15,000 capped at 5,000 → 95,000; fixed 8,000 → 92,000.
            "a percent cap",
            request(
                100_000,
                json!([
                    coupon("pct", "product", json!({"percent":15,"max":5000})),
                    coupon("fix", "product", json!({"fixed":8000}))
                ]),
                json!([]),
                none.clone(),
            ),
            (92_000, Some("fix"), None, None, 0),
        ),
        (
            // 15 % of 12,345 = 1,851.75 → 1,851 → rounded to 10 → 1,850 → 10,495.
            "percent discounts are floored then rounded down to the rounding unit",
            request(12_345, json!([coupon("pct", "product", json!({"percent":15}))]), json!([]), none.clone()),
            (10_495, Some("pct"), None, None, 0),
        ),
        (
            // 10 % card rounded to 10; 1,095 with up to 100 mileage (unit 1, no minimum).
            // All 100 → paid 995 → 99.5 → 99 → rounded 90 → 905. 95 → paid 1,000 → −100 → 900.
            // Greedy "all the mileage" loses; 95 is the least mileage paying exactly 1,000.
            "rounding: a larger payment can cost less",
            request(1_095, json!([]), json!([card("card", json!({"percent":10}), 0)]), json!({"balance":100,"unit":1})),
            (900, None, None, Some("card"), 95),
        ),
        (
            // product 3,000 (stackable) + cart 5,000 (not stackable) cannot combine.
            // product alone: 47,000; cart alone: 45,000 → cart wins.
            "a non-stackable cart coupon excludes product coupons",
            request(
                50_000,
                json!([
                    with(coupon("p3", "product", json!({"fixed":3000})), json!({"stackable":true})),
                    coupon("c5", "cart", json!({"fixed":5000}))
                ]),
                json!([]),
                none.clone(),
            ),
            (45_000, None, Some("c5"), None, 0),
        ),
        (
            // both stackable: 50,000 − 3,000 − 5,000 = 42,000
            "stackable coupons combine",
            request(
                50_000,
                json!([
                    with(coupon("p3", "product", json!({"fixed":3000})), json!({"stackable":true})),
                    with(coupon("c5", "cart", json!({"fixed":5000})), json!({"stackable":true}))
                ]),
                json!([]),
                none.clone(),
            ),
            (42_000, Some("p3"), Some("c5"), None, 0),
        ),
        (
            // cart coupon's min_order 48,000 is checked after the product coupon: 50,000 − 3,000
            // = 47,000 < 48,000. Options: p3 alone 47,000; c5 alone 45,000 → c5.
            "a cart coupon's minimum is checked after product coupons",
            request(
                50_000,
                json!([
                    with(coupon("p3", "product", json!({"fixed":3000})), json!({"stackable":true})),
                    with(coupon("c5", "cart", json!({"fixed":5000})), json!({"stackable":true,"min_order":48000}))
                ]),
                json!([]),
                none.clone(),
            ),
            (45_000, None, Some("c5"), None, 0),
        ),
        (
            // a product coupon's min_order is checked against the base: 50,001 > 50,000
            "a product coupon's minimum is checked against the base",
            request(
                50_000,
                json!([
                    with(coupon("p3", "product", json!({"fixed":3000})), json!({"min_order":50001})),
                    with(coupon("p2", "product", json!({"fixed":2000})), json!({"min_order":50000}))
                ]),
                json!([]),
                none.clone(),
            ),
            (48_000, Some("p2"), None, None, 0),
        ),
        (
            // Rounding unit 100, stackable coupons. No product coupon: cart 10 % of 1,000 = 100 →
            // 900. With p10: 990 → 99 → rounded 0 → 990; with p1: 999 → 0 → 999. The amount
            // after the cart coupon is not monotone in the amount before it, which the engine's
            // pruning must respect.
            "a product coupon can cost the cart coupon its rounding step",
            with(
                request(
                    1_000,
                    json!([
                        with(coupon("p10", "product", json!({"fixed":10})), json!({"stackable":true})),
                        with(coupon("p1", "product", json!({"fixed":1})), json!({"stackable":true})),
                        with(coupon("cart", "cart", json!({"percent":10})), json!({"stackable":true}))
                    ]),
                    json!([]),
                    none.clone(),
                ),
                json!({"rounding_unit":100}),
            ),
            (900, None, Some("cart"), None, 0),
        ),
        (
            // card A 5 % without minimum vs card B 3,000 off from 40,000: 50,000 → A 47,500, B 47,000.
            "at most one payment promotion",
            request(
                50_000,
                json!([]),
                json!([card("a", json!({"percent":5}), 0), card("b", json!({"fixed":3000}), 40_000)]),
                none.clone(),
            ),
            (47_000, None, None, Some("b"), 0),
        ),
    ];
    for (name, v, expected) in cases {
        check(name, v, expected);
    }
}

#[test]
fn validity_windows_at_their_exact_boundaries() {
    let at = |starts: &str, ends: &str| {
        request(
            10_000,
            json!([{"id":"c","kind":"product","discount":{"fixed":1000},"starts_at":starts,"ends_at":ends}]),
            json!([]),
            json!(null),
        )
    };
    // live when starts_at <= now < ends_at
    check("starts now", at(NOW, "2026-12-01T00:00:00Z"), (9_000, Some("c"), None, None, 0));
    check("ends now", at("2026-11-01T00:00:00Z", NOW), (10_000, None, None, None, 0));
    check("starts a second later", at("2026-11-22T12:00:01Z", "2026-12-01T00:00:00Z"), (10_000, None, None, None, 0));
    check("ends a second later", at("2026-11-01T00:00:00Z", "2026-11-22T12:00:01Z"), (9_000, Some("c"), None, None, 0));
    // Offsets are instants: 21:00+09:00 is 12:00Z.
    check(
        "an offset instant",
        at("2026-11-22T21:00:00+09:00", "2026-12-01T00:00:00Z"),
        (9_000, Some("c"), None, None, 0),
    );
    // a payment promotion ending now is not live
    let card_ends_now = with(card("card", json!({"fixed":500}), 0), json!({"ends_at":NOW}));
    check(
        "a promotion ending now",
        request(10_000, json!([]), json!([card_ends_now]), json!(null)),
        (10_000, None, None, None, 0),
    );
}

#[test]
fn applicability_by_product_brand_and_category_and_exclusions() {
    let c = |id: &str, applies: Value, excludes: Value| {
        with(coupon(id, "product", json!({"fixed":1000})), json!({"applies_to":applies,"excludes":excludes}))
    };
    let e = json!({});
    let cases: Vec<(&str, Value, Option<&'static str>)> = vec![
        ("empty applies_to applies to all", c("x", json!({}), e.clone()), Some("x")),
        ("by product id", c("x", json!({"products":["p-1"]}), e.clone()), Some("x")),
        ("by brand", c("x", json!({"brands":["b-1"]}), e.clone()), Some("x")),
        ("by category", c("x", json!({"categories":["c-1"]}), e.clone()), Some("x")),
        ("another product", c("x", json!({"products":["p-2"],"brands":["b-2"],"categories":["c-2"]}), e.clone()), None),
        (
            "any one list suffices",
            c("x", json!({"products":["p-2"],"brands":["b-2"],"categories":["c-1"]}), e.clone()),
            Some("x"),
        ),
        ("excluded product beats applies_to", c("x", json!({"brands":["b-1"]}), json!({"products":["p-1"]})), None),
        ("excluded brand beats applies_to", c("x", json!({"products":["p-1"]}), json!({"brands":["b-1"]})), None),
        ("excluded category with empty applies_to", c("x", json!({}), json!({"categories":["c-1"]})), None),
        ("exclusion of another brand", c("x", json!({}), json!({"brands":["b-9"]})), Some("x")),
    ];
    for (name, cpn, expected) in cases {
        let v = request(10_000, json!([cpn]), json!([]), json!(null));
        let price = if expected.is_some() { 9_000 } else { 10_000 };
        check(name, v, (price, expected, None, None, 0));
    }
    // A product without brand or category matches no brand or category list.
    let v = json!({"currency":"KRW","now":NOW,"product":{"id":"p-1","sale_price":10000},
        "coupons":[c("x", json!({"brands":["b-1"],"categories":["c-1"]}), e.clone())]});
    check("no brand, no category", v, (10_000, None, None, None, 0));
}

#[test]
fn mileage_rules() {
    let m = |mileage: Value| request(20_000, json!([]), json!([]), mileage);
    let cases: Vec<(&str, Value, i64)> = vec![
        ("no mileage object", json!(null), 20_000),
        ("zero balance", json!({"balance":0}), 20_000),
        ("balance below min_use", json!({"balance":900,"min_use":1000}), 20_000),
        ("min_use above the ratio cap", json!({"balance":9000,"max_ratio_percent":5,"min_use":1500}), 20_000),
        // ⌊20,000 × 5 %⌋ = 1,000 ≥ min_use 1,000
        ("min_use equal to the ratio cap", json!({"balance":9000,"max_ratio_percent":5,"min_use":1000}), 19_000),
        // balance 1,234, unit 100 → 1,200
        ("the balance is used in whole units", json!({"balance":1234,"unit":100}), 18_800),
        // ⌊20,000 × 7 %⌋ = 1,400 → unit 300 → 1,200
        ("the ratio cap is rounded down to the unit", json!({"balance":9000,"max_ratio_percent":7,"unit":300}), 18_800),
        // min_use 250 with unit 100: the least positive use is 300; the most is 2,000 (10 %)
        (
            "min_use that is not a multiple of the unit",
            json!({"balance":9000,"max_ratio_percent":10,"min_use":250,"unit":100}),
            18_000,
        ),
        ("ratio 0 allows none", json!({"balance":9000,"max_ratio_percent":0}), 20_000),
        ("ratio 100 allows all", json!({"balance":90000,"max_ratio_percent":100}), 0),
    ];
    for (name, mileage, expected) in cases {
        let a = price(&m(mileage));
        assert_eq!(a.final_price.minor(), expected, "case `{name}`");
        assert_eq!(a.mileage_used.minor(), 20_000 - expected, "case `{name}`");
    }
}

#[test]
fn tie_breaks() {
    let none = json!(null);
    // Two coupons worth the same: the smaller id.
    check(
        "equal coupons: the smallest id",
        request(
            10_000,
            json!([
                coupon("zeta", "product", json!({"fixed":1000})),
                coupon("alpha", "product", json!({"percent":10}))
            ]),
            json!([]),
            none.clone(),
        ),
        (9_000, Some("alpha"), None, None, 0),
    );
    // A coupon that takes nothing off (1 % of 500 = 5 → rounded to 10 → 0): not used (fewer coupons).
    check(
        "a coupon worth nothing is not used",
        request(500, json!([coupon("one", "product", json!({"percent":1}))]), json!([]), none.clone()),
        (500, None, None, None, 0),
    );
    // A promotion worth nothing (1 % of 500 → 0): none before any id.
    check(
        "a promotion worth nothing is not used",
        request(500, json!([]), json!([card("card", json!({"percent":1}), 0)]), none.clone()),
        (500, None, None, None, 0),
    );
    // Same final price with mileage or with a coupon: less mileage wins.
    // 10,000: coupon 1,000 → 9,000; or mileage 1,000 → 9,000 (balance exactly 1,000).
    check(
        "less mileage before fewer coupons",
        request(
            10_000,
            json!([coupon("c", "product", json!({"fixed":1000}))]),
            json!([]),
            json!({"balance":1000,"max_ratio_percent":10}),
        ),
        // with the coupon, ⌊9,000 × 10 %⌋ = 900 mileage still applies: 8,100 beats both.
        (8_100, Some("c"), None, None, 900),
    );
    check(
        "less mileage before fewer coupons, mileage capped to equalise",
        request(
            10_000,
            json!([coupon("c", "product", json!({"fixed":1000}))]),
            json!([]),
            json!({"balance":1000,"max_ratio_percent":10,"min_use":1000}),
        ),
        // coupon + 900 mileage is under min_use: coupon alone 9,000 ties mileage alone 9,000 → coupon (m = 0).
        (9_000, Some("c"), None, None, 0),
    );
    // Same price, same mileage: one coupon beats two. Product 1,000 + cart 1,000 (stackable) vs
    // a cart coupon of 2,000 alone: 8,000 either way.
    check(
        "fewer coupons",
        request(
            10_000,
            json!([
                with(coupon("p1", "product", json!({"fixed":1000})), json!({"stackable":true})),
                with(coupon("c1", "cart", json!({"fixed":1000})), json!({"stackable":true})),
                coupon("c2", "cart", json!({"fixed":2000}))
            ]),
            json!([]),
            none.clone(),
        ),
        (8_000, None, Some("c2"), None, 0),
    );
    // Same everything but the promotion: the smaller promotion id.
    check(
        "equal promotions: the smallest id",
        request(
            10_000,
            json!([]),
            json!([card("b", json!({"fixed":500}), 0), card("a", json!({"percent":5}), 0)]),
            none.clone(),
        ),
        (9_500, None, None, Some("a"), 0),
    );
}

#[test]
fn usd_is_priced_in_cents() {
    // $199.99 × 2 = $399.98; 12 % rounded to 1¢ = 4,799.76 → 4,799 → $352.99; card $10 off from $300.
    let v = json!({"currency":"USD","now":NOW,"rounding_unit":1,"quantity":2,
        "product":{"id":"p-usd","sale_price":19999,"list_price":24999},
        "coupons":[coupon("twelve", "product", json!({"percent":12}))],
        "payment_promotions":[card("visa", json!({"fixed":1000}), 30000)]});
    let a = price(&v);
    assert_eq!(a.currency.code(), "USD");
    assert_eq!((a.base.minor(), a.list_total.minor(), a.final_price.minor()), (39_998, 49_998, 34_199));
}

#[test]
fn valid_until_is_the_next_change_among_all_benefits() {
    // A coupon that starts later (not live, not applicable) still bounds the answer.
    let later = with(
        coupon("later", "cart", json!({"fixed":1})),
        json!({"starts_at":"2026-11-25T00:00:00Z","ends_at":"2026-11-30T00:00:00Z"}),
    );
    let ended =
        with(coupon("ended", "cart", json!({"fixed":1})), json!({"starts_at":"2026-10-01T00:00:00Z","ends_at":NOW}));
    let a = price(&request(10_000, json!([later, ended]), json!([card("card", json!({"fixed":1}), 0)]), json!(null)));
    assert_eq!(a.valid_until.unwrap().to_rfc3339(), "2026-11-25T00:00:00+00:00");
    let a = price(&request(10_000, json!([]), json!([]), json!(null)));
    assert_eq!(a.valid_until, None);
    assert_eq!(serde_json::to_value(&a).unwrap()["valid_until"], json!(null));
}

#[test]
fn to_download_lists_the_chosen_coupons_not_owned() {
    let v = request(
        50_000,
        json!([
            with(coupon("mine", "product", json!({"fixed":3000})), json!({"stackable":true,"owned":true})),
            with(coupon("public", "cart", json!({"fixed":2000})), json!({"stackable":true})),
            with(coupon("unused", "cart", json!({"fixed":1000})), json!({"stackable":true}))
        ]),
        json!([]),
        json!(null),
    );
    let a = price(&v);
    assert_eq!(a.final_price.minor(), 45_000);
    assert_eq!(a.to_download.iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["public"]);
}

#[test]
fn a_cart_assigns_each_coupon_once() {
    // Two lines of 30,000 and 20,000; coupon "big" (5,000, any product) and "small" (2,000, any).
    // Each line takes a different coupon: 50,000 − 7,000 = 43,000; "big" on the first line (smaller
    // line index first does not matter for the price; the tie-break picks ids in line order:
    // [big, small] vs [small, big] → "big" < "small", so big on line 0).
    let v = json!({"currency":"KRW","now":NOW,"rounding_unit":10,
        "lines":[{"product":{"id":"p-1","sale_price":30000}},{"product":{"id":"p-2","sale_price":10000},"quantity":2}],
        "coupons":[coupon("small", "product", json!({"fixed":2000})), coupon("big", "product", json!({"fixed":5000}))]});
    let a = price(&v);
    assert_eq!(a.final_price.minor(), 43_000);
    assert_eq!(a.product_coupon, None, "a cart of several lines names its product coupons per line");
    let per_line: Vec<Option<&str>> = a.product_coupons().map(|c| c.map(|c| c.as_str())).collect();
    assert_eq!(per_line, [Some("big"), Some("small")]);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json.get("product_coupon"), Some(&serde_json::Value::Null), "the key is there: one answer shape");
    assert_eq!(json["lines"][1]["base"], json!(20000));
}

#[test]
fn cart_and_product_answers_have_the_same_keys() {
    let product = json!({"currency":"KRW","now":NOW,"rounding_unit":10,
        "product":{"id":"p-1","sale_price":30000},
        "coupons":[coupon("big", "product", json!({"fixed":5000}))]});
    let one_line_cart = json!({"currency":"KRW","now":NOW,"rounding_unit":10,
        "lines":[{"product":{"id":"p-1","sale_price":30000}}],
        "coupons":[coupon("big", "product", json!({"fixed":5000}))]});
    let keys = |v: &serde_json::Value| {
        let a = serde_json::to_value(price(v)).unwrap();
        (a.as_object().unwrap().keys().cloned().collect::<Vec<_>>(), a["product_coupon"].clone())
    };
    let (product_keys, product_coupon) = keys(&product);
    let (cart_keys, cart_coupon) = keys(&one_line_cart);
    assert_eq!(product_keys, cart_keys);
    assert_eq!((product_coupon, cart_coupon), (json!("big"), json!("big")));
}

#[test]
fn a_cart_keeps_a_threshold_with_a_smaller_discount() {
    // Lines 30,000 + 30,000. Coupons "a" 20 % (6,000 on a line) and "b" 2,000, each usable on
    // either line; card 10 % from `min_payment`.
    let cart = |min_payment: i64| {
        json!({"currency":"KRW","now":NOW,"rounding_unit":10,
            "lines":[{"product":{"id":"p-1","sale_price":30000}},{"product":{"id":"p-2","sale_price":30000}}],
            "coupons":[coupon("a", "product", json!({"percent":20})), coupon("b", "product", json!({"fixed":2000}))],
            "payment_promotions":[card("card", json!({"percent":10}), min_payment)]})
    };
    let coupons = |a: &Answer| a.product_coupons().map(|c| c.map(|c| c.to_string())).collect::<Vec<_>>();
    let some = |s: &str| Some(s.to_string());
    // From 52,000: both coupons → 52,000 → −5,200 → 46,800 (the maximum discount is optimal).
    let a = price(&cart(52_000));
    assert_eq!(a.final_price.minor(), 46_800);
    assert_eq!(coupons(&a), [some("a"), some("b")]);
    // From 53,000: both → 52,000, no card. "a" alone → 54,000 → −5,400 → 48,600: the smaller
    // discount keeps the card. Same total either line; "none before any id" in line order puts
    // the coupon on the second line.
    let a = price(&cart(53_000));
    assert_eq!((a.final_price.minor(), a.payment_promotion.as_ref().map(|p| p.as_str())), (48_600, Some("card")));
    assert_eq!(coupons(&a), [None, some("a")]);
    // From 55,000: "a" alone misses it too (54,000); "b" alone → 58,000 → −5,800 → 52,200;
    // both, no card → 52,000 wins.
    let a = price(&cart(55_000));
    assert_eq!((a.final_price.minor(), &a.payment_promotion), (52_000, &None));
    assert_eq!(coupons(&a), [some("a"), some("b")]);
}

#[test]
fn a_cart_coupon_must_apply_to_every_line() {
    // The cart coupon excludes brand b-2, which the second line is: it cannot discount the cart.
    let v = json!({"currency":"KRW","now":NOW,
        "lines":[{"product":{"id":"p-1","brand":"b-1","sale_price":10000}},{"product":{"id":"p-2","brand":"b-2","sale_price":10000}}],
        "coupons":[with(coupon("cart", "cart", json!({"fixed":3000})), json!({"excludes":{"brands":["b-2"]}}))]});
    assert_eq!(price(&v).final_price.minor(), 20_000);
}

fn error(v: Value) -> QuoteError {
    match ValidQuote::parse(&v.to_string()) {
        Ok(_) => panic!("accepted {v}"),
        Err(e) => e,
    }
}

#[test]
fn bad_requests_name_the_field() {
    let base = spec_example();
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "negative sale price",
            with(base.clone(), json!({"product":{"id":"p-1","sale_price":-1}})),
            vec!["product.sale_price"],
        ),
        (
            "sale above list",
            with(base.clone(), json!({"product":{"id":"p-1","sale_price":2,"list_price":1}})),
            vec!["product.sale_price"],
        ),
        ("quantity 0", with(base.clone(), json!({"quantity":0})), vec!["quantity"]),
        ("rounding unit 0", with(base.clone(), json!({"rounding_unit":0})), vec!["rounding_unit"]),
        ("unknown currency", with(base.clone(), json!({"currency":"XYZ"})), vec!["currency"]),
        ("lower-case currency", with(base.clone(), json!({"currency":"krw"})), vec!["currency"]),
        ("bad now", with(base.clone(), json!({"now":"yesterday"})), vec!["now"]),
        ("mileage unit 0", with(base.clone(), json!({"mileage":{"balance":1,"unit":0}})), vec!["mileage.unit"]),
        (
            "mileage ratio 101",
            with(base.clone(), json!({"mileage":{"balance":1,"max_ratio_percent":101}})),
            vec!["mileage.max_ratio_percent"],
        ),
        ("negative balance", with(base.clone(), json!({"mileage":{"balance":-1}})), vec!["mileage.balance"]),
        (
            "both product and lines",
            with(base.clone(), json!({"lines":[{"product":{"id":"p-2","sale_price":1}}]})),
            vec!["lines"],
        ),
        (
            "neither product nor lines",
            {
                let mut v = base.clone();
                v.as_object_mut().unwrap().remove("product");
                v
            },
            vec!["product"],
        ),
        (
            "empty cart",
            {
                let mut v = base.clone();
                v.as_object_mut().unwrap().remove("product");
                v.as_object_mut().unwrap().remove("quantity");
                v["lines"] = json!([]);
                v
            },
            vec!["lines"],
        ),
        (
            "huge base",
            with(
                base.clone(),
                json!({"quantity":4_000_000_000i64, "product":{"id":"p-1","sale_price":1_000_000_000_000i64}}),
            ),
            vec!["quantity"],
        ),
    ];
    for (name, v, fields) in cases {
        let e = error(v);
        assert_eq!(e.fields(), fields, "case `{name}`: {e}");
        assert!(e.to_string().contains(fields[0]), "case `{name}`: the message names the field: {e}");
    }

    let coupon_cases: Vec<(&str, Value, &str)> = vec![
        ("percent 101", json!({"discount":{"percent":101}}), "coupons[0].discount.percent"),
        ("percent 0", json!({"discount":{"percent":0}}), "coupons[0].discount.percent"),
        ("fixed 0", json!({"discount":{"fixed":0}}), "coupons[0].discount.fixed"),
        ("fixed and percent", json!({"discount":{"fixed":1,"percent":1}}), "coupons[0].discount"),
        ("max with fixed", json!({"discount":{"fixed":1,"max":1}}), "coupons[0].discount.max"),
        ("negative max", json!({"discount":{"percent":1,"max":-1}}), "coupons[0].discount.max"),
        ("negative min_order", json!({"min_order":-1}), "coupons[0].min_order"),
        ("starts at its end", json!({"starts_at":NOV.1}), "coupons[0].ends_at"),
        ("ends before it starts", json!({"ends_at":"2026-10-01T00:00:00Z"}), "coupons[0].ends_at"),
        ("bad id", json!({"id":"a b"}), "coupons[0].id"),
        ("blank target", json!({"applies_to":{"brands":[""]}}), "coupons[0].applies_to"),
    ];
    for (name, patch, field) in coupon_cases {
        let mut v = base.clone();
        v["coupons"][0] = with(v["coupons"][0].clone(), patch);
        let e = error(v);
        assert_eq!(e.fields(), [field], "case `{name}`: {e}");
    }

    // Duplicate ids.
    let mut v = base.clone();
    let dup = v["coupons"][0].clone();
    v["coupons"].as_array_mut().unwrap().push(dup);
    assert_eq!(error(v).fields(), ["coupons[1].id"]);
    let mut v = base.clone();
    let dup = v["payment_promotions"][0].clone();
    v["payment_promotions"].as_array_mut().unwrap().push(dup);
    assert_eq!(error(v).fields(), ["payment_promotions[1].id"]);

    // Every problem at once.
    let v = with(base.clone(), json!({"rounding_unit":0,"quantity":0,"mileage":{"balance":-5,"unit":0}}));
    assert_eq!(error(v).fields(), ["rounding_unit", "quantity", "mileage.balance", "mileage.unit"]);
}

#[test]
fn malformed_requests_are_refused() {
    for text in [
        "not json".to_string(),
        with(spec_example(), json!({"surprise":1})).to_string(),
        with(spec_example(), json!({"product":{"id":"p-1","sale_price":1,"colour":"red"}})).to_string(),
        with(spec_example(), json!({"quantity":"one"})).to_string(),
        with(spec_example(), json!({"coupons":[{"id":"x","kind":"everything","discount":{"fixed":1},"starts_at":NOV.0,"ends_at":NOV.1}]})).to_string(),
        with(spec_example(), json!({"product":{"id":"p-1","sale_price":1.5}})).to_string(),
    ] {
        match ValidQuote::parse(&text) {
            Err(QuoteError::Malformed(_)) => {}
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn defaults() {
    // Only the required fields: rounding 1, quantity 1, no benefits.
    let a = pricing::quote_json(
        r#"{"currency":"JPY","now":"2026-11-22T12:00:00Z","product":{"id":"p","sale_price":1234}}"#,
    )
    .unwrap();
    assert_eq!(
        (a.base.minor(), a.list_total.minor(), a.final_price.minor(), a.mileage_used.minor()),
        (1234, 1234, 1234, 0)
    );
    assert_eq!(a.product_coupon, None, "present, and null");
    assert_eq!(a.breakdown.len(), 2);
}

#[test]
fn a_cart_with_too_many_assignments_is_refused() {
    // 7 lines × 7 coupons usable everywhere: 8^7 = 2,097,152 > 2^20.
    let lines: Vec<Value> = (0..7).map(|i| json!({"product":{"id":format!("p-{i}"),"sale_price":10000}})).collect();
    let coupons: Vec<Value> = (0..7).map(|i| coupon(&format!("c{i}"), "product", json!({"fixed":100}))).collect();
    let v = json!({"currency":"KRW","now":NOW,"lines":lines,"coupons":coupons});
    match ValidQuote::parse(&v.to_string()) {
        Err(QuoteError::TooComplex { assignments, limit }) => assert_eq!((assignments, limit), (2_097_152, 1 << 20)),
        other => panic!("{other:?}"),
    }
}
