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

use crate::domain::ids::{CampaignId, UserId};
use crate::payments::webhooks::{HmacKey, any_signed};

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

/// Whom a token unsubscribed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribed {
    pub campaign: CampaignId,
    pub user: UserId,
    /// False when they already were.
    pub changed: bool,
}

/// Unsubscribes the recipient a valid token names: their address joins the suppression list
/// (every later send skips it) and their membership is marked not opted in. A forged or
/// altered token changes nothing. Repeating it changes nothing more.
pub async fn unsubscribe<S: crate::ports::store::Store + ?Sized>(
    store: &S,
    keys: &UnsubscribeKeys,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Unsubscribed, UnsubscribeError> {
    use crate::email::items::{audience, suppression};
    let (campaign, user, _) = keys.verify(token)?;
    let Some(it) = store.get(&audience::key(&user)).await? else {
        // Signed by us for someone no longer in the audience: nothing left to mail.
        return Ok(Unsubscribed { campaign, user, changed: false });
    };
    let mut member = audience::from_item(&it)?;
    let key = suppression::key(&member.email);
    let already = store.get(&key).await?.is_some();
    if !already {
        let s = suppression::Suppression {
            reason: suppression::Reason::Unsubscribed,
            at: now,
            campaign_id: Some(campaign.clone()),
            user_id: Some(user.clone()),
        };
        store.put(suppression::to_item(&member.email, &s)?, None).await?;
    }
    let was_opted_in = member.opted_in;
    if was_opted_in {
        member.opted_in = false;
        store.put(audience::to_item(&member)?, None).await?;
    }
    tracing::info!(campaign = %campaign, user = %user.masked(), address = %member.email.masked(), "unsubscribed");
    Ok(Unsubscribed { campaign, user, changed: !already || was_opted_in })
}

/// `GET|POST /v1/unsubscribe?t=<token>`. A POST unsubscribes (RFC 8058 one-click: mail
/// clients POST `List-Unsubscribe=One-Click`; the page's button posts the same); a GET only
/// shows a page with the button, since link scanners follow GETs. A browser (`Accept:
/// text/html`) gets pages; anything else JSON (`{"unsubscribed": true}` or the error body).
/// A forged or altered token is a 400 `invalid_token` and writes nothing.
pub async fn serve<S: crate::ports::store::Store + ?Sized>(
    store: &S,
    keys: &UnsubscribeKeys,
    req: &crate::http::Request,
    now: DateTime<Utc>,
) -> crate::http::Response {
    use crate::http::ApiError;
    let html = req.header_values("accept").any(|a| a.contains("text/html"));
    let token = req.query_param("t").unwrap_or_default();
    let answer: Result<crate::http::Response, ApiError> = async {
        let invalid = |_| ApiError::InvalidToken(TokenError::Invalid.to_string());
        if req.method == "POST" {
            match unsubscribe(store, keys, token, now).await {
                Ok(_) if html => Ok(page(
                    200,
                    "You are unsubscribed",
                    "You will not receive this shop's campaign emails any more.",
                    None,
                )),
                Ok(done) => Ok(crate::http::Response::json(
                    200,
                    &serde_json::json!({"unsubscribed": true, "campaign_id": done.campaign}),
                )),
                Err(UnsubscribeError::Token(e)) => Err(invalid(e)),
                Err(UnsubscribeError::Store(e)) => Err(ApiError::Unavailable(format!("try again shortly: {e}"))),
            }
        } else {
            keys.verify(token).map_err(invalid)?;
            if html {
                Ok(page(200, "Unsubscribe", "Stop receiving this shop's campaign emails?", Some(token)))
            } else {
                Ok(crate::http::Response::json(
                    200,
                    &serde_json::json!({"unsubscribe": "POST this URL to unsubscribe"}),
                ))
            }
        }
    }
    .await;
    let mut resp = match answer {
        Ok(r) => r,
        Err(e) if html && e.status() == 400 => page(
            400,
            "This link is not valid",
            "The unsubscribe link is incomplete or was altered. Use the link in the email you received.",
            None,
        ),
        Err(e) => e.into_response(),
    };
    resp.headers.extend([
        ("cache-control".to_string(), "no-store".to_string()),
        // The token is in the URL: never sent on to another site.
        ("referrer-policy".to_string(), "no-referrer".to_string()),
    ]);
    resp
}

/// A small page; with `token`, a button that posts the one-click unsubscribe.
fn page(status: u16, title: &str, text: &str, token: Option<&str>) -> crate::http::Response {
    let form = token.map_or(String::new(), |t| {
        format!(
            r#"<form method="post" action="?t={t}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit" id="unsubscribe">Unsubscribe</button></form>"#
        )
    });
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}button{{font-size:1rem;padding:.6rem 1.2rem;border-radius:.4rem;border:1px solid #444;background:#fff;cursor:pointer}}</style></head><body><h1>{title}</h1><p>{text}</p>{form}</body></html>"#
    );
    crate::http::Response {
        status,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            (
                "content-security-policy".into(),
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'".into(),
            ),
        ],
        body: body.into_bytes(),
    }
}

#[derive(Debug, Error)]
pub enum UnsubscribeError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("store: {0}")]
    Store(#[from] crate::ports::store::StoreError),
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
