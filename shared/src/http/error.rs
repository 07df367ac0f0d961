//! Every way an edge request can fail, and its one mapping to an HTTP status and the JSON
//! body `{"error": {"code", "message"}}`.

use thiserror::Error;

use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method {method} is not allowed here; use {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("unknown webhook provider `{0}`")]
    UnknownProvider(String),
    #[error("webhook provider `{0}` has no secret configured")]
    ProviderNotConfigured(String),
    #[error("body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    InvalidBody(String),
    /// A quote request whose values break the pricing rules.
    #[error("{0}")]
    InvalidQuote(String),
    /// A malformed request header.
    #[error("{0}")]
    InvalidHeader(String),
    /// A malformed id in the path.
    #[error("{0}")]
    InvalidId(String),
    /// A signed link token that is forged, altered or missing.
    #[error("{0}")]
    InvalidToken(String),
    /// Missing, invalid or expired credentials (answered with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed to touch this resource.
    #[error("{0}")]
    Forbidden(String),
    #[error("campaign `{0}` does not exist")]
    CampaignNotFound(String),
    #[error("{0}")]
    CampaignNotActive(String),
    #[error("campaign `{0}` is sold out")]
    SoldOut(String),
    #[error("{0}")]
    ClaimLimitReached(String),
    #[error("{0}")]
    Conflict(String),
    #[error("event `{0}` does not exist")]
    EventNotFound(String),
    /// Not open for reservations (not started, ended, cancelled).
    #[error("{0}")]
    EventNotActive(String),
    /// Every place is paid for (or the waitlist is closed).
    #[error("event `{0}` is sold out")]
    EventSoldOut(String),
    /// The shopper already holds or waits for a place in this event.
    #[error("{0}")]
    AlreadyReserved(String),
    /// The shopper bought as many places as the event allows.
    #[error("{0}")]
    PurchaseLimitReached(String),
    #[error("reservation `{0}` does not exist")]
    ReservationNotFound(String),
    /// A paid or ended reservation cannot be cancelled.
    #[error("{0}")]
    ReservationNotActive(String),
    #[error("delivery `{0}` is being processed; retry shortly")]
    InProgress(String),
    /// A client retry whose idempotency key is still being worked on.
    #[error("a request with idempotency key `{0}` is being processed; retry shortly")]
    RequestInProgress(String),
    /// An idempotency key reused for a different request.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// Too many requests from one client, or for one resource, in the current window.
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound(_)
            | ApiError::UnknownProvider(_)
            | ApiError::CampaignNotFound(_)
            | ApiError::EventNotFound(_)
            | ApiError::ReservationNotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::InvalidSignature(_) | ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::InvalidBody(_)
            | ApiError::InvalidHeader(_)
            | ApiError::InvalidId(_)
            | ApiError::InvalidToken(_) => 400,
            ApiError::IdempotencyKeyReused(_) | ApiError::InvalidQuote(_) => 422,
            ApiError::Conflict(_)
            | ApiError::InProgress(_)
            | ApiError::RequestInProgress(_)
            | ApiError::CampaignNotActive(_)
            | ApiError::SoldOut(_)
            | ApiError::ClaimLimitReached(_)
            | ApiError::EventNotActive(_)
            | ApiError::EventSoldOut(_)
            | ApiError::AlreadyReserved(_)
            | ApiError::PurchaseLimitReached(_)
            | ApiError::ReservationNotActive(_) => 409,
            ApiError::RateLimited(_) => 429,
            ApiError::ProviderNotConfigured(_) | ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UnknownProvider(_) => "unknown_provider",
            ApiError::ProviderNotConfigured(_) => "provider_not_configured",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::InvalidHeader(_) => "invalid_header",
            ApiError::InvalidQuote(_) => "invalid_quote",
            ApiError::InvalidId(_) => "invalid_id",
            ApiError::InvalidToken(_) => "invalid_token",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::CampaignNotFound(_) => "campaign_not_found",
            ApiError::CampaignNotActive(_) => "campaign_not_active",
            ApiError::SoldOut(_) => "sold_out",
            ApiError::ClaimLimitReached(_) => "claim_limit_reached",
            ApiError::Conflict(_) => "conflict",
            ApiError::EventNotFound(_) => "event_not_found",
            ApiError::EventNotActive(_) => "event_not_active",
            ApiError::EventSoldOut(_) => "sold_out",
            ApiError::AlreadyReserved(_) => "already_reserved",
            ApiError::PurchaseLimitReached(_) => "per_user_limit_reached",
            ApiError::ReservationNotFound(_) => "reservation_not_found",
            ApiError::ReservationNotActive(_) => "reservation_not_active",
            ApiError::InProgress(_) => "in_progress",
            ApiError::RequestInProgress(_) => "request_in_progress",
            ApiError::IdempotencyKeyReused(_) => "idempotency_key_reused",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The HTTP response for this error.
    pub fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut resp = Response::json(self.status(), &body);
        match &self {
            ApiError::MethodNotAllowed { allow, .. } => resp.headers.push(("allow".into(), (*allow).into())),
            ApiError::Unauthorized(_) => resp.headers.push(("www-authenticate".into(), "Bearer".into())),
            ApiError::InProgress(_)
            | ApiError::RequestInProgress(_)
            | ApiError::Unavailable(_)
            | ApiError::ProviderNotConfigured(_) => resp.headers.push(("retry-after".into(), "5".into())),
            ApiError::RateLimited(_) => resp.headers.push(("retry-after".into(), "60".into())),
            _ => {}
        }
        resp
    }
}
