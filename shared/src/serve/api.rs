//! The shoppers' HTTP API: runtime-neutral handlers over [`crate::http::Request`] /
//! [`crate::http::Response`], errors through the one mapping of [`ApiError`].
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /v1/campaigns/{id}/claims` | 201 and the claimed coupon (an `IssuedCoupon`) |
//! | `GET /v1/users/{user_id}/coupons` | 200 `{"user_id", "coupons": [...]}`, the caller's own wallet only |
//! | `GET /v1/products/{id}/max-benefit-price` | 200, the personal answer (`private, no-store`) for the token's shopper; the edge sends tokened reads here |
//! | `GET /v1/events/{id}` | 200, a limited event's status and places (public: `Cache-Control: public, max-age=1`) |
//! | `POST /v1/events/{id}/reservations` | 201 `RESERVED` with `hold_until` while places last, else 202 `WAITING` with `position` |
//! | `DELETE /v1/events/{id}/reservations/{rid}` | 200, the cancelled reservation (the owner's only: another's is 404) |
//! | `GET /v1/users/{user_id}/reservations` | 200 `{"user_id", "reservations": [...]}`, the caller's own only |
//! | `GET/POST /v1/unsubscribe?t=<token>` | a campaign email's unsubscribe page / one-click unsubscribe (no login: the signed token names the recipient; see `email::unsubscribe::serve`) |
//!
//! A claim or a reservation may carry an `Idempotency-Key` header (1–255 visible ASCII characters, as in the
//! IETF draft and Stripe's API): a client retry with the same key gets the first answer's
//! coupon again (201, `Idempotent-Replayed: true`) instead of claiming a second unit; the
//! key is scoped to the shopper and kept for 24 hours; reusing it for another campaign is
//! 422 `idempotency_key_reused`, and a retry while the first is still running is 409
//! `request_in_progress`. A failed claim (sold out, ...) keeps no record, so a retry runs
//! again.
//!
//! Both need `Authorization: Bearer <token>` (the [`ShopperTokens`] port): 401 `unauthorized` without a
//! valid one, 403 `forbidden` for another shopper's wallet. Claims answer 404
//! `campaign_not_found`, 409 `campaign_not_active` / `sold_out` / `claim_limit_reached`, 400
//! `invalid_id` for a malformed id, 503 `unavailable` (with `Retry-After`) when the store is
//! throttled or down after the claimer's retries. Answers are personal: `Cache-Control: no-store`.

use crate::domain::ids::CampaignId;
use crate::domain::ids::EventId;
use crate::domain::ids::ReservationId;
use crate::domain::ids::UserId;
use crate::events::{self, EventError, Events};
use crate::http::ApiError;
use crate::http::Request;
use crate::http::Response;
use crate::idempotency;
use crate::idempotency::IdempotencyConfig;
use crate::idempotency::IdempotencyError;
use crate::ports::store::Store;
use chrono::Duration;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::claims::ClaimError;
use crate::claims::Claimer;
use crate::http::Route;
use crate::ports::auth::{AuthError, ShopperTokens};
use crate::wallet;

pub struct Api<S> {
    pub claimer: Claimer<S>,
    pub auth: Box<dyn ShopperTokens>,
    /// Verifies unsubscribe links; `None`: `/v1/unsubscribe` answers 503.
    pub unsubscribe: Option<crate::email::unsubscribe::UnsubscribeKeys>,
}

impl<S: Store> Api<S> {
    pub fn new(claimer: Claimer<S>, auth: impl ShopperTokens + 'static) -> Self {
        Api { claimer, auth: Box::new(auth), unsubscribe: None }
    }

    /// Serves `/v1/unsubscribe` with these keys.
    pub fn with_unsubscribe(mut self, keys: crate::email::unsubscribe::UnsubscribeKeys) -> Self {
        self.unsubscribe = Some(keys);
        self
    }

    /// Serves `req` whole, as [`crate::serve::edge::Edge::respond`] does on the other side:
    /// the route table, then the route's handler. Never fails: errors become their answer.
    pub async fn respond(&self, req: &Request) -> Response {
        match Route::of(&req.method, &req.path) {
            Ok(route) => self.handle(route, req).await,
            Err(e) => e.respond(crate::http::request_id(req)),
        }
    }

    /// Serves `route`, matched by the caller. Never fails: errors become their HTTP answer.
    pub async fn handle(&self, route: Route<'_>, req: &Request) -> Response {
        let request_id = crate::http::request_id(req);
        let mut resp = match self.serve(route, req).await {
            Ok(r) => r,
            Err(e) => e.respond(request_id),
        };
        crate::http::stamp_request_id(&mut resp, request_id);
        if resp.header("cache-control").is_none() {
            resp.headers.push(("cache-control".into(), "no-store".into()));
        }
        resp
    }

    async fn serve(&self, route: Route<'_>, req: &Request) -> Result<Response, ApiError> {
        req.check_headers()?;
        match route {
            Route::Unsubscribe => {
                let keys = self.unsubscribe.as_ref().ok_or_else(|| {
                    ApiError::Unavailable("unsubscribe links are not configured (PROMO_UNSUBSCRIBE_SECRETS)".into())
                })?;
                let now = self.claimer.clock.now();
                Ok(crate::email::unsubscribe::serve(&self.claimer.store, keys, req, now).await)
            }
            Route::Claim { campaign } => {
                let shopper = self.shopper(req)?;
                let campaign = CampaignId::parse(campaign).map_err(|e| ApiError::InvalidId(e.to_string()))?;
                match idempotency_key(req)? {
                    None => {
                        let claimed = self.claimer.claim(&campaign, &shopper).await.map_err(claim_error)?;
                        Ok(Response::json(201, &claimed.coupon))
                    }
                    Some(key) => self.claim_once(&campaign, &shopper, key).await,
                }
            }
            Route::Wallet { user } => {
                let shopper = self.shopper(req)?;
                let user = UserId::parse(user).map_err(|e| ApiError::InvalidId(e.to_string()))?;
                if user != shopper {
                    return Err(ApiError::Forbidden("a shopper may only read their own coupons".into()));
                }
                let coupons = wallet::list(&self.claimer.store, &user).await.map_err(store_error)?;
                Ok(Response::json(200, &json!({"user_id": user, "coupons": coupons})))
            }
            Route::MaxBenefitPrice { product } => {
                let shopper = self.shopper(req)?;
                let store = &self.claimer.store;
                let personal = crate::pricing::catalog::personal(store, &shopper).await.map_err(store_error)?;
                let catalog = crate::pricing::catalog::StoreCatalog(store);
                let now = self.claimer.clock.now();
                let read = crate::pricing::prices::read(
                    &catalog,
                    &crate::ports::price_cache::NoCache,
                    req,
                    product,
                    Some(&personal),
                    now,
                    crate::pricing::prices::CachePolicy::default(),
                )
                .await?;
                Ok(read.response)
            }
            Route::Event { event } => {
                let event = EventId::parse(event).map_err(|e| ApiError::InvalidId(e.to_string()))?;
                let e = self.events().get(&event).await.map_err(event_error)?;
                let mut resp = Response::json(200, &e.view());
                resp.headers.push((
                    "cache-control".into(),
                    format!("public, max-age={}", crate::serve::edge::EVENT_CACHE_SECONDS),
                ));
                Ok(resp)
            }
            Route::Reserve { event } => {
                let shopper = self.shopper(req)?;
                let event = EventId::parse(event).map_err(|e| ApiError::InvalidId(e.to_string()))?;
                match idempotency_key(req)? {
                    None => {
                        let r = self.events().reserve(&event, &shopper).await.map_err(event_error)?;
                        Ok(reservation_response(&events::reservation_json(&r), false))
                    }
                    Some(key) => self.reserve_once(&event, &shopper, key).await,
                }
            }
            Route::CancelReservation { event, reservation } => {
                let shopper = self.shopper(req)?;
                let event = EventId::parse(event).map_err(|e| ApiError::InvalidId(e.to_string()))?;
                // A malformed id is the caller's mistake (400), as for every id in a path.
                ReservationId::parse(reservation).map_err(|e| ApiError::InvalidId(e.to_string()))?;
                let r = self.events().cancel(&event, &shopper, reservation).await.map_err(event_error)?;
                Ok(Response::json(200, &events::reservation_json(&r)))
            }
            Route::Reservations { user } => {
                let shopper = self.shopper(req)?;
                let user = UserId::parse(user).map_err(|e| ApiError::InvalidId(e.to_string()))?;
                if user != shopper {
                    return Err(ApiError::Forbidden("a shopper may only read their own reservations".into()));
                }
                let rs = self.events().reservations_of(&user).await.map_err(store_error)?;
                let rs: Vec<Value> = rs.iter().map(events::reservation_json).collect();
                Ok(Response::json(200, &json!({"user_id": user, "reservations": rs})))
            }
            _ => Err(ApiError::NotFound(format!("{} {}", req.method, req.path))),
        }
    }

    /// The limited events' use cases over this API's store, clock and ids.
    pub fn events(&self) -> Events<'_, S> {
        Events::new(&self.claimer.store, self.claimer.clock.as_ref(), self.claimer.ids.as_ref())
    }

    /// A reservation under the client's idempotency key: made at most once per (shopper, key);
    /// a retry gets the first answer (its status code too).
    async fn reserve_once(&self, event: &EventId, shopper: &UserId, key: &str) -> Result<Response, ApiError> {
        let record = idempotency::scoped_key("reserve", &[shopper.as_str(), key]);
        let payload = hex::encode(Sha256::digest(format!("event:{event}").as_bytes()));
        let run = || async {
            let r = self.events().reserve(event, shopper).await.map_err(ReserveOnce::Event)?;
            Ok::<Value, ReserveOnce>(events::reservation_json(&r))
        };
        let now = self.claimer.clock.now();
        let lease = self.claimer.ids.new_id();
        let store = &self.claimer.store;
        let (answer, replayed): (Value, bool) =
            idempotency::run_once(store, &record, &payload, &lease, now, &CLAIM_KEYS, run).await.map_err(
                |e| match e {
                    ReserveOnce::Event(e) => event_error(e),
                    ReserveOnce::Key(IdempotencyError::PayloadMismatch(_)) => ApiError::IdempotencyKeyReused(format!(
                        "idempotency key `{key}` was already used for another request"
                    )),
                    ReserveOnce::Key(IdempotencyError::InProgress(_) | IdempotencyError::LeaseLost(_)) => {
                        ApiError::RequestInProgress(key.to_string())
                    }
                    ReserveOnce::Key(IdempotencyError::Store(e)) => store_error(e),
                },
            )?;
        Ok(reservation_response(&answer, replayed))
    }

    /// A claim under the client's idempotency key: claimed at most once per (shopper, key).
    async fn claim_once(&self, campaign: &CampaignId, shopper: &UserId, key: &str) -> Result<Response, ApiError> {
        let record = idempotency::scoped_key("claim", &[shopper.as_str(), key]);
        let payload = hex::encode(Sha256::digest(campaign.as_str().as_bytes()));
        let run = || async {
            let claimed = self.claimer.claim(campaign, shopper).await.map_err(OnceError::Claim)?;
            serde_json::to_value(&claimed.coupon).map_err(|e| OnceError::Claim(ClaimError::Permanent(e.to_string())))
        };
        let now = self.claimer.clock.now();
        let lease = self.claimer.ids.new_id();
        let store = &self.claimer.store;
        let (coupon, replayed): (Value, bool) =
            idempotency::run_once(store, &record, &payload, &lease, now, &CLAIM_KEYS, run).await.map_err(
                |e| match e {
                    OnceError::Claim(e) => claim_error(e),
                    OnceError::Key(IdempotencyError::PayloadMismatch(_)) => ApiError::IdempotencyKeyReused(format!(
                        "idempotency key `{key}` was already used for another request"
                    )),
                    OnceError::Key(IdempotencyError::InProgress(_) | IdempotencyError::LeaseLost(_)) => {
                        ApiError::RequestInProgress(key.to_string())
                    }
                    OnceError::Key(IdempotencyError::Store(e)) => store_error(e),
                },
            )?;
        let mut resp = Response::json(201, &coupon);
        if replayed {
            resp.headers.push(("idempotent-replayed".into(), "true".into()));
        }
        Ok(resp)
    }

    /// The shopper of a request's bearer token: 401 `unauthorized` without a valid one.
    pub fn shopper(&self, req: &Request) -> Result<UserId, ApiError> {
        let mut values = req.header_values("authorization");
        self.auth.shopper(&mut values, self.claimer.clock.now()).map_err(|e| match e {
            AuthError::Missing => ApiError::Unauthorized(e.to_string()),
            // Never echo why a token failed beyond its category.
            AuthError::Invalid(_) => ApiError::Unauthorized("invalid token".into()),
            AuthError::Expired | AuthError::NotYetValid => ApiError::Unauthorized(e.to_string()),
        })
    }
}

/// How long a claim's idempotency key answers retries, and how long a crashed claim holds it.
const CLAIM_KEYS: IdempotencyConfig =
    IdempotencyConfig { record_ttl: Duration::hours(24), in_progress_ttl: Duration::seconds(30) };

enum ReserveOnce {
    Event(EventError),
    Key(IdempotencyError),
}

impl From<IdempotencyError> for ReserveOnce {
    fn from(e: IdempotencyError) -> Self {
        ReserveOnce::Key(e)
    }
}

/// 201 for a held place, 202 for a place in the waitlist.
fn reservation_response(r: &Value, replayed: bool) -> Response {
    let status = if r.get("status").and_then(Value::as_str) == Some("WAITING") { 202 } else { 201 };
    let mut resp = Response::json(status, r);
    if replayed {
        resp.headers.push(("idempotent-replayed".into(), "true".into()));
    }
    resp
}

fn event_error(e: EventError) -> ApiError {
    match e {
        EventError::NotFound(id) => ApiError::EventNotFound(id.to_string()),
        EventError::NotActive { .. } | EventError::Refused { .. } => ApiError::EventNotActive(e.to_string()),
        EventError::SoldOut(id) => ApiError::EventSoldOut(id.to_string()),
        EventError::AlreadyReserved { .. } => ApiError::AlreadyReserved(e.to_string()),
        EventError::LimitReached { .. } => ApiError::PurchaseLimitReached(e.to_string()),
        EventError::ReservationNotFound(rid) => ApiError::ReservationNotFound(rid),
        EventError::NotCancellable { .. } => ApiError::ReservationNotActive(e.to_string()),
        EventError::Busy(_) => ApiError::Unavailable(e.to_string()),
        EventError::Store(err) => store_error(err),
    }
}

enum OnceError {
    Claim(ClaimError),
    Key(IdempotencyError),
}

impl From<IdempotencyError> for OnceError {
    fn from(e: IdempotencyError) -> Self {
        OnceError::Key(e)
    }
}

/// The `Idempotency-Key` header, if any: one value of 1–255 visible ASCII characters.
fn idempotency_key(req: &Request) -> Result<Option<&str>, ApiError> {
    let mut values = req.header_values("idempotency-key");
    let Some(key) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(ApiError::InvalidHeader("send one Idempotency-Key header, not several".into()));
    }
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::InvalidHeader("Idempotency-Key must be 1-255 visible ASCII characters".into()));
    }
    Ok(Some(key))
}

fn store_error(e: crate::ports::store::StoreError) -> ApiError {
    if e.is_retryable() { ApiError::Unavailable(e.to_string()) } else { ApiError::Internal(e.to_string()) }
}

fn claim_error(e: ClaimError) -> ApiError {
    match e {
        ClaimError::NotFound(c) => ApiError::CampaignNotFound(c.to_string()),
        ClaimError::NotActive { .. } | ClaimError::NoClaims(_) => ApiError::CampaignNotActive(e.to_string()),
        ClaimError::SoldOut(c) => ApiError::SoldOut(c.to_string()),
        ClaimError::LimitReached { .. } => ApiError::ClaimLimitReached(e.to_string()),
        ClaimError::Transient(err) => ApiError::Unavailable(format!("the store is busy, retry shortly: {err}")),
        ClaimError::Permanent(msg) => ApiError::Internal(msg),
    }
}
