//! Stripe webhook signatures: `Stripe-Signature: t=<epoch>,v1=<hex>[,v1=<hex>…][,v0=…]`.
//! The MAC is HMAC-SHA256 over `t.raw_body`, keyed with the endpoint secret's bytes as
//! written (`whsec_…`, not decoded). During a secret roll Stripe sends several `v1`.

use super::{HmacKey, SignatureError, any_signed, single_header};

pub const HEADER: &str = "stripe-signature";

/// An endpoint secret; its bytes are the key.
#[derive(Clone, Debug)]
pub struct Secret(HmacKey);

impl Secret {
    pub fn parse(s: &str) -> Result<Secret, SignatureError> {
        HmacKey::new(s.as_bytes().to_vec()).map(Secret)
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> [u8; 32] {
        self.0.mac(&[timestamp.to_string().as_bytes(), b".", body])
    }

    /// The header value Stripe would send.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        format!("t={timestamp},v1={}", hex::encode(self.mac(timestamp, body)))
    }
}

/// Verifies a delivery (its headers and raw body); returns the signed timestamp. The delivery id (the event id) is in the
/// body and is read by the caller after verification.
pub fn verify(
    secrets: &[Secret],
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<i64, SignatureError> {
    let header = single_header(headers, HEADER)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => {
                let earlier = timestamp.replace(t);
                if earlier.is_some() {
                    return Err(SignatureError::Malformed("more than one t= in the signature header".into()));
                }
            }
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    candidates.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = super::parse_timestamp(timestamp.ok_or_else(|| SignatureError::Malformed("no t=".into()))?)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature".into()));
    }
    super::check_tolerance(timestamp, now, tolerance)?;
    if any_signed(secrets.iter().map(|s| &s.0), &candidates, &[timestamp.to_string().as_bytes(), b".", body]) {
        return Ok(timestamp);
    }
    Err(SignatureError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Request;

    fn verify_req(secrets: &[Secret], r: &Request, now: i64, tolerance: i64) -> Result<i64, SignatureError> {
        verify(secrets, &r.headers, &r.body, now, tolerance)
    }

    // The payload and secret of Stripe's SDK webhook tests; the expected MAC computed
    // independently (Python's hmac) for t = 1614265330.
    const SECRET: &str = "whsec_test_secret";
    const BODY: &str = "{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
    const T: i64 = 1614265330;
    const MAC: &str = "af4ead0627a34a8cca29808e8de9ada8e41a92e6237c63cef6eacf51d36cca34";
    const OTHER_MAC: &str = "31dcec375596722940176d21ec9348891df9156268f0a2e05e36f80801a0b836";

    fn req(header: &str, body: &str) -> Request {
        Request::new("POST", "/v1/webhooks/stripe").header(HEADER, header).body(body)
    }

    fn secrets() -> Vec<Secret> {
        vec![Secret::parse(SECRET).unwrap()]
    }

    #[test]
    fn signs_and_verifies_the_reference_vector() {
        assert_eq!(Secret::parse(SECRET).unwrap().sign(T, BODY.as_bytes()), format!("t={T},v1={MAC}"));
        assert_eq!(verify_req(&secrets(), &req(&format!("t={T},v1={MAC}"), BODY), T, 300), Ok(T));
    }

    #[test]
    fn a_roll_sends_several_v1_and_v0_is_ignored() {
        let header = format!(
            "t={T},v1={OTHER_MAC},v1={MAC},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
        );
        assert_eq!(verify_req(&secrets(), &req(&header, BODY), T, 300), Ok(T));
        let rotated = vec![Secret::parse("whsec_other_secret").unwrap(), Secret::parse(SECRET).unwrap()];
        assert_eq!(verify_req(&rotated, &req(&format!("t={T},v1={MAC}"), BODY), T, 300), Ok(T));
        let only_v0 = format!("t={T},v0={MAC}");
        assert!(matches!(verify_req(&secrets(), &req(&only_v0, BODY), T, 300), Err(SignatureError::Malformed(_))));
    }

    #[test]
    fn tampering_and_wrong_secrets_fail() {
        let good = format!("t={T},v1={MAC}");
        assert_eq!(
            verify_req(&secrets(), &req(&good, &BODY.replace("evt_", "evt-")), T, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_req(&secrets(), &req(&format!("t={},v1={MAC}", T + 1), BODY), T, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_req(&[Secret::parse("whsec_other_secret").unwrap()], &req(&good, BODY), T, 300),
            Err(SignatureError::NoMatch)
        );
        let flipped = format!("t={T},v1={}", MAC.replace('a', "b"));
        assert_eq!(verify_req(&secrets(), &req(&flipped, BODY), T, 300), Err(SignatureError::NoMatch));
    }

    #[test]
    fn tolerance_both_ways_and_malformed_headers() {
        let good = format!("t={T},v1={MAC}");
        assert_eq!(verify_req(&secrets(), &req(&good, BODY), T + 301, 300), Err(SignatureError::Stale));
        assert_eq!(verify_req(&secrets(), &req(&good, BODY), T - 301, 300), Err(SignatureError::Future));
        for bad in [
            "",
            "garbage",
            &format!("v1={MAC}"),
            &format!("t=-1,v1={MAC}"),
            &format!("t=abc,v1={MAC}"),
            &format!("t={T},t={T},v1={MAC}"),
            &format!("t={T},v1=zz"),
        ] {
            assert!(verify_req(&secrets(), &req(bad, BODY), T, 300).is_err(), "accepted {bad:?}");
        }
        let missing = Request::new("POST", "/").body(BODY);
        assert_eq!(verify_req(&secrets(), &missing, T, 300), Err(SignatureError::MissingHeader(HEADER)));
        let dup = req(&good, BODY).header(HEADER, &good);
        assert_eq!(verify_req(&secrets(), &dup, T, 300), Err(SignatureError::DuplicateHeader(HEADER)));
    }
}
