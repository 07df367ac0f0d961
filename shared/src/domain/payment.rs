//! The canonical payment event: what every provider's webhook is normalised into.
//!
//! JSON (the body of `POST /v1/webhooks/standard`, and what the gateway hands to the issuer):
//!
//! ```json
//! {"type": "paid", "payment_id": "pay_123", "order_id": "ord_9", "user_id": "u-1",
//!  "amount": 52000, "currency": "KRW",
//!  "items": [{"product_id": "p-1", "quantity": 1, "unit_price": 52000}],
//!  "occurred_at": "2026-11-22T12:00:00Z"}
//! ```
//!
//! An optional `reservation_id` names the limited-event reservation the payment pays for.
//!
//! `type` is `paid`, `cancelled` or `refunded`; `amount` is in minor units of `currency`.
//!
//! For `refunded`, `amount` is what has been refunded so far, and the optional `paid_amount`
//! is what was paid: a refund of less than `paid_amount` is partial, and the payment still
//! counts for `paid_amount − amount` (its rewards whose minimum that still meets are kept).
//! Without `paid_amount` a refund is taken as full. `paid_amount` belongs to refunds only.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::error::ValidationError;
use crate::domain::ids::OrderId;
use crate::domain::ids::PaymentId;
use crate::domain::ids::ProductId;
use crate::domain::ids::ReservationId;
use crate::domain::ids::UserId;
use crate::domain::money::Amount;
use crate::domain::money::Currency;
use crate::domain::money::Money;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    Paid,
    Cancelled,
    Refunded,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentItem {
    pub product_id: ProductId,
    pub quantity: u32,
    pub unit_price: Amount,
}

/// The wire form (flat `amount` + `currency`), parsed into [`PaymentEvent`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentEventWire {
    #[serde(rename = "type")]
    kind: PaymentKind,
    payment_id: PaymentId,
    order_id: OrderId,
    user_id: UserId,
    amount: Amount,
    currency: Currency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paid_amount: Option<Amount>,
    #[serde(default)]
    items: Vec<PaymentItem>,
    occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reservation_id: Option<ReservationId>,
}

/// A payment that was paid, cancelled or refunded, as the issuer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PaymentEventWire", into = "PaymentEventWire")]
pub struct PaymentEvent {
    pub kind: PaymentKind,
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: Money,
    /// For a refund: what was paid (in `amount`'s currency), when the sender says; see the
    /// module docs.
    pub paid_amount: Option<Amount>,
    pub items: Vec<PaymentItem>,
    pub occurred_at: DateTime<Utc>,
    /// The limited-event reservation this payment pays for, if any (PortOne's `customData`
    /// and Stripe's `metadata` carry it as `reservation_id`): a paid payment confirms it.
    pub reservation_id: Option<ReservationId>,
}

impl TryFrom<PaymentEventWire> for PaymentEvent {
    type Error = ValidationError;
    fn try_from(w: PaymentEventWire) -> Result<Self, Self::Error> {
        for (i, item) in w.items.iter().enumerate() {
            if item.quantity == 0 {
                return Err(ValidationError::new(format!("items[{i}].quantity"), "must be at least 1"));
            }
        }
        match (w.kind, w.paid_amount) {
            (PaymentKind::Refunded, Some(paid)) if paid < w.amount => {
                return Err(ValidationError::new("paid_amount", "is less than the amount refunded"));
            }
            (PaymentKind::Paid | PaymentKind::Cancelled, Some(_)) => {
                return Err(ValidationError::new("paid_amount", "belongs to refunds only"));
            }
            _ => {}
        }
        Ok(PaymentEvent {
            kind: w.kind,
            payment_id: w.payment_id,
            order_id: w.order_id,
            user_id: w.user_id,
            amount: Money { amount: w.amount, currency: w.currency },
            paid_amount: w.paid_amount,
            items: w.items,
            occurred_at: w.occurred_at,
            reservation_id: w.reservation_id,
        })
    }
}

