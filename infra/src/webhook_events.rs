//! Webhook bodies as each provider sends them, built from a few parameters, so `promoctl
//! webhook trigger` tests an integration without hand-written JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// What happened to the payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Paid,
    Cancelled,
    Refunded,
}

/// The payment an event is about.
#[derive(Clone, Debug)]
pub struct Payment {
    pub provider: String,
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount: i64,
    pub currency: String,
    /// For a refund: how much of `amount` is refunded (default: all of it).
    pub refunded: Option<i64>,
    pub at: DateTime<Utc>,
    /// The limited-event reservation the payment pays for (Stripe's `metadata`, the standard
    /// event's field; PortOne keeps it in the payment's `customData`, not in the webhook).
    pub reservation_id: Option<String>,
}

/// The body of `kind` for `payment` in its provider's shape, and the delivery (event) id:
/// `id` when given, else a new one.
pub fn body(kind: Kind, p: &Payment, id: Option<&str>) -> (Value, String) {
    let fresh = || format!("{}_{}", if p.provider == "stripe" { "evt" } else { "msg" }, uuid::Uuid::now_v7().simple());
    let id = id.map_or_else(fresh, str::to_string);
    let refunded = p.refunded.unwrap_or(p.amount).min(p.amount);
    let body = match p.provider.as_str() {
        "stripe" => {
            let (event_type, object) = match kind {
                Kind::Paid => (
                    "payment_intent.succeeded",
                    json!({"id": p.payment_id, "object": "payment_intent", "amount": p.amount,
                        "amount_received": p.amount, "status": "succeeded"}),
                ),
                Kind::Cancelled => (
                    "payment_intent.canceled",
                    json!({"id": p.payment_id, "object": "payment_intent", "amount": p.amount, "status": "canceled"}),
                ),
                Kind::Refunded => (
                    "charge.refunded",
                    json!({"id": format!("ch_{}", p.payment_id), "object": "charge", "payment_intent": p.payment_id,
                        "amount": p.amount, "amount_refunded": refunded, "refunded": refunded == p.amount}),
                ),
            };
            let mut object = object;
            object["currency"] = json!(p.currency.to_ascii_lowercase());
            object["metadata"] = json!({"user_id": p.user_id, "order_id": p.order_id});
            if let Some(rid) = &p.reservation_id {
                object["metadata"]["reservation_id"] = json!(rid);
            }
            json!({"id": id, "object": "event", "type": event_type, "created": p.at.timestamp(),
                "livemode": false, "data": {"object": object}})
        }
        "portone" => {
            let event_type = match kind {
                Kind::Paid => "Transaction.Paid",
                Kind::Cancelled => "Transaction.Cancelled",
                Kind::Refunded if refunded < p.amount => "Transaction.PartialCancelled",
                Kind::Refunded => "Transaction.Cancelled",
            };
            json!({"type": event_type, "timestamp": p.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "data": {"paymentId": p.payment_id, "transactionId": format!("tx-{}", p.payment_id)}})
        }
        _ => {
            let mut event = json!({
                "type": match kind { Kind::Paid => "paid", Kind::Cancelled => "cancelled", Kind::Refunded => "refunded" },
                "payment_id": p.payment_id, "order_id": p.order_id, "user_id": p.user_id,
                "amount": if kind == Kind::Refunded { refunded } else { p.amount },
                "currency": p.currency, "items": [],
                "occurred_at": p.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            });
            if kind == Kind::Refunded {
                event["paid_amount"] = json!(p.amount);
            }
            if let Some(rid) = &p.reservation_id {
                event["reservation_id"] = json!(rid);
            }
            event
        }
    };
    (body, id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use promo_shared::domain::payment::{PaymentEvent, PaymentKind};
    use promo_shared::payments::providers::{self, Normalized};

    use super::*;

    fn payment(provider: &str) -> Payment {
        Payment {
            provider: provider.into(),
            payment_id: "pay-1".into(),
            order_id: "o-1".into(),
            user_id: "u-1".into(),
            amount: 52000,
            currency: "KRW".into(),
            refunded: None,
            at: "2031-01-02T03:04:05Z".parse().unwrap(),
            reservation_id: None,
        }
    }

    /// `--reservation-id` pays a limited event's place: the standard event's field and
    /// Stripe's metadata carry it, and the platform's parsers find it there.
    #[test]
    fn a_reservation_id_reaches_the_payment_event() {
        let with = |provider: &str| Payment { reservation_id: Some("r-1".into()), ..payment(provider) };
        let (b, _) = body(Kind::Paid, &with("standard"), None);
        let e: PaymentEvent = serde_json::from_value(b).unwrap();
        assert_eq!(e.reservation_id.map(|r| r.to_string()).as_deref(), Some("r-1"));
        let (b, _) = body(Kind::Paid, &with("stripe"), None);
        let (_, Normalized::Event(e)) = providers::stripe(&b).unwrap() else { panic!("{b}") };
        assert_eq!(e.reservation_id.map(|r| r.to_string()).as_deref(), Some("r-1"));
    }

    /// What the platform's own parsers make of the bodies: the same payment, kind and amounts.
    #[test]
    fn each_providers_body_parses_back_to_the_payment() {
        for (kind, expected) in [
            (Kind::Paid, PaymentKind::Paid),
            (Kind::Cancelled, PaymentKind::Cancelled),
            (Kind::Refunded, PaymentKind::Refunded),
        ] {
            let (body, id) = body(kind, &payment("stripe"), Some("evt_fixed"));
            let (event_id, Normalized::Event(e)) = providers::stripe(&body).unwrap() else { panic!("{body}") };
            assert_eq!((event_id.as_str(), id.as_str()), ("evt_fixed", "evt_fixed"), "--id is the event id");
            assert_eq!((e.kind, e.payment_id.as_str(), e.user_id.as_str()), (expected, "pay-1", "u-1"));
            assert_eq!(e.occurred_at.timestamp(), payment("stripe").at.timestamp());

            let (body, _) = body_standard(kind);
            let e: PaymentEvent = serde_json::from_value(body.clone()).unwrap();
            assert_eq!((e.kind, e.order_id.as_str()), (expected, "o-1"), "{body}");
        }
        let partial = Payment { refunded: Some(2000), ..payment("stripe") };
        let (b, _) = body(Kind::Refunded, &partial, None);
        let (id, Normalized::Event(e)) = providers::stripe(&b).unwrap() else { panic!("{b}") };
        assert!(id.starts_with("evt_"));
        assert_eq!(e.still_paid().map(|a| a.minor()), Some(50000), "a partial refund keeps what is still paid");
        let (b, _) = body(Kind::Refunded, &Payment { refunded: Some(2000), ..payment("standard") }, None);
        let e: PaymentEvent = serde_json::from_value(b).unwrap();
        assert_eq!(e.still_paid().map(|a| a.minor()), Some(50000));
        let (po, _) = body(Kind::Refunded, &Payment { refunded: Some(2000), ..payment("portone") }, None);
        assert_eq!(po["type"], "Transaction.PartialCancelled");
        assert_eq!(po["data"]["paymentId"], "pay-1");
    }

    fn body_standard(kind: Kind) -> (Value, String) {
        body(kind, &payment("standard"), None)
    }
}
