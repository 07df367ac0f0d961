//! Max-benefit pricing: the engine (`pricing::quote`) against the brute-force reference
//! (`pricing::reference::quote`), on the same quotes, in the same run. Both answers are checked
//! equal before timing.
//!
//! Run: cargo bench -p promo-shared --bench quote
//!
//! * `small`: one product, 5 coupons, 2 payment promotions, 5,000 mileage in units of 10.
//! * `large`: one product, 50 coupons, 20 payment promotions, 500,000 mileage in units of 10
//!   (the reference tries 26 × 26 × 50,001 × 21 ≈ 710 million combinations).
//! * `cart3`: three lines, 12 coupons, 4 promotions, 20,000 mileage in units of 10.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use promo_shared::domain::pricing;
use promo_shared::domain::pricing::ValidQuote;
use promo_shared::domain::pricing::reference;
use serde_json::{Value, json};

/// A deterministic pseudo-random sequence (no `rand` dependency needed for fixtures).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> i64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n) as i64
    }
}

const WINDOW: (&str, &str) = ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");

fn discount(rng: &mut Lcg, scale: i64) -> Value {
    match rng.below(3) {
        0 => json!({"fixed": (1 + rng.below(12)) * scale / 100}),
        1 => json!({"percent": 3 + rng.below(15)}),
        _ => json!({"percent": 5 + rng.below(25), "max": (1 + rng.below(10)) * scale / 100}),
    }
}

fn coupons(rng: &mut Lcg, n: usize, price: i64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let kind = if i % 2 == 0 { "product" } else { "cart" };
            json!({"id": format!("{kind}-{i:02}"), "kind": kind, "discount": discount(rng, price),
                "min_order": rng.below(price as u64 / 2), "starts_at": WINDOW.0, "ends_at": WINDOW.1,
                "stackable": rng.below(4) != 0, "owned": rng.below(2) == 0})
        })
        .collect()
}

fn promotions(rng: &mut Lcg, n: usize, price: i64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"id": format!("card-{i:02}"), "method": format!("card:{i}"), "discount": discount(rng, price / 2),
                "min_payment": price / 3 + rng.below(price as u64 / 2), "starts_at": WINDOW.0, "ends_at": WINDOW.1})
        })
        .collect()
}

fn single(coupon_count: usize, promotion_count: usize, price: i64, balance: i64) -> ValidQuote {
    let mut rng = Lcg(42);
    let v = json!({"currency": "KRW", "now": "2026-11-22T12:00:00Z", "rounding_unit": 10,
        "product": {"id": "p-1", "brand": "b-1", "category": "c-1", "sale_price": price},
        "coupons": coupons(&mut rng, coupon_count, price),
        "payment_promotions": promotions(&mut rng, promotion_count, price),
        "mileage": {"balance": balance, "max_ratio_percent": 30, "min_use": 1000, "unit": 10}});
    ValidQuote::parse(&v.to_string()).expect("fixture")
}

fn cart() -> ValidQuote {
    let mut rng = Lcg(7);
    let lines: Vec<Value> = [120_000, 80_000, 45_000]
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"product": {"id": format!("p-{i}"), "sale_price": p}, "quantity": 1}))
        .collect();
    let v = json!({"currency": "KRW", "now": "2026-11-22T12:00:00Z", "rounding_unit": 10, "lines": lines,
        "coupons": coupons(&mut rng, 12, 100_000), "payment_promotions": promotions(&mut rng, 4, 245_000),
        "mileage": {"balance": 20_000, "max_ratio_percent": 30, "min_use": 1000, "unit": 10}});
    ValidQuote::parse(&v.to_string()).expect("fixture")
}

fn bench(c: &mut Criterion) {
    let cases = [
        ("small", single(5, 2, 89_000, 5_000), 100, Duration::from_secs(5)),
        ("large", single(50, 20, 2_400_000, 500_000), 10, Duration::from_secs(40)),
        ("cart3", cart(), 10, Duration::from_secs(20)),
    ];
    for (name, quote, samples, time) in cases {
        let fast = pricing::quote(&quote);
        assert_eq!(fast, reference::quote(&quote), "{name}: engine and reference disagree");
        println!(
            "{name}: final {} (base {}), product {:?}, cart {:?}, payment {:?}, mileage {}",
            fast.final_price,
            fast.base,
            fast.product_coupons().collect::<Vec<_>>(),
            fast.cart_coupon,
            fast.payment_promotion,
            fast.mileage_used
        );
        let mut group = c.benchmark_group(format!("quote/{name}"));
        group.sample_size(samples).measurement_time(time);
        group.bench_function("engine", |b| b.iter(|| pricing::quote(black_box(&quote))));
        group.bench_function("reference", |b| b.iter(|| reference::quote(black_box(&quote))));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
