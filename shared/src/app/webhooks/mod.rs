//! Webhook signature schemes. Each verifies the raw body bytes, compares in constant time,
//! enforces a timestamp tolerance in both directions and accepts several active secrets.

pub mod standard;
pub mod stripe;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    #[error("header `{0}` appears more than once")]
    DuplicateHeader(&'static str),
    #[error("malformed signature headers: {0}")]
    Malformed(String),
    #[error("timestamp is older than the tolerance")]
    Stale,
    #[error("timestamp is further in the future than the tolerance")]
    Future,
    #[error("no signature matches any active secret")]
    NoMatch,
    #[error("misconfigured secret: {0}")]
    BadSecret(String),
}

/// Epoch seconds: ASCII digits only (no sign, no fraction), at most 12 of them.
pub(crate) fn parse_timestamp(raw: &str) -> Result<i64, SignatureError> {
    if raw.is_empty() || raw.len() > 12 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed(format!("timestamp `{}` is not epoch seconds", truncate(raw))));
    }
    raw.parse().map_err(|_| SignatureError::Malformed("timestamp out of range".into()))
}

pub(crate) fn check_tolerance(timestamp: i64, now: i64, tolerance: i64) -> Result<(), SignatureError> {
    if now - timestamp > tolerance {
        Err(SignatureError::Stale)
    } else if timestamp - now > tolerance {
        Err(SignatureError::Future)
    } else {
        Ok(())
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}
