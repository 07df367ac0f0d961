//! Every way an edge request can fail, and its one mapping to an HTTP status and the JSON
//! body `{"error": {"code", "message"}}`.

use thiserror::Error;

use crate::http::Response;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EdgeError {
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

impl EdgeError {
    pub fn status(&self) -> u16 {
        match self {
            EdgeError::NotFound(_) | EdgeError::UnknownProvider(_) | EdgeError::CampaignNotFound(_) => 404,
            EdgeError::MethodNotAllowed { .. } => 405,
            EdgeError::PayloadTooLarge { .. } => 413,
            EdgeError::InvalidSignature(_) | EdgeError::Unauthorized(_) => 401,
            EdgeError::Forbidden(_) => 403,
            EdgeError::InvalidBody(_) | EdgeError::InvalidHeader(_) | EdgeError::InvalidId(_) => 400,
            EdgeError::IdempotencyKeyReused(_) | EdgeError::InvalidQuote(_) => 422,
            EdgeError::Conflict(_)
            | EdgeError::InProgress(_)
            | EdgeError::RequestInProgress(_)
            | EdgeError::CampaignNotActive(_)
            | EdgeError::SoldOut(_)
            | EdgeError::ClaimLimitReached(_) => 409,
            EdgeError::RateLimited(_) => 429,
            EdgeError::ProviderNotConfigured(_) | EdgeError::Unavailable(_) => 503,
            EdgeError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            EdgeError::NotFound(_) => "not_found",
            EdgeError::MethodNotAllowed { .. } => "method_not_allowed",
            EdgeError::UnknownProvider(_) => "unknown_provider",
            EdgeError::ProviderNotConfigured(_) => "provider_not_configured",
            EdgeError::PayloadTooLarge { .. } => "payload_too_large",
            EdgeError::InvalidSignature(_) => "invalid_signature",
            EdgeError::InvalidBody(_) => "invalid_body",
            EdgeError::InvalidHeader(_) => "invalid_header",
            EdgeError::InvalidQuote(_) => "invalid_quote",
            EdgeError::InvalidId(_) => "invalid_id",
            EdgeError::Unauthorized(_) => "unauthorized",
            EdgeError::Forbidden(_) => "forbidden",
            EdgeError::CampaignNotFound(_) => "campaign_not_found",
            EdgeError::CampaignNotActive(_) => "campaign_not_active",
            EdgeError::SoldOut(_) => "sold_out",
            EdgeError::ClaimLimitReached(_) => "claim_limit_reached",
            EdgeError::Conflict(_) => "conflict",
            EdgeError::InProgress(_) => "in_progress",
            EdgeError::RequestInProgress(_) => "request_in_progress",
            EdgeError::IdempotencyKeyReused(_) => "idempotency_key_reused",
            EdgeError::RateLimited(_) => "rate_limited",
            EdgeError::Unavailable(_) => "unavailable",
            EdgeError::Internal(_) => "internal",
        }
    }

    /// The HTTP response for this error.
    pub fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut resp = Response::json(self.status(), &body);
        match &self {
            EdgeError::MethodNotAllowed { allow, .. } => resp.headers.push(("allow".into(), (*allow).into())),
            EdgeError::Unauthorized(_) => resp.headers.push(("www-authenticate".into(), "Bearer".into())),
            EdgeError::InProgress(_)
            | EdgeError::RequestInProgress(_)
            | EdgeError::Unavailable(_)
            | EdgeError::ProviderNotConfigured(_) => resp.headers.push(("retry-after".into(), "5".into())),
            EdgeError::RateLimited(_) => resp.headers.push(("retry-after".into(), "60".into())),
            _ => {}
        }
        resp
    }
}
