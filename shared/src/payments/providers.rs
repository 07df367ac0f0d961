//! What each provider's verified body means: a canonical [`PaymentEvent`], a payment to look
//! up at the provider first (PortOne sends only ids), or something we acknowledge and ignore.

use crate::domain::ids::OrderId;
use crate::domain::ids::PaymentId;
use crate::domain::ids::ReservationId;
use crate::domain::ids::UserId;
use crate::domain::money::Amount;
use crate::domain::money::Currency;
use crate::domain::money::Money;
use crate::domain::payment::PaymentEvent;
use crate::domain::payment::PaymentKind;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::http::ApiError;

/// The meaning of a verified webhook body.
#[derive(Clone, Debug, PartialEq)]
pub enum Normalized {
    Event(PaymentEvent),
    /// Fetch the payment from the provider's API and derive the event from what it says.
    Lookup {
        payment_id: PaymentId,
    },
    /// Verified, but nothing for us to do: acknowledged with 2xx so the sender stops.
    Ignored {
        reason: String,
    },
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidBody(e.to_string())
}

/// The `type` of a signed event: the body must be a JSON object with a string `type`. Only a
/// well-formed event whose type we do not handle is acknowledged and ignored; anything else
/// is a sender's bug, refused with 400 so that it is seen rather than silently dropped.
fn event_type(body: &Value) -> Result<&str, ApiError> {
    let obj = body.as_object().ok_or_else(|| invalid("the body is not a JSON object (an event)"))?;
    match obj.get("type") {
        Some(Value::String(t)) if !t.is_empty() => Ok(t),
        Some(_) => Err(invalid("the event's `type` is not a non-empty string")),
        None => Err(invalid("the event has no `type`")),
    }
}

/// Our canonical event (provider `standard`).
pub fn standard(body: &Value) -> Result<Normalized, ApiError> {
    let kind = event_type(body)?;
    if !matches!(kind, "paid" | "cancelled" | "refunded") {
        return Ok(Normalized::Ignored { reason: format!("event type `{kind}` is not handled") });
    }
    serde_json::from_value(body.clone())
        .map(Normalized::Event)
        .map_err(|e| ApiError::InvalidBody(format!("not a payment event: {e}")))
}

/// PortOne V2: `{type: "Transaction.Paid", timestamp, data: {storeId, paymentId, transactionId}}`.
pub fn portone(body: &Value) -> Result<Normalized, ApiError> {
    let kind = event_type(body)?;
    if !matches!(kind, "Transaction.Paid" | "Transaction.Cancelled" | "Transaction.PartialCancelled") {
        return Ok(Normalized::Ignored { reason: format!("event type `{kind}` is not handled") });
    }
    let payment_id = body
        .pointer("/data/paymentId")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("data.paymentId is missing"))?;
    // Parsed before any look-up: an id such as `.` would name another PortOne URL.
    Ok(Normalized::Lookup { payment_id: PaymentId::parse(payment_id).map_err(invalid)? })
}

pub use crate::ports::lookup::{PortOneAmount, PortOneCustomer, PortOnePayment};

/// Derives the event from PortOne's own record of the payment — never from what a client
/// or a webhook body claims. A `PAID` payment must be paid in full. `PARTIAL_CANCELLED` is a
/// partial refund: `amount.cancelled` of `amount.paid` given back, the rest still paid.
pub fn portone_event(p: &PortOnePayment, now: DateTime<Utc>) -> Result<Normalized, ApiError> {
    let kind = match p.status.as_str() {
        "PAID" => PaymentKind::Paid,
        "CANCELLED" => PaymentKind::Cancelled,
        "PARTIAL_CANCELLED" => PaymentKind::Refunded,
        other => return Ok(Normalized::Ignored { reason: format!("payment status `{other}` is not final") }),
    };
    if kind == PaymentKind::Paid && p.amount.paid != p.amount.total {
        return Ok(Normalized::Ignored {
            reason: format!("paid amount {} differs from the total {}: not issuing", p.amount.paid, p.amount.total),
        });
    }
    let Some(user) = p.customer.as_ref().and_then(|c| c.id.as_deref()).filter(|u| !u.is_empty()) else {
        return Ok(Normalized::Ignored { reason: "the payment has no customer id".into() });
    };
    let custom = p.custom_data.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok());
    let custom_text = |field: &str| custom.as_ref().and_then(|d| d.get(field)).and_then(Value::as_str);
    let order = custom_text("order_id").map(str::to_string).unwrap_or_else(|| p.id.clone());
    let reservation_id = custom_text("reservation_id").map(ReservationId::parse).transpose().map_err(invalid)?;
    let currency = Currency::parse(&p.currency.to_ascii_uppercase()).map_err(invalid)?;
    let amount = if kind == PaymentKind::Paid { p.amount.paid } else { p.amount.cancelled };
    // A partial refund says what was paid, so the issuer keeps the rewards the rest still earns.
    let paid_amount = match kind {
        PaymentKind::Refunded => Some(Amount::new(p.amount.paid.max(p.amount.cancelled)).map_err(invalid)?),
        _ => None,
    };
    Ok(Normalized::Event(PaymentEvent {
        kind,
        payment_id: PaymentId::parse(p.id.clone()).map_err(invalid)?,
        order_id: OrderId::parse(order).map_err(invalid)?,
        user_id: UserId::parse(user).map_err(invalid)?,
        amount: Money::new(amount, currency).map_err(invalid)?,
        paid_amount,
        items: vec![],
        occurred_at: match kind {
            PaymentKind::Paid => p.paid_at,
            _ => p.cancelled_at,
        }
        .or(p.requested_at)
        .unwrap_or(now),
        reservation_id,
    }))
}

