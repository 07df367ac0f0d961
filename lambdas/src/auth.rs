//! Shopper authentication: HS256 bearer JWTs signed with `PROMO_SHOPPER_JWT_SECRET`.
//!
//! A token carries `sub` (the shopper's user id), `exp` (epoch seconds), `iss` (who issued it:
//! `PROMO_SHOPPER_JWT_ISSUER`, default [`DEFAULT_ISSUER`]) and `aud` (who it is for:
//! `PROMO_SHOPPER_JWT_AUDIENCE`, default [`DEFAULT_AUDIENCE`]), all required and checked, so a
//! token the shop's identity provider minted for another service with the same secret is
//! refused. `iat` and `nbf` are optional (`nbf` is honoured when present). Expiry is checked
//! against the injected clock with a small leeway for clock skew. The algorithm is pinned to
//! HS256 (no `none`, no algorithm confusion). The signature is verified by `jsonwebtoken`
//! (RustCrypto backend).

use std::fmt;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use promo_shared::domain::ids::UserId;
use promo_shared::ports::auth::ShopperTokens;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: i64 = 30;
/// Shortest secret accepted: HS256 wants at least as many key bytes as its output (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;
/// The `iss` shopper tokens carry unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "shop";
/// The `aud` shopper tokens carry unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "promo-platform";

pub use promo_shared::ports::auth::AuthError;

#[derive(Debug, Error)]
#[error("PROMO_SHOPPER_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long (it is {0})")]
pub struct WeakSecret(usize);

/// The claims of a shopper token (`iss` and `aud` are checked by the validation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopperClaims {
    pub sub: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Who issues shopper tokens and who they are for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenScope {
    pub issuer: String,
    pub audience: String,
}

impl Default for TokenScope {
    fn default() -> Self {
        TokenScope { issuer: DEFAULT_ISSUER.into(), audience: DEFAULT_AUDIENCE.into() }
    }
}

/// Verifies (and, for development tooling, mints) shopper tokens: the JWT adapter of the
/// core's [`ShopperTokens`] port.
#[derive(Clone)]
pub struct ShopperAuth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    scope: TokenScope,
}

impl fmt::Debug for ShopperAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShopperAuth(HS256, iss {:?}, aud {:?}, secret ***)", self.scope.issuer, self.scope.audience)
    }
}

impl ShopperAuth {
    /// Tokens of the default issuer and audience.
    pub fn new(secret: &[u8]) -> Result<ShopperAuth, WeakSecret> {
        ShopperAuth::scoped(secret, TokenScope::default())
    }

    /// Tokens that must name `scope`'s issuer and audience.
    pub fn scoped(secret: &[u8], scope: TokenScope) -> Result<ShopperAuth, WeakSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret(secret.len()));
        }
        // `Validation::new` pins the algorithm list to HS256 alone.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[scope.issuer.as_str()]);
        validation.set_audience(&[scope.audience.as_str()]);
        // Time is checked against the injected clock below, not the crate's system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(ShopperAuth {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            scope,
        })
    }

    /// A token for `user`, valid for `ttl` from `now`.
    pub fn mint(&self, user: &UserId, now: DateTime<Utc>, ttl: chrono::Duration) -> String {
        let claims = ShopperClaims {
            sub: user.as_str().to_string(),
            exp: (now + ttl).timestamp(),
            iss: Some(self.scope.issuer.clone()),
            aud: Some(self.scope.audience.clone()),
            iat: Some(now.timestamp()),
            nbf: None,
        };
        // HS256 signing of serialisable claims with an HMAC key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    /// The shopper a token names, if its signature, `sub` and times are valid at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<UserId, AuthError> {
        let data = jsonwebtoken::decode::<ShopperClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let now = now.timestamp();
        if claims.exp.saturating_add(LEEWAY_SECONDS) <= now {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf.saturating_sub(LEEWAY_SECONDS) > now) {
            return Err(AuthError::NotYetValid);
        }
        UserId::parse(claims.sub).map_err(|e| AuthError::Invalid(e.to_string()))
    }

    /// The shopper of a request's `Authorization: Bearer <token>` header (exactly one).
    pub fn verify_header<'a>(
        &self,
        mut values: impl Iterator<Item = &'a str>,
        now: DateTime<Utc>,
    ) -> Result<UserId, AuthError> {
        let value = values.next().ok_or(AuthError::Missing)?;
        if values.next().is_some() {
            return Err(AuthError::Invalid("more than one Authorization header".into()));
        }
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        self.verify(token.trim(), now)
    }
}

impl ShopperTokens for ShopperAuth {
    fn shopper(&self, authorization: &mut dyn Iterator<Item = &str>, now: DateTime<Utc>) -> Result<UserId, AuthError> {
        self.verify_header(authorization, now)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let auth = ShopperAuth::new(SECRET).unwrap();
        let u = UserId::parse("u-1").unwrap();
        let now = t("2026-11-27T10:00:00Z");
        let tok = auth.mint(&u, now, chrono::Duration::minutes(10));
        assert_eq!(auth.verify(&tok, now).unwrap(), u);
        let within_leeway = now + chrono::Duration::minutes(10) + chrono::Duration::seconds(LEEWAY_SECONDS - 1);
        assert_eq!(auth.verify(&tok, within_leeway).unwrap(), u);
        let late = now + chrono::Duration::minutes(10) + chrono::Duration::seconds(LEEWAY_SECONDS);
        assert_eq!(auth.verify(&tok, late), Err(AuthError::Expired));
    }

