//! One-click unsubscribe links (RFC 8058): each campaign email carries
//! `…/v1/unsubscribe?t=<token>`, a token naming (campaign, recipient), signed with the
//! platform's unsubscribe secret (HMAC-SHA256; several secrets are accepted during a
//! rotation). A forged or altered token names nobody and changes nothing.
//!
//! Token: `<payload>.<mac>`, both base64url without padding; the payload is
//! `campaign \n user \n issued_at` (ids never contain a newline).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, TimeZone, Utc};
use thiserror::Error;

use crate::app::webhooks::{HmacKey, any_signed};
use crate::domain::ids::{CampaignId, UserId};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the unsubscribe link is not valid")]
    Invalid,
}

/// The secrets unsubscribe links are signed with: the first signs, all verify.
#[derive(Clone)]
pub struct UnsubscribeKeys(Vec<HmacKey>);

impl std::fmt::Debug for UnsubscribeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnsubscribeKeys({} keys)", self.0.len())
    }
}

impl UnsubscribeKeys {
    /// Keys from secrets of at least 32 bytes each; none is an error.
    pub fn new(secrets: &[&[u8]]) -> Result<UnsubscribeKeys, String> {
        if secrets.is_empty() {
            return Err("no unsubscribe secret".into());
        }
        let keys = secrets
            .iter()
            .map(|s| {
                if s.len() < 32 {
                    return Err("an unsubscribe secret is at least 32 bytes".to_string());
                }
                HmacKey::new(s.to_vec()).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UnsubscribeKeys(keys))
    }

    /// The token of `user`'s link in `campaign`'s email.
    pub fn sign(&self, campaign: &CampaignId, user: &UserId, issued_at: DateTime<Utc>) -> String {
        let payload = format!("{campaign}\n{user}\n{}", issued_at.timestamp());
        let mac = self.0[0].mac(&[payload.as_bytes()]);
        format!("{}.{}", B64URL.encode(payload.as_bytes()), B64URL.encode(mac))
    }

    /// Who a token unsubscribes, if one of the keys signed it.
    pub fn verify(&self, token: &str) -> Result<(CampaignId, UserId, DateTime<Utc>), TokenError> {
        let (payload, mac) = token.trim().split_once('.').ok_or(TokenError::Invalid)?;
        let payload = B64URL.decode(payload).map_err(|_| TokenError::Invalid)?;
        let mac = B64URL.decode(mac).map_err(|_| TokenError::Invalid)?;
        if !any_signed(&self.0, &[mac], &[&payload]) {
            return Err(TokenError::Invalid);
        }
        let text = String::from_utf8(payload).map_err(|_| TokenError::Invalid)?;
        let mut parts = text.split('\n');
        let (Some(c), Some(u), Some(t), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Invalid);
        };
        let campaign = CampaignId::parse(c).map_err(|_| TokenError::Invalid)?;
        let user = UserId::parse(u).map_err(|_| TokenError::Invalid)?;
        let at = t.parse::<i64>().ok().and_then(|s| Utc.timestamp_opt(s, 0).single()).ok_or(TokenError::Invalid)?;
        Ok((campaign, user, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &[u8] = b"an-old-unsubscribe-secret-of-32-bytes!";
    const NEW: &[u8] = b"the-new-unsubscribe-secret-of-32-bytes";

    fn ids() -> (CampaignId, UserId) {
        (CampaignId::parse("bf.2026").unwrap(), UserId::parse("u-1").unwrap())
    }

    #[test]
    fn a_signed_link_names_its_recipient_and_survives_a_rotation() {
        let (c, u) = ids();
        let at = crate::testing::at("2026-11-27T10:00:00Z");
        let token = UnsubscribeKeys::new(&[OLD]).unwrap().sign(&c, &u, at);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'), "URL-safe");
        let rotated = UnsubscribeKeys::new(&[NEW, OLD]).unwrap();
        assert_eq!(rotated.verify(&token).unwrap(), (c, u, at));
        assert_eq!(UnsubscribeKeys::new(&[NEW]).unwrap().verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn a_forged_or_altered_token_names_nobody() {
        let (c, u) = ids();
        let keys = UnsubscribeKeys::new(&[NEW]).unwrap();
        let at = crate::testing::at("2026-11-27T10:00:00Z");
        let token = keys.sign(&c, &u, at);
        let (payload, mac) = token.split_once('.').unwrap();
        // Another recipient in the payload, the same MAC.
        let other = B64URL.encode(format!("{c}\nu-2\n{}", at.timestamp()));
        for bad in [
            format!("{other}.{mac}"),
            format!("{payload}.{}", B64URL.encode([0u8; 32])),
            payload.to_string(),
            String::new(),
            "x.y".into(),
            format!("{}.{mac}", &payload[1..]),
        ] {
            assert_eq!(keys.verify(&bad), Err(TokenError::Invalid), "{bad}");
        }
        assert!(UnsubscribeKeys::new(&[b"short"]).is_err());
        assert!(UnsubscribeKeys::new(&[]).is_err());
        assert!(!format!("{keys:?}").contains("secret"));
    }
}
