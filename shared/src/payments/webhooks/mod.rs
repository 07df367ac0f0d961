//! Webhook signature schemes. Each verifies the raw body bytes, compares in constant time,
//! enforces a timestamp tolerance in both directions and accepts several active secrets.

pub mod standard;
pub mod stripe;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::http::header_values;

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

/// An HMAC-SHA256 signing key, never shown by `Debug`.
#[derive(Clone)]
pub(crate) struct HmacKey(Vec<u8>);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl HmacKey {
    pub(crate) fn new(key: Vec<u8>) -> Result<HmacKey, SignatureError> {
        if key.is_empty() {
            return Err(SignatureError::BadSecret("the secret is empty".into()));
        }
        Ok(HmacKey(key))
    }

    /// The MAC of `parts`, concatenated.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length.
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// Whether one of the active keys signed `parts` with one of the `candidates` (compared in
/// constant time).
pub(crate) fn any_signed<'a>(
    keys: impl IntoIterator<Item = &'a HmacKey>,
    candidates: &[Vec<u8>],
    parts: &[&[u8]],
) -> bool {
    keys.into_iter().any(|key| {
        let expected = key.mac(parts);
        candidates.iter().any(|c| bool::from(c.as_slice().ct_eq(&expected)))
    })
}

/// The one value of a header that must appear exactly once, trimmed.
pub(crate) fn single_header<'a>(
    headers: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, SignatureError> {
    let mut values = header_values(headers, name);
    let first = values.next().ok_or(SignatureError::MissingHeader(name))?;
    if values.next().is_some() {
        return Err(SignatureError::DuplicateHeader(name));
    }
    Ok(first.trim())
}
