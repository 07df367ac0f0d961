//! Every way an edge request can fail, and its one mapping to an HTTP status and the JSON
//! body `{"error": {"code", "message"}}`, for every runtime.
//!
//! A server-side failure (500 `internal`, 503 `unavailable`) answers in fixed words for the
//! shop: its detail — an AWS SDK message can name a role ARN or an account id, a fetch error
//! an internal address — goes to the log only, with the request id, which the answer carries
//! as `error.request_id` so the shop can quote it.

use thiserror::Error;

use super::Response;

/// What a 500 `internal` answer says.
pub const INTERNAL_MESSAGE: &str =
    "something went wrong on our side; retry later, and quote the request id if it persists";
/// What a 503 `unavailable` answer says.
pub const UNAVAILABLE_MESSAGE: &str = "a service this request needs is unavailable right now; retry shortly";

/// Adds `error.request_id` to a 5xx error answer that has none (one built without the
/// request at hand); other answers are left as they are.
pub fn stamp_request_id(resp: &mut Response, request_id: Option<&str>) {
    let Some(id) = request_id else { return };
    if resp.status < 500 {
        return;
    }
    let mut body = resp.json_body();
    let Some(error) = body.get_mut("error").and_then(serde_json::Value::as_object_mut) else { return };
    if error.contains_key("request_id") {
        return;
    }
    error.insert("request_id".into(), id.into());
    if let Ok(bytes) = serde_json::to_vec(&body) {
        resp.body = bytes;
    }
}

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

    /// What the answer says: the error's own words, except for a server-side failure
    /// (`Internal`, `Unavailable`), whose detail is never shown, only logged.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => INTERNAL_MESSAGE.into(),
            ApiError::Unavailable(_) => UNAVAILABLE_MESSAGE.into(),
            other => other.to_string(),
        }
    }

    /// The HTTP response for this error, for a request whose id is not known (see
    /// [`ApiError::respond`]).
    pub fn into_response(self) -> Response {
        self.respond(None)
    }

    /// The HTTP response for this error to the request `request_id`: a 5xx carries the id as
    /// `error.request_id`, and the detail of a server-side failure is logged with it (an
    /// error for `internal`, a warning for `unavailable`) instead of being answered.
    pub fn respond(self, request_id: Option<&str>) -> Response {
        match &self {
            ApiError::Internal(detail) => {
                tracing::error!(code = self.code(), request_id = request_id.unwrap_or("-"), detail = %detail, "internal error");
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(code = self.code(), request_id = request_id.unwrap_or("-"), detail = %detail, "unavailable");
            }
            _ => {}
        }
        let mut error = serde_json::json!({"code": self.code(), "message": self.public_message()});
        if let (true, Some(id)) = (self.status() >= 500, request_id) {
            error["request_id"] = id.into();
        }
        let mut resp = Response::json(self.status(), &serde_json::json!({ "error": error }));
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

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:iam::123456789012:role/promo-prod-ApiRole";

    #[test]
    fn a_server_side_failure_answers_in_words_for_the_shop_with_the_request_id() {
        let e = ApiError::Unavailable(format!("dispatch failure: AccessDenied: User: {ARN} is not authorized"));
        let resp = e.respond(Some("req-42"));
        let text = String::from_utf8(resp.body.clone()).unwrap();
        assert!(!text.contains("arn:aws") && !text.contains("123456789012"), "{text}");
        assert!(!text.contains("AccessDenied") && !text.contains("dispatch failure"), "{text}");
        assert_eq!(resp.status, 503);
        assert_eq!(resp.header("retry-after"), Some("5"));
        let body = resp.json_body();
        assert_eq!(body["error"]["code"], "unavailable");
        assert_eq!(body["error"]["message"], UNAVAILABLE_MESSAGE);
        assert_eq!(body["error"]["request_id"], "req-42");

        let resp = ApiError::Internal(format!("store: {ARN}")).respond(Some("req-43"));
        let text = String::from_utf8(resp.body.clone()).unwrap();
        assert!(!text.contains("arn:aws") && !text.contains("123456789012"), "{text}");
        assert_eq!((resp.status, resp.json_body()["error"]["request_id"].as_str()), (500, Some("req-43")));
        assert_eq!(resp.json_body()["error"]["message"], INTERNAL_MESSAGE);
    }

    #[test]
    fn client_errors_and_a_missing_provider_secret_keep_their_words_and_no_request_id() {
        let resp = ApiError::InvalidBody("body is not JSON: expected value".into()).respond(Some("req-1"));
        let body = resp.json_body();
        assert_eq!(body["error"]["message"], "body is not JSON: expected value");
        assert!(body["error"].get("request_id").is_none());
        let resp = ApiError::ProviderNotConfigured("stripe".into()).respond(Some("req-2"));
        let body = resp.json_body();
        assert_eq!(body["error"]["message"], "webhook provider `stripe` has no secret configured");
        assert_eq!(body["error"]["request_id"], "req-2", "every 5xx carries the id");
    }

    #[test]
    fn a_5xx_answer_built_without_the_request_is_stamped_with_its_id() {
        let mut resp = ApiError::Internal("not a replay".into()).into_response();
        assert!(resp.json_body()["error"].get("request_id").is_none());
        stamp_request_id(&mut resp, Some("req-7"));
        assert_eq!(resp.json_body()["error"]["request_id"], "req-7");
        let mut stamped = ApiError::Unavailable("x".into()).respond(Some("req-8"));
        stamp_request_id(&mut stamped, Some("req-9"));
        assert_eq!(stamped.json_body()["error"]["request_id"], "req-8", "an id already there stays");
        let mut ok = Response::json(200, &serde_json::json!({"error": {}}));
        stamp_request_id(&mut ok, Some("req-10"));
        assert!(ok.json_body()["error"].get("request_id").is_none(), "only 5xx answers");
    }
}
