//! Publishing to the edge: writes the price book and products into the Worker's KV namespace
//! through Cloudflare's API (`PUT .../storage/kv/namespaces/{ns}/bulk`, https through rustls).
//! `promoctl campaign deploy` and `products publish` use it, and so does the API Lambda when a
//! claim campaign sells out ([`promo_shared::claims::sell_out`]), so product pages stop offering a coupon
//! nobody can download any more.
//!
//! Configured by `PROMO_CF_ACCOUNT_ID`, `PROMO_CF_KV_NAMESPACE_ID` and `PROMO_CF_API_TOKEN`
//! (all three or none; `PROMO_CF_API_BASE`, default [`DEFAULT_API_BASE`]), read by each
//! binary's configuration module through [`EdgeKv::from_vars`].

use std::time::Duration;

use promo_shared::domain::secret::SecretString;
use promo_shared::ports::publish::PriceBookPublisher;
use serde_json::Value;
use thiserror::Error;

/// Cloudflare takes at most 10,000 pairs per bulk write.
const BULK_LIMIT: usize = 10_000;
pub const DEFAULT_API_BASE: &str = "https://api.cloudflare.com/client/v4";
const VARS: [&str; 3] = ["PROMO_CF_ACCOUNT_ID", "PROMO_CF_KV_NAMESPACE_ID", "PROMO_CF_API_TOKEN"];

#[derive(Debug, Error)]
pub enum EdgeKvError {
    /// Some of the three variables are set, not all: a configuration error, not a silent skip.
    #[error("publishing to the edge's KV needs {0} as well")]
    Incomplete(String),
    #[error("writing to the edge's KV at {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("the edge's KV refused the write ({status}): {errors}")]
    Refused { status: u16, errors: String },
}

/// The API token is a secret: its `Debug` never prints it.
#[derive(Clone, Debug)]
pub struct EdgeKv {
    pub api_base: String,
    pub account_id: String,
    pub namespace_id: String,
    pub api_token: SecretString,
}

impl EdgeKv {
    /// The namespace from the `PROMO_CF_*` variables as `get` returns them (empty = unset):
    /// `None` when none is set, an error naming the missing ones when only some are.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<EdgeKv>, EdgeKvError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        match VARS.map(get) {
            [Some(account_id), Some(namespace_id), Some(api_token)] => Ok(Some(EdgeKv {
                api_base: get("PROMO_CF_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.into()),
                account_id,
                namespace_id,
                api_token: SecretString::new(api_token),
            })),
            [None, None, None] => Ok(None),
            set => {
                let missing: Vec<&str> =
                    VARS.iter().zip(set.iter()).filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
                Err(EdgeKvError::Incomplete(missing.join(", ")))
            }
        }
    }

    /// Writes `entries` (`[{"key", "value"}]`); returns how many were written.
    pub async fn put_all(&self, entries: &[Value]) -> Result<usize, EdgeKvError> {
        let url = format!(
            "{}/accounts/{}/storage/kv/namespaces/{}/bulk",
            self.api_base.trim_end_matches('/'),
            self.account_id,
            self.namespace_id
        );
        let http_error = |source| EdgeKvError::Http { url: url.clone(), source };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(http_error)?;
        for chunk in entries.chunks(BULK_LIMIT) {
            let resp =
                http.put(&url).bearer_auth(self.api_token.expose()).json(chunk).send().await.map_err(http_error)?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if !status.is_success() || body.get("success").and_then(Value::as_bool) != Some(true) {
                return Err(EdgeKvError::Refused {
                    status: status.as_u16(),
                    errors: body.get("errors").unwrap_or(&body).to_string(),
                });
            }
        }
        Ok(entries.len())
    }

    /// Writes the price book under `price-book`, the key the Worker reads.
    pub async fn put_price_book(&self, book: &promo_shared::domain::price_book::PriceBook) -> Result<(), EdgeKvError> {
        self.put_all(&[book.kv_entry()]).await.map(|_| ())
    }
}

/// The Worker's KV is where the price book is published for product pages.
#[async_trait::async_trait]
impl PriceBookPublisher for EdgeKv {
    async fn publish(&self, book: &promo_shared::domain::price_book::PriceBook) -> Result<(), String> {
        self.put_price_book(book).await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn vars(set: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let set: Vec<(String, String)> = set.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        move |name| set.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn all_three_or_none() {
        assert!(EdgeKv::from_vars(vars(&[])).unwrap().is_none());
        let kv = EdgeKv::from_vars(vars(&[
            ("PROMO_CF_ACCOUNT_ID", "a"),
            ("PROMO_CF_KV_NAMESPACE_ID", "n"),
            ("PROMO_CF_API_TOKEN", "secret-token"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(kv.api_base, DEFAULT_API_BASE);
        assert!(!format!("{kv:?}").contains("secret-token"), "the token is never printed");
        let partial = EdgeKv::from_vars(vars(&[("PROMO_CF_ACCOUNT_ID", "a"), ("PROMO_CF_API_TOKEN", " ")]));
        match partial {
            Err(EdgeKvError::Incomplete(missing)) => {
                assert_eq!(missing, "PROMO_CF_KV_NAMESPACE_ID, PROMO_CF_API_TOKEN");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Cloudflare's API is https: the client must speak TLS (it once was built without it, and
    /// only the plain-http stand-in of the tests could be reached). Nothing listens on the port:
    /// a TLS-capable client gets as far as a refused TCP connection; one without TLS stops
    /// before, at "scheme is not http".
    #[tokio::test]
    async fn https_endpoints_are_supported() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let kv = EdgeKv {
            api_base: format!("https://127.0.0.1:{port}/client/v4"),
            account_id: "a".into(),
            namespace_id: "n".into(),
            api_token: SecretString::new("t"),
        };
        let Err(EdgeKvError::Http { source, .. }) = kv.put_all(&[serde_json::json!({"key": "k", "value": "v"})]).await
        else {
            panic!("nothing listens there")
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&source);
        let mut refused = false;
        while let Some(e) = cause {
            refused |=
                e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
            cause = e.source();
        }
        assert!(refused, "the connection was attempted: {source:?}");
    }
}
