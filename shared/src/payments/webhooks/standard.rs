//! Standard Webhooks v1 (<https://www.standardwebhooks.com/>), also used by PortOne V2:
//! headers `webhook-id`, `webhook-timestamp` (epoch seconds) and `webhook-signature`
//! (space-separated `v1,<base64 HMAC-SHA256>` entries; other versions ignored). The MAC is
//! over `id.timestamp.raw_body` keyed with the base64-decoded secret (after `whsec_`).

use super::{HmacKey, SignatureError, any_signed, single_header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// A signing secret: `whsec_<base64>` (or bare base64).
#[derive(Clone, Debug)]
pub struct Secret(HmacKey);

impl Secret {
    pub fn parse(s: &str) -> Result<Secret, SignatureError> {
        let b64 = s.strip_prefix("whsec_").unwrap_or(s);
        let key = B64
            .decode(b64)
            .map_err(|_| SignatureError::BadSecret("a Standard Webhooks secret is `whsec_` + base64".into()))?;
        HmacKey::new(key).map(Secret)
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        self.0.mac(&signed_parts(id, &timestamp.to_string(), body))
    }

    /// The `webhook-signature` value a sender would put: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(id, timestamp, body)))
    }
}

/// A delivery that passed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub delivery_id: String,
    pub timestamp: i64,
}

/// Verifies a delivery (its headers and raw body) against any of the active `secrets` (rotation), with `tolerance`
/// seconds of clock difference allowed in both directions.
pub fn verify(
    secrets: &[Secret],
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<Verified, SignatureError> {
    let id = single_header(headers, HEADER_ID)?;
    let ts_raw = single_header(headers, HEADER_TIMESTAMP)?;
    let sig_header = single_header(headers, HEADER_SIGNATURE)?;
    if id.is_empty() || id.len() > 256 {
        return Err(SignatureError::Malformed(format!("{HEADER_ID} must be 1..=256 characters")));
    }
    let timestamp = super::parse_timestamp(ts_raw)?;
    super::check_tolerance(timestamp, now, tolerance)?;

    let candidates: Vec<Vec<u8>> = sig_header
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| B64.decode(sig).ok())
        .collect();
    if candidates.is_empty() {
        return Err(SignatureError::Malformed(format!("{HEADER_SIGNATURE} has no v1 signature")));
    }
    let ts = timestamp.to_string();
    if any_signed(secrets.iter().map(|s| &s.0), &candidates, &signed_parts(id, &ts, body)) {
        return Ok(Verified { delivery_id: id.to_string(), timestamp });
    }
    Err(SignatureError::NoMatch)
}

/// What is signed: `id.timestamp.body`.
fn signed_parts<'a>(id: &'a str, timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 5] {
    [id.as_bytes(), b".", timestamp.as_bytes(), b".", body]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Request;

    fn verify_req(secrets: &[Secret], r: &Request, now: i64, tolerance: i64) -> Result<Verified, SignatureError> {
        verify(secrets, &r.headers, &r.body, now, tolerance)
    }

    // The published test vector of the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn req(id: &str, ts: &str, sig: &str, body: &str) -> Request {
        Request::new("POST", "/v1/webhooks/standard")
            .header(HEADER_ID, id)
            .header(HEADER_TIMESTAMP, ts)
            .header(HEADER_SIGNATURE, sig)
            .body(body)
    }

    fn secrets() -> Vec<Secret> {
        vec![Secret::parse(SECRET).unwrap()]
    }

    #[test]
    fn signs_the_reference_vector() {
        assert_eq!(Secret::parse(SECRET).unwrap().sign(ID, TS, BODY.as_bytes()), SIG);
    }

    #[test]
    fn verifies_the_reference_vector() {
        let v = verify_req(&secrets(), &req(ID, &TS.to_string(), SIG, BODY), TS, 300).unwrap();
        assert_eq!(v, Verified { delivery_id: ID.into(), timestamp: TS });
    }

    #[test]
    fn several_signatures_and_unknown_versions() {
        let header = format!("v2,abc v1,Zm9vYmFy {SIG} v1a,xyz");
        assert!(verify_req(&secrets(), &req(ID, &TS.to_string(), &header, BODY), TS, 300).is_ok());
    }

    #[test]
    fn rotated_secrets_any_active_one_verifies() {
        let old = Secret::parse("whsec_c2VjcmV0LW9sZA==").unwrap();
        let both = vec![old, Secret::parse(SECRET).unwrap()];
        assert!(verify_req(&both, &req(ID, &TS.to_string(), SIG, BODY), TS, 300).is_ok());
        let only_old = vec![Secret::parse("whsec_c2VjcmV0LW9sZA==").unwrap()];
        assert_eq!(verify_req(&only_old, &req(ID, &TS.to_string(), SIG, BODY), TS, 300), Err(SignatureError::NoMatch));
    }

    #[test]
    fn tampering_is_rejected() {
        let ts = TS.to_string();
        assert_eq!(
            verify_req(&secrets(), &req(ID, &ts, SIG, r#"{"test": 2432232315}"#), TS, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(verify_req(&secrets(), &req("msg_other", &ts, SIG, BODY), TS, 300), Err(SignatureError::NoMatch));
        let bad_sig = SIG.replace("g0h", "g1h");
        assert_eq!(verify_req(&secrets(), &req(ID, &ts, &bad_sig, BODY), TS, 300), Err(SignatureError::NoMatch));
        // Same MAC, timestamp moved: the timestamp is signed.
        assert_eq!(
            verify_req(&secrets(), &req(ID, &(TS + 1).to_string(), SIG, BODY), TS, 300),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn timestamps_outside_tolerance_either_way() {
        let ts = TS.to_string();
        assert!(verify_req(&secrets(), &req(ID, &ts, SIG, BODY), TS + 300, 300).is_ok());
        assert_eq!(verify_req(&secrets(), &req(ID, &ts, SIG, BODY), TS + 301, 300), Err(SignatureError::Stale));
        assert_eq!(verify_req(&secrets(), &req(ID, &ts, SIG, BODY), TS - 301, 300), Err(SignatureError::Future));
    }

    #[test]
    fn malformed_headers() {
        for ts in ["", "abc", "-1614265330", "+1614265330", "1614265330.5", "99999999999999999999"] {
            assert!(
                matches!(verify_req(&secrets(), &req(ID, ts, SIG, BODY), TS, 300), Err(SignatureError::Malformed(_))),
                "timestamp {ts:?}"
            );
        }
        for sig in ["", "v1", "v1,", "v1,!!!", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="] {
            assert!(
                verify_req(&secrets(), &req(ID, &TS.to_string(), sig, BODY), TS, 300).is_err(),
                "signature {sig:?}"
            );
        }
        let missing = Request::new("POST", "/").header(HEADER_ID, ID).header(HEADER_TIMESTAMP, "1").body(BODY);
        assert_eq!(verify_req(&secrets(), &missing, TS, 300), Err(SignatureError::MissingHeader(HEADER_SIGNATURE)));
        let dup = req(ID, &TS.to_string(), SIG, BODY).header(HEADER_ID, "msg_2");
        assert_eq!(verify_req(&secrets(), &dup, TS, 300), Err(SignatureError::DuplicateHeader(HEADER_ID)));
    }

    #[test]
    fn secrets_must_be_base64() {
        assert!(Secret::parse("whsec_!!!").is_err());
        assert!(Secret::parse("whsec_").is_err());
        assert_eq!(format!("{:?}", Secret::parse(SECRET).unwrap()), "Secret(***)");
    }
}
