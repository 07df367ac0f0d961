//! PortOne's payment API as `promoctl dev` stands in for it: `GET /payments/{paymentId}`
//! answers as PortOne V2 does (the fields the platform reads, `Authorization: PortOne
//! <secret>` required, `404 PAYMENT_NOT_FOUND` for an unknown payment), for the payments that
//! `promoctl webhook trigger --provider portone` records first with `PUT /payments/{id}`. The
//! local platform's look-ups (a PortOne webhook, the shop's client callback
//! `POST /v1/payments/{id}/complete`) then go through the same HTTP client as in production.
//!
//! Served under [`PATH`] on `promoctl dev`'s own address, kept in `<data dir>/portone/`.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::webhook_events::{Kind, Payment};

/// Where the stand-in is served on `promoctl dev`'s address (its API base).
pub const PATH: &str = "/dev/portone";

/// The API secret the local platform presents to the stand-in. Development only.
pub const DEV_PORTONE_API_SECRET: &str = "promo-dev-portone-api-secret";

/// The stand-in's router (to nest under [`PATH`]), keeping payments under `dir`.
pub fn router(dir: &Path) -> Router {
    Router::new().route("/payments/{id}", get(read).put(record)).with_state(dir.to_path_buf())
}

/// The payment as PortOne V2's `GET /payments/{paymentId}` describes it after `kind`.
pub fn payment_json(kind: Kind, p: &Payment) -> Value {
    let at = p.at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let cancelled = match kind {
        Kind::Paid => 0,
        Kind::Cancelled => p.amount,
        Kind::Refunded => p.refunded.unwrap_or(p.amount).min(p.amount),
    };
    let status = match kind {
        Kind::Paid => "PAID",
        Kind::Refunded if cancelled < p.amount => "PARTIAL_CANCELLED",
        _ => "CANCELLED",
    };
    let mut custom = json!({"order_id": p.order_id});
    if let Some(rid) = &p.reservation_id {
        custom["reservation_id"] = json!(rid);
    }
    let mut payment = json!({
        "status": status,
        "id": p.payment_id,
        "transactionId": format!("tx-{}", p.payment_id),
        "merchantId": "merchant-dev",
        "storeId": "store-dev",
        "orderName": format!("order {}", p.order_id),
        "currency": p.currency,
        "amount": {"total": p.amount, "paid": p.amount, "cancelled": cancelled},
        "customer": {"id": p.user_id},
        "customData": custom.to_string(),
        "requestedAt": at,
        "updatedAt": at,
        "paidAt": at,
    });
    if kind != Kind::Paid {
        payment["cancelledAt"] = json!(at);
    }
    payment
}

fn file(dir: &Path, id: &str) -> Option<PathBuf> {
    // Payment ids as file names: anything but [A-Za-z0-9_-] is refused.
    let ok =
        !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| dir.join(format!("{id}.json")))
}

/// A JSON answer (axum's `Json` needs a feature this crate does not build).
type Answer = (StatusCode, [(&'static str, &'static str); 1], String);

fn answer(status: StatusCode, body: &Value) -> Answer {
    (status, [("content-type", "application/json")], body.to_string())
}

fn error(status: StatusCode, kind: &str, message: String) -> Answer {
    answer(status, &json!({"type": kind, "message": message}))
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("PortOne {DEV_PORTONE_API_SECRET}"))
}

async fn read(State(dir): State<PathBuf>, UrlPath(id): UrlPath<String>, headers: HeaderMap) -> Answer {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Authorization: PortOne <secret> is wrong".into());
    }
    let Some(path) = file(&dir, &id) else {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", format!("`{id}` is not a payment id here"));
    };
    match tokio::fs::read(&path).await.ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
        Some(payment) => answer(StatusCode::OK, &payment),
        None => error(StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND", format!("payment `{id}` not found")),
    }
}

async fn record(State(dir): State<PathBuf>, UrlPath(id): UrlPath<String>, body: Bytes) -> Answer {
    let Some(path) = file(&dir, &id) else {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", format!("`{id}` is not a payment id here"));
    };
    let payment: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", format!("not JSON: {e}")),
    };
    // What the platform's client will read must parse as PortOne's payment.
    if let Err(e) = serde_json::from_value::<promo_shared::payments::providers::PortOnePayment>(payment.clone()) {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", format!("not a PortOne payment: {e}"));
    }
    if payment.get("id").and_then(Value::as_str) != Some(id.as_str()) {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "the payment's id is not the path's".into());
    }
    let written = async {
        tokio::fs::create_dir_all(&dir).await?;
        let tmp = dir.join(format!(".{id}.tmp"));
        tokio::fs::write(&tmp, serde_json::to_vec_pretty(&payment)?).await?;
        tokio::fs::rename(&tmp, &path).await
    };
    match written.await {
        Ok(()) => answer(StatusCode::OK, &payment),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", format!("cannot record the payment: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use promo_shared::domain::payment::PaymentKind;
    use promo_shared::payments::providers::{self, Normalized};

    use super::*;

    fn payment() -> Payment {
        Payment {
            provider: "portone".into(),
            payment_id: "pay-1".into(),
            order_id: "o-1".into(),
            user_id: "u-1".into(),
            amount: 52000,
            currency: "KRW".into(),
            refunded: None,
            at: "2031-01-02T03:04:05Z".parse().unwrap(),
            reservation_id: Some("r-1".into()),
        }
    }

    /// The platform's own reading of PortOne's answer gives back the payment: kind, user,
    /// order, amounts, time and the reservation in customData.
    #[test]
    fn the_platform_reads_the_stand_ins_payments_as_portones() {
        for (kind, refunded, expected, amount) in [
            (Kind::Paid, None, PaymentKind::Paid, 52000),
            (Kind::Cancelled, None, PaymentKind::Cancelled, 52000),
            (Kind::Refunded, Some(2000), PaymentKind::Refunded, 2000),
        ] {
            let json = payment_json(kind, &Payment { refunded, ..payment() });
            let p: providers::PortOnePayment = serde_json::from_value(json.clone()).unwrap();
            let Normalized::Event(e) = providers::portone_event(&p, chrono::Utc::now()).unwrap() else {
                panic!("{json}")
            };
            assert_eq!((e.kind, e.payment_id.as_str(), e.user_id.as_str()), (expected, "pay-1", "u-1"), "{json}");
            assert_eq!((e.order_id.as_str(), e.amount.amount.minor()), ("o-1", amount), "{json}");
            assert_eq!(e.reservation_id.map(|r| r.to_string()).as_deref(), Some("r-1"));
            assert_eq!(e.occurred_at, payment().at);
        }
    }

    #[test]
    fn payment_ids_are_safe_file_names() {
        let dir = Path::new("/tmp/x");
        assert!(file(dir, "pay_1-a").is_some());
        for bad in ["", "../etc/passwd", "a/b", "a.json", "with space"] {
            assert!(file(dir, bad).is_none(), "{bad}");
        }
    }
}
