//! The webhook gateway: verify → parse → dedupe by delivery id → hand off → answer.
//!
//! A delivery is marked completed only after the hand-off succeeded; if the hand-off
//! fails the sender gets a 5xx and its retry goes through. A replay gets the first answer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use promo_shared::idempotency::Begin;
use promo_shared::payment::PaymentEvent;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{EdgeConfig, Provider};
use crate::error::EdgeError;
use crate::http::{Request, Response};
use crate::webhook::standard;

/// Strongly consistent record of deliveries (a Durable Object at the edge, the store locally).
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait DeliveryLedger {
    /// Takes the delivery, or returns the stored answer of a completed one. Errors:
    /// `Conflict` (same id, other body), `InProgress`, `Unavailable`.
    async fn begin(&self, key: &str, payload_hash: &str, now: DateTime<Utc>) -> Result<Begin, EdgeError>;
    async fn complete(&self, key: &str, answer: &Value, now: DateTime<Utc>) -> Result<(), EdgeError>;
    async fn release(&self, key: &str) -> Result<(), EdgeError>;
}

/// Durable hand-off of a verified event to the coupon issuer.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait HandOff {
    async fn hand_off(&self, event: &PaymentEvent) -> Result<(), EdgeError>;
}

const HANDLED_TYPES: [&str; 3] = ["paid", "cancelled", "refunded"];

pub async fn handle_webhook<L: DeliveryLedger + ?Sized, H: HandOff + ?Sized>(
    cfg: &EdgeConfig,
    ledger: &L,
    handoff: &H,
    provider_name: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response, EdgeError> {
    let provider = Provider::parse(provider_name).ok_or_else(|| EdgeError::UnknownProvider(provider_name.into()))?;
    check_size(cfg, req)?;
    let secrets = cfg.secrets(provider);
    if secrets.is_empty() {
        return Err(EdgeError::ProviderNotConfigured(provider.name().into()));
    }
    let verified = standard::verify(secrets, req, now.timestamp(), cfg.tolerance_seconds)
        .map_err(|e| EdgeError::InvalidSignature(e.to_string()))?;

    let body = std::str::from_utf8(&req.body).map_err(|_| EdgeError::InvalidBody("body is not UTF-8".into()))?;
    let value: Value =
        serde_json::from_str(body).map_err(|e| EdgeError::InvalidBody(format!("body is not JSON: {e}")))?;
    let kind = value.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    if !HANDLED_TYPES.contains(&kind.as_str()) {
        // Acknowledge what we do not handle: a 4xx would make the sender retry for days.
        return Ok(Response::json(
            200,
            &json!({"status": "ignored", "delivery_id": verified.delivery_id, "type": kind}),
        ));
    }
    let event: PaymentEvent =
        serde_json::from_value(value).map_err(|e| EdgeError::InvalidBody(format!("not a payment event: {e}")))?;

    let key = format!("webhook:{}:{}", provider.name(), verified.delivery_id);
    let hash = hex::encode(Sha256::digest(&req.body));
    match ledger.begin(&key, &hash, now).await? {
        Begin::Completed(mut answer) => {
            answer["duplicate"] = Value::Bool(true);
            Ok(Response::json(200, &answer))
        }
        Begin::Started => {
            if let Err(e) = handoff.hand_off(&event).await {
                // Let the sender's retry through at once; if this fails too, the lease expires.
                let _ = ledger.release(&key).await;
                return Err(e);
            }
            let answer = json!({
                "status": "accepted",
                "delivery_id": verified.delivery_id,
                "payment_id": event.payment_id,
                "type": kind,
                "duplicate": false,
            });
            ledger.complete(&key, &answer, now).await?;
            Ok(Response::json(200, &answer))
        }
    }
}

fn check_size(cfg: &EdgeConfig, req: &Request) -> Result<(), EdgeError> {
    let declared = req.header_values("content-length").next().and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > cfg.max_body_bytes) || req.body.len() > cfg.max_body_bytes {
        return Err(EdgeError::PayloadTooLarge { limit: cfg.max_body_bytes });
    }
    Ok(())
}