impl From<PaymentEvent> for PaymentEventWire {
    fn from(e: PaymentEvent) -> Self {
        PaymentEventWire {
            kind: e.kind,
            payment_id: e.payment_id,
            order_id: e.order_id,
            user_id: e.user_id,
            amount: e.amount.amount,
            currency: e.amount.currency,
            paid_amount: e.paid_amount,
            items: e.items,
            occurred_at: e.occurred_at,
            reservation_id: e.reservation_id,
        }
    }
}

impl PaymentEvent {
    /// Parses the canonical JSON.
    pub fn from_json(bytes: &[u8]) -> Result<PaymentEvent, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// For a partial refund, what is still paid (`paid_amount − amount`); `None` for any
    /// other event, a full refund included.
    pub fn still_paid(&self) -> Option<Amount> {
        match (self.kind, self.paid_amount) {
            (PaymentKind::Refunded, Some(paid)) if paid > self.amount.amount => {
                Amount::new(paid.minor() - self.amount.amount.minor()).ok()
            }
            _ => None,
        }
    }

    /// SHA-256 of the canonical JSON: the same event always hashes the same, whatever the
    /// provider's formatting, so idempotency keys can detect a reused key with another payload.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.to_json()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"type":"paid","payment_id":"pay_123","order_id":"ord_9","user_id":"u-1",
        "amount":52000,"currency":"KRW","items":[{"product_id":"p-1","quantity":1,"unit_price":52000}],
        "occurred_at":"2026-11-22T12:00:00Z"}"#;

    #[test]
    fn canonical_json_round_trips() {
        let e = PaymentEvent::from_json(JSON.as_bytes()).unwrap();
        assert_eq!(e.kind, PaymentKind::Paid);
        assert_eq!(e.amount.amount.minor(), 52000);
        assert_eq!(e.amount.currency.code(), "KRW");
        let again = PaymentEvent::from_json(&e.to_json()).unwrap();
        assert_eq!(again, e);
        assert_eq!(again.fingerprint(), e.fingerprint());
    }

    #[test]
    fn a_refund_of_less_than_was_paid_is_partial() {
        let partial = JSON.replace("\"paid\"", "\"refunded\"").replace("52000,", "12000,\"paid_amount\":52000,");
        let e = PaymentEvent::from_json(partial.as_bytes()).unwrap();
        assert_eq!(e.still_paid().map(|a| a.minor()), Some(40000));
        assert_eq!(PaymentEvent::from_json(&e.to_json()).unwrap(), e);
        let full = JSON.replace("\"paid\"", "\"refunded\"");
        assert_eq!(PaymentEvent::from_json(full.as_bytes()).unwrap().still_paid(), None, "no paid_amount: full");
        let all = JSON.replace("\"paid\"", "\"refunded\"").replace("52000,", "52000,\"paid_amount\":52000,");
        assert_eq!(PaymentEvent::from_json(all.as_bytes()).unwrap().still_paid(), None, "all of it: full");
        let paid = PaymentEvent::from_json(JSON.as_bytes()).unwrap();
        assert!(!String::from_utf8(paid.to_json()).unwrap().contains("paid_amount"), "absent unless set");
    }

    #[test]
    fn bad_events_are_rejected() {
        for bad in [
            JSON.replace("\"paid\"", "\"teleported\""),
            JSON.replace("52000,\"currency\"", "-1,\"currency\""),
            JSON.replace("KRW", "ABC"),
            JSON.replace("\"quantity\":1", "\"quantity\":0"),
            JSON.replace("\"u-1\"", "\"u 1\""),
            JSON.replace("2026-11-22T12:00:00Z", "yesterday"),
            JSON.replace("\"type\"", "\"extra\":1,\"type\""),
            JSON.replace("\"currency\":\"KRW\"", "\"currency\":\"KRW\",\"paid_amount\":60000"),
            JSON.replace("\"paid\"", "\"refunded\"")
                .replace("\"currency\":\"KRW\"", "\"currency\":\"KRW\",\"paid_amount\":100"),
        ] {
            assert!(PaymentEvent::from_json(bad.as_bytes()).is_err(), "accepted {bad}");
        }
    }
}