    #[test]
    fn wrong_secret_tampering_and_missing_claims_are_refused() {
        let auth = ShopperAuth::new(SECRET).unwrap();
        let other = ShopperAuth::new(b"another-secret-another-secret-32").unwrap();
        let now = t("2026-11-27T10:00:00Z");
        let tok = other.mint(&UserId::parse("u-1").unwrap(), now, chrono::Duration::minutes(1));
        assert!(matches!(auth.verify(&tok, now), Err(AuthError::Invalid(_))));
        // No exp.
        #[derive(Serialize)]
        struct NoExp {
            sub: String,
        }
        let key = EncodingKey::from_secret(SECRET);
        let no_exp = jsonwebtoken::encode(&Header::default(), &NoExp { sub: "u-1".into() }, &key).unwrap();
        assert!(matches!(auth.verify(&no_exp, now), Err(AuthError::Invalid(_))));
        // HS512 with the right key is still refused.
        let claims = ShopperClaims {
            sub: "u-1".into(),
            exp: now.timestamp() + 60,
            iss: Some(DEFAULT_ISSUER.into()),
            aud: Some(DEFAULT_AUDIENCE.into()),
            iat: None,
            nbf: None,
        };
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).unwrap();
        assert!(matches!(auth.verify(&hs512, now), Err(AuthError::Invalid(_))));
        // A user id outside the id alphabet.
        let bad_sub = ShopperClaims { sub: "a b".into(), ..claims };
        let tok = jsonwebtoken::encode(&Header::default(), &bad_sub, &key).unwrap();
        assert!(matches!(auth.verify(&tok, now), Err(AuthError::Invalid(_))));
        assert!(matches!(auth.verify("not.a.jwt", now), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn issuer_and_audience_are_required_and_checked() {
        let auth = ShopperAuth::new(SECRET).unwrap();
        let now = t("2026-11-27T10:00:00Z");
        let key = EncodingKey::from_secret(SECRET);
        let good = ShopperClaims {
            sub: "u-1".into(),
            exp: now.timestamp() + 60,
            iss: Some(DEFAULT_ISSUER.into()),
            aud: Some(DEFAULT_AUDIENCE.into()),
            iat: None,
            nbf: None,
        };
        let sign = |c: &ShopperClaims| jsonwebtoken::encode(&Header::default(), c, &key).unwrap();
        assert_eq!(auth.verify(&sign(&good), now).unwrap().as_str(), "u-1");
        for (what, bad) in [
            ("no iss", ShopperClaims { iss: None, ..good.clone() }),
            ("another iss", ShopperClaims { iss: Some("other-idp".into()), ..good.clone() }),
            ("no aud", ShopperClaims { aud: None, ..good.clone() }),
            ("another aud", ShopperClaims { aud: Some("billing".into()), ..good.clone() }),
        ] {
            assert!(matches!(auth.verify(&sign(&bad), now), Err(AuthError::Invalid(_))), "{what} accepted");
        }
        // A token minted for another scope with the same secret is refused, and vice versa.
        let scope = TokenScope { issuer: "https://id.shop.example".into(), audience: "promo".into() };
        let other = ShopperAuth::scoped(SECRET, scope).unwrap();
        let theirs = other.mint(&UserId::parse("u-1").unwrap(), now, chrono::Duration::minutes(1));
        assert!(matches!(auth.verify(&theirs, now), Err(AuthError::Invalid(_))));
        assert_eq!(other.verify(&theirs, now).unwrap().as_str(), "u-1");
        // `alg: none` is refused whatever the claims say.
        let payload = base64_url(&serde_json::to_vec(&good).unwrap());
        let none = format!("{}.{payload}.", base64_url(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(matches!(auth.verify(&none, now), Err(AuthError::Invalid(_))));
    }

    fn base64_url(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    #[test]
    fn headers_need_exactly_one_bearer_token() {
        let auth = ShopperAuth::new(SECRET).unwrap();
        let now = t("2026-11-27T10:00:00Z");
        let tok = auth.mint(&UserId::parse("u-2").unwrap(), now, chrono::Duration::minutes(1));
        let good = format!("Bearer {tok}");
        assert_eq!(auth.verify_header([good.as_str()].into_iter(), now).unwrap().as_str(), "u-2");
        assert_eq!(auth.verify_header(std::iter::empty(), now), Err(AuthError::Missing));
        assert_eq!(auth.verify_header(["Basic abc"].into_iter(), now), Err(AuthError::Missing));
        assert!(auth.verify_header([good.as_str(), good.as_str()].into_iter(), now).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(ShopperAuth::new(b"short").is_err());
    }
}
