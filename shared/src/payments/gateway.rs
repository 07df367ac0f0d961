//! The webhook gateway: verify → parse → dedupe by delivery id → (look up) → hand off → answer.
//!
//! A delivery is marked completed only after the hand-off succeeded; if the hand-off
//! fails the sender gets a 5xx and its retry goes through. A replay gets the first answer,
//! exactly as it was given, marked `Idempotent-Replayed: true`.
//! The shop's own client callback (`POST /v1/payments/{id}/complete`) flows into the same
//! pipeline: it carries no trust, so the payment is looked up at the provider.

use crate::domain::ids::PaymentId;
use crate::domain::payment::PaymentEvent;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::EdgeConfig;

use crate::config::Provider;
use crate::http::ApiError;
use crate::http::Request;
use crate::http::Response;
use crate::payments::providers;
use crate::payments::providers::Normalized;

use crate::payments::webhooks::standard;
use crate::payments::webhooks::stripe;
use crate::ports::handoff::HandOff;
use crate::ports::ledger::{DeliveryLedger, Taken};
use crate::ports::lookup::PaymentLookup;
use crate::ports::rate_limit::{LimitScope, LimiterUnavailable, RateLimiter};

/// The queue the gateway hands payment events to, and the issuer consumes.
pub const PAYMENT_EVENTS_QUEUE: &str = "payment-events";

/// The ports of the gateway.
pub struct Ports<'a, L: ?Sized, H: ?Sized, P: ?Sized, R: ?Sized> {
    pub ledger: &'a L,
    pub handoff: &'a H,
    pub lookup: &'a P,
    pub limiter: &'a R,
    /// The accepting request's id (`x-request-id`), handed on with the event.
    pub request_id: Option<&'a str>,
}

/// How long an accepted delivery answers its replays (longer than any provider's retry span).
pub const ACCEPTED_KEEP: Duration = Duration::days(7);
/// How long a client callback's "not final yet" or "unknown payment" answer is remembered:
/// within it, more callbacks for that payment get the same answer without a PortOne call.
pub const DEFAULT_CALLBACK_RECHECK: Duration = Duration::seconds(10);