/// Stripe: `payment_intent.succeeded`, `payment_intent.canceled` and `charge.refunded` (a
/// partial refund when `amount_refunded` is less than the charge's `amount`), with the shop's
/// `metadata.user_id` / `metadata.order_id` (and `metadata.reservation_id` for a limited
/// event's place). Returns the event id (the delivery id) and the
/// meaning. An event without `created` is refused: its time decides which campaign it earns
/// from, and the signature's timestamp is the delivery's, not the payment's.
pub fn stripe(body: &Value) -> Result<(String, Normalized), ApiError> {
    let kind = event_type(body)?;
    let event_id = body
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("the event has no id"))?
        .to_string();
    let (kind, amount_field, payment_field) = match kind {
        "payment_intent.succeeded" => (PaymentKind::Paid, "amount_received", "id"),
        "payment_intent.canceled" => (PaymentKind::Cancelled, "amount", "id"),
        "charge.refunded" => (PaymentKind::Refunded, "amount_refunded", "payment_intent"),
        other => {
            return Ok((event_id, Normalized::Ignored { reason: format!("event type `{other}` is not handled") }));
        }
    };
    let obj = body.pointer("/data/object").ok_or_else(|| invalid("data.object is missing"))?;
    let text = |field: &str| obj.get(field).and_then(Value::as_str).map(str::to_string);
    let meta = |field: &str| obj.pointer(&format!("/metadata/{field}")).and_then(Value::as_str).map(str::to_string);
    let Some(user) = meta("user_id") else {
        return Ok((event_id, Normalized::Ignored { reason: "metadata.user_id is missing".into() }));
    };
    let payment = text(payment_field).ok_or_else(|| invalid(format!("data.object.{payment_field} is missing")))?;
    let currency = text("currency").ok_or_else(|| invalid("data.object.currency is missing"))?;
    let amount =
        obj.get(amount_field).and_then(Value::as_i64).ok_or_else(|| invalid(format!("{amount_field} is missing")))?;
    let occurred_at = body
        .get("created")
        .and_then(Value::as_i64)
        .and_then(|c| Utc.timestamp_opt(c, 0).single())
        .ok_or_else(|| invalid("the event has no `created` time (epoch seconds)"))?;
    // A refund of a charge says what the charge was: a refund of less is partial.
    let paid_amount = match kind {
        PaymentKind::Refunded => {
            let charged = obj.get("amount").and_then(Value::as_i64).ok_or_else(|| invalid("amount is missing"))?;
            Some(Amount::new(charged.max(amount)).map_err(invalid)?)
        }
        _ => None,
    };
    let event = PaymentEvent {
        kind,
        payment_id: PaymentId::parse(payment.clone()).map_err(invalid)?,
        order_id: OrderId::parse(meta("order_id").unwrap_or(payment)).map_err(invalid)?,
        user_id: UserId::parse(user).map_err(invalid)?,
        // Stripe amounts are in the currency's smallest unit, like ours (zero-decimal: KRW, JPY).
        amount: Money::new(amount, Currency::parse(&currency.to_ascii_uppercase()).map_err(invalid)?)
            .map_err(invalid)?,
        paid_amount,
        items: vec![],
        occurred_at,
        reservation_id: meta("reservation_id").map(ReservationId::parse).transpose().map_err(invalid)?,
    };
    Ok((event_id, Normalized::Event(event)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        crate::testing::at("2026-11-23T00:00:00Z")
    }

    fn portone_payment(status: &str, total: i64, paid: i64) -> PortOnePayment {
        serde_json::from_value(json!({
            "status": status, "id": "pay-po-1", "transactionId": "tx-1", "storeId": "store-1",
            "currency": "KRW", "amount": {"total": total, "paid": paid, "cancelled": 0, "taxFree": 0},
            "customer": {"id": "u-1", "name": "Kim"}, "customData": "{\"order_id\":\"ord-7\"}",
            "paidAt": "2026-11-22T12:00:00Z", "requestedAt": "2026-11-22T11:59:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn standard_bodies() {
        assert!(matches!(standard(&json!({"type": "payment.pending"})).unwrap(), Normalized::Ignored { .. }));
        assert!(standard(&json!({"type": "paid"})).is_err());
    }

    #[test]
    fn signed_bodies_that_are_not_events_are_refused_not_ignored() {
        for body in [
            json!([{"type": "paid"}]),
            json!("paid"),
            json!(42),
            json!(null),
            json!({}),
            json!({"type": 1}),
            json!({"type": null}),
            json!({"type": ""}),
            json!({"type": ["paid"]}),
        ] {
            assert_eq!(standard(&body).unwrap_err().status(), 400, "standard {body}");
            assert_eq!(portone(&body).unwrap_err().status(), 400, "portone {body}");
            let mut stripe_body = body.clone();
            if let Some(o) = stripe_body.as_object_mut() {
                o.insert("id".into(), json!("evt_1"));
            }
            assert_eq!(stripe(&stripe_body).unwrap_err().status(), 400, "stripe {stripe_body}");
        }
        // A well-formed event of a type we do not handle is acknowledged.
        assert!(matches!(portone(&json!({"type": "Transaction.Ready"})).unwrap(), Normalized::Ignored { .. }));
    }

    #[test]
    fn portone_webhooks_ask_for_a_lookup() {
        let body = json!({"type": "Transaction.Paid", "timestamp": "2026-11-22T12:00:00Z",
            "data": {"storeId": "store-1", "paymentId": "pay-po-1", "transactionId": "tx-1"}});
        assert_eq!(portone(&body).unwrap(), Normalized::Lookup { payment_id: PaymentId::parse("pay-po-1").unwrap() });
        for dots in [".", ".."] {
            let body = json!({"type": "Transaction.Paid", "data": {"paymentId": dots}});
            assert_eq!(portone(&body).unwrap_err().status(), 400, "`{dots}` names another PortOne URL");
        }
        let ready = json!({"type": "Transaction.Ready", "data": {"paymentId": "p"}});
        assert!(matches!(portone(&ready).unwrap(), Normalized::Ignored { .. }));
        assert!(portone(&json!({"type": "Transaction.Paid", "data": {}})).is_err());
    }

    #[test]
    fn portone_payments_become_events_only_when_fully_paid() {
        let Normalized::Event(e) = portone_event(&portone_payment("PAID", 52000, 52000), now()).unwrap() else {
            panic!("expected an event")
        };
        assert_eq!(e.kind, PaymentKind::Paid);
        assert_eq!(e.amount.amount.minor(), 52000);
        assert_eq!(e.order_id.as_str(), "ord-7");
        assert_eq!(e.user_id.as_str(), "u-1");
        assert_eq!(e.occurred_at, crate::testing::at("2026-11-22T12:00:00Z"));
        assert!(matches!(
            portone_event(&portone_payment("PAID", 52000, 100), now()).unwrap(),
            Normalized::Ignored { .. }
        ));
        assert!(matches!(
            portone_event(&portone_payment("READY", 52000, 0), now()).unwrap(),
            Normalized::Ignored { .. }
        ));
        let Normalized::Event(c) = portone_event(&portone_payment("CANCELLED", 52000, 52000), now()).unwrap() else {
            panic!("expected an event")
        };
        assert_eq!(c.kind, PaymentKind::Cancelled);
        let mut partial = portone_payment("PARTIAL_CANCELLED", 52000, 52000);
        partial.amount.cancelled = 12000;
        let Normalized::Event(p) = portone_event(&partial, now()).unwrap() else { panic!("expected an event") };
        assert_eq!((p.kind, p.amount.amount.minor()), (PaymentKind::Refunded, 12000));
        assert_eq!(p.still_paid().map(|a| a.minor()), Some(40000), "40,000 of 52,000 still paid");
    }

    #[test]
    fn a_reservation_rides_in_portone_custom_data_and_stripe_metadata() {
        let mut p = portone_payment("PAID", 50000, 50000);
        let Normalized::Event(e) = portone_event(&p, now()).unwrap() else { panic!("expected an event") };
        assert_eq!(e.reservation_id, None);
        p.custom_data = Some(r#"{"order_id":"ord-7","reservation_id":"r-42"}"#.into());
        let Normalized::Event(e) = portone_event(&p, now()).unwrap() else { panic!("expected an event") };
        assert_eq!(e.reservation_id.as_ref().map(|r| r.as_str()), Some("r-42"));
        assert_eq!(e.order_id.as_str(), "ord-7");
        p.custom_data = Some(r#"{"reservation_id":"bad id!"}"#.into());
        assert_eq!(portone_event(&p, now()).unwrap_err().status(), 400, "a malformed reservation id");
        let body = json!({"id": "evt_1", "type": "payment_intent.succeeded", "created": 1795400000,
            "data": {"object": {"id": "pi_1", "amount": 2000, "amount_received": 2000, "currency": "usd",
            "metadata": {"user_id": "u-9", "reservation_id": "r-7"}}}});
        let (_, Normalized::Event(e)) = stripe(&body).unwrap() else { panic!("expected an event") };
        assert_eq!(e.reservation_id.as_ref().map(|r| r.as_str()), Some("r-7"));
        // The canonical JSON carries it, and leaves it out when there is none.
        let json: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(json["reservation_id"], "r-7");
        assert_eq!(PaymentEvent::from_json(&e.to_json()).unwrap(), e);
        let plain = crate::testing::paid_event("p", 1, "2026-11-22T12:00:00Z");
        assert!(!String::from_utf8(plain.to_json()).unwrap().contains("reservation_id"));
    }

    #[test]
    fn stripe_events() {
        let body = json!({"id": "evt_1", "type": "payment_intent.succeeded", "created": 1795400000,
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 2000, "amount_received": 2000,
            "currency": "usd", "metadata": {"user_id": "u-9", "order_id": "ord-9"}}}});
        let (id, Normalized::Event(e)) = stripe(&body).unwrap() else { panic!("expected an event") };
        assert_eq!(id, "evt_1");
        assert_eq!((e.kind, e.payment_id.as_str(), e.amount.amount.minor()), (PaymentKind::Paid, "pi_1", 2000));
        assert_eq!(e.amount.currency.code(), "USD");
        let refund = json!({"id": "evt_2", "type": "charge.refunded", "created": 1795400000,
            "data": {"object": {"id": "ch_1", "payment_intent": "pi_1", "amount_refunded": 500, "currency": "usd",
            "metadata": {"user_id": "u-9"}}}});
        assert_eq!(stripe(&refund).unwrap_err().status(), 400, "a refund without the charge's amount");
        let refund = json!({"id": "evt_2", "type": "charge.refunded", "created": 1795400000,
            "data": {"object": {"id": "ch_1", "payment_intent": "pi_1", "amount": 2000, "amount_refunded": 500,
            "currency": "usd", "metadata": {"user_id": "u-9"}}}});
        let (_, Normalized::Event(r)) = stripe(&refund).unwrap() else { panic!("expected an event") };
        assert_eq!((r.kind, r.payment_id.as_str()), (PaymentKind::Refunded, "pi_1"));
        assert_eq!(r.still_paid().map(|a| a.minor()), Some(1500), "a partial refund: 1500 of 2000 still paid");
        let mut full = refund.clone();
        full["data"]["object"]["amount_refunded"] = json!(2000);
        let (_, Normalized::Event(f)) = stripe(&full).unwrap() else { panic!("expected an event") };
        assert_eq!(f.still_paid(), None, "all of it refunded");
        let mut undated = body.clone();
        undated.as_object_mut().unwrap().remove("created");
        let e = stripe(&undated).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("created"), "{e}");
        let no_user = json!({"id": "evt_3", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_2"}}});
        assert!(matches!(stripe(&no_user).unwrap().1, Normalized::Ignored { .. }));
        assert!(matches!(
            stripe(&json!({"id": "evt_4", "type": "customer.created"})).unwrap().1,
            Normalized::Ignored { .. }
        ));
        assert!(stripe(&json!({"type": "payment_intent.succeeded"})).is_err());
    }
}
