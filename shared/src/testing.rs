//! Fixtures shared by tests of this and other crates (feature `testing`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::ids::OrderId;

use crate::domain::ids::PaymentId;

use crate::domain::ids::UserId;
use crate::domain::money::Currency;
use crate::domain::money::Money;
use crate::domain::payment::PaymentEvent;
use crate::domain::payment::PaymentKind;

/// Parses an RFC 3339 instant; panics on a typo in a test.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("bad instant {s}: {e}")).to_utc()
}

/// A valid campaign, November 2026, KRW: reward rule `spend-50k` (≥ 50,000 → `thanks-5k`),
/// claims of `welcome-10` (stock 100, 1 per user).
pub fn campaign_json() -> Value {
    json!({
        "id": "bf-2026", "name": "Black Friday 2026", "currency": "KRW",
        "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
        "coupons": [
            {"id": "thanks-5k", "kind": "cart", "discount": {"fixed": 5000}, "min_order": 30000, "valid_days": 30},
            {"id": "welcome-10", "kind": "product", "discount": {"percent": 10, "max": 7000}, "stackable": true}
        ],
        "rewards": [{"id": "spend-50k", "coupon": "thanks-5k", "min_payment": 50000}],
        "claim": {"coupon": "welcome-10", "stock": 100, "per_user_limit": 1}
    })
}

/// A paid KRW payment of user `u-1`.
pub fn paid_event(payment_id: &str, amount: i64, occurred_at: &str) -> PaymentEvent {
    PaymentEvent {
        kind: PaymentKind::Paid,
        payment_id: PaymentId::parse(payment_id).unwrap_or_else(|e| panic!("{e}")),
        order_id: OrderId::parse(format!("order-{payment_id}")).unwrap_or_else(|e| panic!("{e}")),
        user_id: UserId::parse("u-1").unwrap_or_else(|e| panic!("{e}")),
        amount: Money::new(amount, Currency::parse("KRW").unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}")),
        paid_amount: None,
        items: vec![],
        occurred_at: at(occurred_at),
        reservation_id: None,
    }
}