pub async fn handle_webhook<L, H, P, R>(
    cfg: &EdgeConfig,
    ports: Ports<'_, L, H, P, R>,
    provider_name: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response, ApiError>
where
    L: DeliveryLedger + ?Sized,
    H: HandOff + ?Sized,
    P: PaymentLookup + ?Sized,
    R: RateLimiter + ?Sized,
{
    let provider = Provider::parse(provider_name).ok_or_else(|| ApiError::UnknownProvider(provider_name.into()))?;
    check_size(cfg, req)?;
    if !cfg.has_secrets(provider) {
        return Err(ApiError::ProviderNotConfigured(provider.name().into()));
    }
    let bad_signature = |e: crate::payments::webhooks::SignatureError| ApiError::InvalidSignature(e.to_string());
    let now_s = now.timestamp();
    let tolerance = cfg.tolerance_seconds;
    let signed_id = match provider {
        Provider::Standard => Some(
            standard::verify(&cfg.standard_secrets, &req.headers, &req.body, now_s, tolerance)
                .map_err(bad_signature)?,
        ),
        Provider::PortOne => Some(
            standard::verify(&cfg.portone_secrets, &req.headers, &req.body, now_s, tolerance).map_err(bad_signature)?,
        ),
        Provider::Stripe => {
            stripe::verify(&cfg.stripe_secrets, &req.headers, &req.body, now_s, tolerance).map_err(bad_signature)?;
            None
        }
    };

    let body = std::str::from_utf8(&req.body).map_err(|_| ApiError::InvalidBody("body is not UTF-8".into()))?;
    let value: Value =
        serde_json::from_str(body).map_err(|e| ApiError::InvalidBody(format!("body is not JSON: {e}")))?;
    let (delivery_id, normalized) = match (provider, signed_id) {
        (Provider::Standard, Some(v)) => (v.delivery_id, providers::standard(&value)?),
        (Provider::PortOne, Some(v)) => (v.delivery_id, providers::portone(&value)?),
        _ => providers::stripe(&value)?,
    };
    if let Normalized::Ignored { reason } = &normalized {
        // Acknowledge what we do not handle: a 4xx would make the sender retry for days.
        return Ok(ignored(&delivery_id, reason).into_response());
    }
    let key = format!("webhook:{}:{delivery_id}", provider.name());
    let hash = hex::encode(Sha256::digest(&req.body));
    let taken = ports.ledger.begin(&key, &hash, now).await?;
    let Taken::Run { lease } = taken else { return Ok(replay(taken)) };
    match resolve_and_hand_off(&ports, normalized, now).await {
        Ok(event) => {
            let answer = accepted(&delivery_id, &event);
            ports.ledger.complete(&key, &lease, &answer.stored(), now, ACCEPTED_KEEP).await?;
            Ok(answer.into_response())
        }
        Err(not_accepted) => {
            // Free the delivery so the provider's next attempt is looked at afresh (a payment
            // not final yet, a failed hand-off). If this fails too, the lease expires.
            let _ = ports.ledger.release(&key, &lease).await;
            match not_accepted {
                Resolved::Ignored(reason) => Ok(ignored(&delivery_id, &reason).into_response()),
                Resolved::NotFound(e) | Resolved::Failed(e) => Err(e),
            }
        }
    }
}

/// `POST /v1/payments/{payment_id}/complete`: the shop's client reports a PortOne payment.
///
/// It carries no trust (the payment is looked up at PortOne), so it is bounded: with
/// `PROMO_CALLBACK_TOKENS` set it needs one of the shop's tokens; every callback counts
/// against a limit per client and per payment; and an answer that a payment is unknown or
/// not final is remembered for `cfg.callback_recheck`, so repeating the call does not repeat
/// the look-up. The webhook has its own delivery key, so none of this delays it. A limiter
/// that cannot count (at the edge: a missing or failing binding) makes the callback 503
/// `unavailable`: the limits fail closed.
pub async fn handle_callback<L, H, P, R>(
    cfg: &EdgeConfig,
    ports: Ports<'_, L, H, P, R>,
    payment_id: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response, ApiError>
where
    L: DeliveryLedger + ?Sized,
    H: HandOff + ?Sized,
    P: PaymentLookup + ?Sized,
    R: RateLimiter + ?Sized,
{
    check_size(cfg, req)?;
    let payment_id = PaymentId::parse(payment_id).map_err(|e| ApiError::InvalidId(e.to_string()))?;
    check_shop_token(cfg, req)?;
    // A limiter that cannot count refuses the callback (503): it never lets it through.
    let unlimited = |e: LimiterUnavailable| ApiError::Unavailable(e.to_string());
    if let Some(client) = req.client.as_deref()
        && !ports.limiter.allow(LimitScope::CallbackClient, client).await.map_err(unlimited)?
    {
        return Err(ApiError::RateLimited("too many payment callbacks from this client; retry later".into()));
    }
    if !ports.limiter.allow(LimitScope::CallbackPayment, payment_id.as_str()).await.map_err(unlimited)? {
        return Err(ApiError::RateLimited(format!("too many callbacks for payment `{payment_id}`; retry later")));
    }
    let key = format!("callback:portone:{payment_id}");
    let hash = hex::encode(Sha256::digest(payment_id.as_str().as_bytes()));
    let taken = ports.ledger.begin(&key, &hash, now).await?;
    let Taken::Run { lease } = taken else { return Ok(replay(taken)) };
    let delivery_id = payment_id.to_string();
    let normalized = Normalized::Lookup { payment_id };
    let (answer, keep) = match resolve_and_hand_off(&ports, normalized, now).await {
        Ok(event) => (accepted(&delivery_id, &event), ACCEPTED_KEEP),
        Err(Resolved::Ignored(reason)) => (ignored(&delivery_id, &reason), cfg.callback_recheck),
        Err(Resolved::NotFound(e)) => (Answer::error(e), cfg.callback_recheck),
        Err(Resolved::Failed(e)) => {
            let _ = ports.ledger.release(&key, &lease).await;
            return Err(e);
        }
    };
    ports.ledger.complete(&key, &lease, &answer.stored(), now, keep).await?;
    Ok(answer.into_response())
}

/// With shop tokens configured, a callback needs `Authorization: Bearer <one of them>`.
fn check_shop_token(cfg: &EdgeConfig, req: &Request) -> Result<(), ApiError> {
    if cfg.callback_tokens.is_empty() {
        return Ok(());
    }
    let mut values = req.header_values("authorization");
    let presented = values.next().and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    match presented {
        Some(token) if values.next().is_none() && cfg.callback_tokens.iter().any(|t| t.matches(token)) => Ok(()),
        _ => {
            Err(ApiError::Unauthorized("payment callbacks need the shop's token: Authorization: Bearer <token>".into()))
        }
    }
}

/// An answer as the ledger stores it for replays: the status and the body.
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn error(e: ApiError) -> Answer {
        let resp = e.into_response();
        Answer { status: resp.status, body: resp.json_body() }
    }

    fn stored(&self) -> Value {
        json!({"status": self.status, "body": self.body})
    }

    fn into_response(self) -> Response {
        Response::json(self.status, &self.body)
    }
}

/// A stored answer, replayed as it was first given, with `Idempotent-Replayed: true`.
fn replay(taken: Taken) -> Response {
    let Taken::Replay(stored) = taken else { return ApiError::Internal("not a replay".into()).into_response() };
    let status = stored.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok());
    let mut resp = match (status, stored.get("body")) {
        (Some(status), Some(body)) => Response::json(status, body),
        // Answers stored before statuses were: the body of a 200.
        _ => Response::json(200, &stored),
    };
    resp.headers.push(("idempotent-replayed".into(), "true".into()));
    resp
}

