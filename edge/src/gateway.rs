//! The webhook gateway: verify → parse → dedupe by delivery id → (look up) → hand off → answer.
//!
//! A delivery is marked completed only after the hand-off succeeded; if the hand-off
//! fails the sender gets a 5xx and its retry goes through. A replay gets the first answer.
//! The shop's own client callback (`POST /v1/payments/{id}/complete`) flows into the same
//! pipeline: it carries no trust, so the payment is looked up at the provider.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use promo_shared::idempotency::Begin;
use promo_shared::payment::PaymentEvent;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{EdgeConfig, Provider};
use crate::error::EdgeError;
use crate::http::{Request, Response};
use crate::providers::{self, Normalized, PortOnePayment};
use crate::webhook::{standard, stripe};

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

/// The provider's own record of a payment (PortOne V2 API).
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait PaymentLookup {
    /// `None` when the provider does not know the payment.
    async fn portone_payment(&self, payment_id: &str) -> Result<Option<PortOnePayment>, EdgeError>;
}

/// The three ports of the gateway.
pub struct Ports<'a, L: ?Sized, H: ?Sized, P: ?Sized> {
    pub ledger: &'a L,
    pub handoff: &'a H,
    pub lookup: &'a P,
}

pub async fn handle_webhook<L, H, P>(
    cfg: &EdgeConfig,
    ports: Ports<'_, L, H, P>,
    provider_name: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response, EdgeError>
where
    L: DeliveryLedger + ?Sized,
    H: HandOff + ?Sized,
    P: PaymentLookup + ?Sized,
{
    let provider = Provider::parse(provider_name).ok_or_else(|| EdgeError::UnknownProvider(provider_name.into()))?;
    check_size(cfg, req)?;
    if !cfg.has_secrets(provider) {
        return Err(EdgeError::ProviderNotConfigured(provider.name().into()));
    }
    let bad_signature = |e: crate::webhook::SignatureError| EdgeError::InvalidSignature(e.to_string());
    let now_s = now.timestamp();
    let tolerance = cfg.tolerance_seconds;
    let signed_id = match provider {
        Provider::Standard => {
            Some(standard::verify(&cfg.standard_secrets, req, now_s, tolerance).map_err(bad_signature)?)
        }
        Provider::PortOne => {
            Some(standard::verify(&cfg.portone_secrets, req, now_s, tolerance).map_err(bad_signature)?)
        }
        Provider::Stripe => {
            stripe::verify(&cfg.stripe_secrets, req, now_s, tolerance).map_err(bad_signature)?;
            None
        }
    };

    let body = std::str::from_utf8(&req.body).map_err(|_| EdgeError::InvalidBody("body is not UTF-8".into()))?;
    let value: Value =
        serde_json::from_str(body).map_err(|e| EdgeError::InvalidBody(format!("body is not JSON: {e}")))?;
    let (delivery_id, normalized) = match (provider, signed_id) {
        (Provider::Standard, Some(v)) => (v.delivery_id, providers::standard(&value)?),
        (Provider::PortOne, Some(v)) => (v.delivery_id, providers::portone(&value)?),
        _ => providers::stripe(&value)?,
    };
    let key = format!("webhook:{}:{delivery_id}", provider.name());
    let hash = hex::encode(Sha256::digest(&req.body));
    process(ports, &key, &hash, &delivery_id, normalized, now).await
}

/// `POST /v1/payments/{payment_id}/complete`: the shop's client reports a PortOne payment.
pub async fn handle_callback<L, H, P>(
    cfg: &EdgeConfig,
    ports: Ports<'_, L, H, P>,
    payment_id: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response, EdgeError>
where
    L: DeliveryLedger + ?Sized,
    H: HandOff + ?Sized,
    P: PaymentLookup + ?Sized,
{
    check_size(cfg, req)?;
    if payment_id.is_empty() || payment_id.len() > 128 || payment_id.chars().any(|c| c.is_control() || c == '/') {
        return Err(EdgeError::InvalidBody("the payment id in the path is not valid".into()));
    }
    let key = format!("callback:portone:{payment_id}");
    let hash = hex::encode(Sha256::digest(payment_id.as_bytes()));
    let normalized = Normalized::Lookup { payment_id: payment_id.to_string() };
    process(ports, &key, &hash, payment_id, normalized, now).await
}

async fn process<L, H, P>(
    ports: Ports<'_, L, H, P>,
    key: &str,
    hash: &str,
    delivery_id: &str,
    normalized: Normalized,
    now: DateTime<Utc>,
) -> Result<Response, EdgeError>
where
    L: DeliveryLedger + ?Sized,
    H: HandOff + ?Sized,
    P: PaymentLookup + ?Sized,
{
    if let Normalized::Ignored { reason } = &normalized {
        // Acknowledge what we do not handle: a 4xx would make the sender retry for days.
        return Ok(ignored(delivery_id, reason));
    }
    match ports.ledger.begin(key, hash, now).await? {
        Begin::Completed(mut answer) => {
            answer["duplicate"] = Value::Bool(true);
            Ok(Response::json(200, &answer))
        }
        Begin::Started => match resolve_and_hand_off(&ports, normalized, now).await {
            Ok(event) => {
                let answer = json!({
                    "status": "accepted",
                    "delivery_id": delivery_id,
                    "payment_id": event.payment_id,
                    "type": event.kind,
                    "duplicate": false,
                });
                ports.ledger.complete(key, &answer, now).await?;
                Ok(Response::json(200, &answer))
            }
            Err(not_accepted) => {
                // Free the delivery so a later report is looked at afresh (a payment not final
                // yet, a failed hand-off). If this fails too, the lease expires.
                let _ = ports.ledger.release(key).await;
                match not_accepted {
                    Resolved::Ignored(reason) => Ok(ignored(delivery_id, &reason)),
                    Resolved::Failed(e) => Err(e),
                }
            }
        },
    }
}

/// Why an event was not handed off.
enum Resolved {
    Ignored(String),
    Failed(EdgeError),
}

async fn resolve_and_hand_off<L, H, P>(
    ports: &Ports<'_, L, H, P>,
    normalized: Normalized,
    now: DateTime<Utc>,
) -> Result<PaymentEvent, Resolved>
where
    L: DeliveryLedger + ?Sized,
    H: HandOff + ?Sized,
    P: PaymentLookup + ?Sized,
{
    let event = match normalized {
        Normalized::Event(e) => e,
        Normalized::Ignored { reason } => return Err(Resolved::Ignored(reason)),
        Normalized::Lookup { payment_id } => {
            let payment = match ports.lookup.portone_payment(&payment_id).await.map_err(Resolved::Failed)? {
                Some(p) => p,
                None => {
                    return Err(Resolved::Failed(EdgeError::NotFound(format!("payment `{payment_id}` at PortOne"))));
                }
            };
            match providers::portone_event(&payment, now).map_err(Resolved::Failed)? {
                Normalized::Event(e) => e,
                Normalized::Ignored { reason } => return Err(Resolved::Ignored(reason)),
                Normalized::Lookup { .. } => {
                    return Err(Resolved::Failed(EdgeError::Internal("a look-up asked for another".into())));
                }
            }
        }
    };
    ports.handoff.hand_off(&event).await.map_err(Resolved::Failed)?;
    Ok(event)
}

fn ignored(delivery_id: &str, reason: &str) -> Response {
    Response::json(200, &json!({"status": "ignored", "delivery_id": delivery_id, "reason": reason}))
}

fn check_size(cfg: &EdgeConfig, req: &Request) -> Result<(), EdgeError> {
    let declared = req.header_values("content-length").next().and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > cfg.max_body_bytes) || req.body.len() > cfg.max_body_bytes {
        return Err(EdgeError::PayloadTooLarge { limit: cfg.max_body_bytes });
    }
    Ok(())
}