fn accepted(delivery_id: &str, event: &PaymentEvent) -> Answer {
    Answer {
        status: 200,
        body: json!({
            "status": "accepted",
            "delivery_id": delivery_id,
            "payment_id": event.payment_id,
            "type": event.kind,
        }),
    }
}

/// Why an event was not handed off.
enum Resolved {
    Ignored(String),
    /// The provider does not know the payment.
    NotFound(ApiError),
    Failed(ApiError),
}

async fn resolve_and_hand_off<L, H, P, R>(
    ports: &Ports<'_, L, H, P, R>,
    normalized: Normalized,
    now: DateTime<Utc>,
) -> Result<PaymentEvent, Resolved>
where
    L: DeliveryLedger + ?Sized,
    H: HandOff + ?Sized,
    P: PaymentLookup + ?Sized,
    R: RateLimiter + ?Sized,
{
    let event = match normalized {
        Normalized::Event(e) => e,
        Normalized::Ignored { reason } => return Err(Resolved::Ignored(reason)),
        Normalized::Lookup { payment_id } => {
            let payment = match ports.lookup.portone_payment(&payment_id).await.map_err(Resolved::Failed)? {
                Some(p) => p,
                None => {
                    return Err(Resolved::NotFound(ApiError::NotFound(format!("payment `{payment_id}` at PortOne"))));
                }
            };
            match providers::portone_event(&payment, now).map_err(Resolved::Failed)? {
                Normalized::Event(e) => e,
                Normalized::Ignored { reason } => return Err(Resolved::Ignored(reason)),
                Normalized::Lookup { .. } => {
                    return Err(Resolved::Failed(ApiError::Internal("a look-up asked for another".into())));
                }
            }
        }
    };
    ports.handoff.hand_off(&event, ports.request_id).await.map_err(Resolved::Failed)?;
    Ok(event)
}

fn ignored(delivery_id: &str, reason: &str) -> Answer {
    Answer { status: 200, body: json!({"status": "ignored", "delivery_id": delivery_id, "reason": reason}) }
}

fn check_size(cfg: &EdgeConfig, req: &Request) -> Result<(), ApiError> {
    let declared = req.header_values("content-length").next().and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > cfg.max_body_bytes) || req.body.len() > cfg.max_body_bytes {
        return Err(ApiError::PayloadTooLarge { limit: cfg.max_body_bytes });
    }
    Ok(())
}
