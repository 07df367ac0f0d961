//! The edge application's configuration, from a key lookup: each runtime reads its own
//! environment in one place (the Worker its vars and secrets, the local runtime the process
//! environment) and hands the lookup here, so the names and defaults are defined once.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `PROMO_WEBHOOK_SECRET_<PROVIDER>` | unset (provider answers 503) | space-separated active secrets (rotation); `STANDARD` and `PORTONE` take `whsec_…`, `STRIPE` the endpoint secret as shown |
//! | `PROMO_WEBHOOK_TOLERANCE_SECONDS` | 300 | allowed clock difference, both directions |
//! | `PROMO_WEBHOOK_MAX_BODY_BYTES` | 65536 | larger bodies get 413 |
//! | `PROMO_PORTONE_API_BASE` | `https://api.portone.io` | PortOne V2 API, for payment look-ups |
//! | `PROMO_PORTONE_API_SECRET` | unset (look-ups answer 503) | PortOne V2 API secret |
//! | `PROMO_PAYMENT_QUEUE_URL` | unset | edge only: the SQS queue accepted payment events are enqueued to (the stack's `PaymentEventsQueueUrl`); preferred over `PROMO_ISSUER_URL` |
//! | `PROMO_AWS_ACCESS_KEY_ID`, `PROMO_AWS_SECRET_ACCESS_KEY` | unset (required with the queue) | edge only: the key of the stack's `EdgeEnqueueUser`, allowed `sqs:SendMessage` on that queue only |
//! | `PROMO_AWS_REGION` | from the queue URL (`sqs.<region>.amazonaws.com`), else `us-east-1` | edge only: the queue's region, for SigV4 |
//! | `PROMO_ISSUER_URL` | unset | edge only: the coupon issuer's function URL events are handed to synchronously, when no queue is configured |
//! | `PROMO_ISSUER_SECRET` | unset | edge only: `whsec_` secret signing that hand-off (Standard Webhooks) |
//! | `PROMO_CALLBACK_TOKENS` | unset (callbacks open, rate-limited) | space-separated shop tokens; when set, `POST /v1/payments/{id}/complete` needs `Authorization: Bearer <one of them>` |
//! | `PROMO_CALLBACK_RECHECK_SECONDS` | 10 | how long a callback's "unknown payment" / "not final yet" answer is remembered |
//! | `PROMO_CALLBACK_LIMIT_PER_CLIENT` | 60 | local runtime: callbacks per minute from one client (the Worker's limit is its `CALLBACK_CLIENT_LIMITER` binding) |
//! | `PROMO_CALLBACK_LIMIT_PER_PAYMENT` | 10 | local runtime: callbacks per minute for one payment (the Worker: `CALLBACK_PAYMENT_LIMITER`) |
//! | `PROMO_PRICE_CACHE_TTL_SECONDS` / `_STALE_SECONDS` | 60 / 300 | public price answers: fresh for, then served stale while recomputed |
//! | `PROMO_CORS_ORIGINS` | unset (no page may call) | space-separated origins of the shop's pages (`https://shop.example`) allowed to call price reads, quotes, claims, wallets and the client callback from a browser |
//! | `PROMO_OUTBOX_WINDOW_MS` | 1000 | edge only: how long an accepted event waits in its Durable Object's outbox before the batch goes to the queue (0–60000) |
//! | `PROMO_API_URL` | unset (claims, wallets and personal price reads answer 503 at the edge) | the API Lambda's function URL: the Worker passes the shoppers' routes there, so the shop has one origin |

use crate::domain::secret::SecretString;
use thiserror::Error;

use crate::payments::webhooks::standard::Secret;
use crate::payments::webhooks::stripe;

pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_PORTONE_API_BASE: &str = "https://api.portone.io";
pub const DEFAULT_CALLBACK_RECHECK_SECONDS: i64 = 10;
pub const DEFAULT_CALLBACK_LIMIT_PER_CLIENT: u32 = 60;
pub const DEFAULT_CALLBACK_LIMIT_PER_PAYMENT: u32 = 10;

/// A webhook sender we verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Standard Webhooks v1 signing, our canonical payment event as body.
    Standard,
    /// PortOne V2: Standard Webhooks signing; the payment is looked up at PortOne's API.
    PortOne,
    /// Stripe: `Stripe-Signature`, payment intent and charge events.
    Stripe,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "standard" => Some(Provider::Standard),
            "portone" => Some(Provider::PortOne),
            "stripe" => Some(Provider::Stripe),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::Standard => "standard",
            Provider::PortOne => "portone",
            Provider::Stripe => "stripe",
        }
    }

    pub fn secret_var(self) -> String {
        format!("PROMO_WEBHOOK_SECRET_{}", self.name().to_ascii_uppercase())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("configuration {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

/// Every secret is of a type whose `Debug` masks it, so the whole config may be logged.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    pub standard_secrets: Vec<Secret>,
    pub portone_secrets: Vec<Secret>,
    pub stripe_secrets: Vec<stripe::Secret>,
    pub portone_api_base: String,
    pub portone_api_secret: Option<SecretString>,
    pub tolerance_seconds: i64,
    pub max_body_bytes: usize,
    pub issuer_url: Option<String>,
    pub issuer_secret: Option<Secret>,
    /// The shop's page origins allowed to call the shopper-facing routes (CORS).
    pub cors: crate::http::Cors,
    /// The durable queue accepted payment events go to (preferred over the issuer URL).
    pub payment_queue: Option<QueueTarget>,
    /// The shop's tokens for client callbacks; empty: callbacks need none.
    pub callback_tokens: Vec<SecretString>,
    /// How long a callback's negative answer is remembered.
    pub callback_recheck: chrono::Duration,
    /// Callbacks per minute from one client, and for one payment (local runtime).
    pub callback_limit_per_client: u32,
    pub callback_limit_per_payment: u32,
    /// Public price answers: fresh for, then served stale while recomputed for.
    pub prices: crate::pricing::prices::CachePolicy,
    /// The shoppers' API (the API Lambda's function URL): where the edge sends personal
    /// price reads. `None`: they answer 503 at the edge (the local runtime serves them itself).
    pub api_url: Option<String>,
    /// Edge only: how long an accepted event waits in its object's outbox (milliseconds).
    pub outbox_window_ms: u32,
}

/// An SQS queue and the credentials allowed to send to it.
#[derive(Clone, Debug)]
pub struct QueueTarget {
    pub url: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

impl QueueTarget {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<QueueTarget>, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let Some(url) = var("PROMO_PAYMENT_QUEUE_URL") else { return Ok(None) };
        let missing =
            |name: &str| ConfigError { var: name.into(), message: "is required with PROMO_PAYMENT_QUEUE_URL".into() };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError { var: "PROMO_PAYMENT_QUEUE_URL".into(), message: "is not an http(s) URL".into() });
        }
        // `https://sqs.<region>.amazonaws.com/<account>/<queue>`
        let from_url = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).and_then(|host| {
            let mut parts = host.split('.');
            (parts.next() == Some("sqs")).then(|| parts.next()).flatten().map(str::to_string)
        });
        Ok(Some(QueueTarget {
            region: var("PROMO_AWS_REGION").or(from_url).unwrap_or_else(|| "us-east-1".into()),
            access_key_id: var("PROMO_AWS_ACCESS_KEY_ID").ok_or_else(|| missing("PROMO_AWS_ACCESS_KEY_ID"))?,
            secret_access_key: SecretString::new(
                var("PROMO_AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("PROMO_AWS_SECRET_ACCESS_KEY"))?,
            ),
            url,
        }))
    }
}

impl EdgeConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, ConfigError> {
        Ok(EdgeConfig {
            payment_queue: QueueTarget::from_lookup(&get)?,
            cors: crate::http::Cors::parse(&get("PROMO_CORS_ORIGINS").unwrap_or_default())
                .map_err(|message| ConfigError { var: "PROMO_CORS_ORIGINS".into(), message })?,
            standard_secrets: secrets(&get, Provider::Standard, Secret::parse)?,
            portone_secrets: secrets(&get, Provider::PortOne, Secret::parse)?,
            stripe_secrets: secrets(&get, Provider::Stripe, stripe::Secret::parse)?,
            portone_api_base: get("PROMO_PORTONE_API_BASE")
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_PORTONE_API_BASE.into())
                .trim_end_matches('/')
                .to_string(),
            portone_api_secret: get("PROMO_PORTONE_API_SECRET")
                .filter(|s| !s.trim().is_empty())
                .map(|s| SecretString::new(s.trim())),
            tolerance_seconds: number(&get, "PROMO_WEBHOOK_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS)?,
            max_body_bytes: number(&get, "PROMO_WEBHOOK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?,
            issuer_url: get("PROMO_ISSUER_URL").filter(|u| !u.trim().is_empty()),
            issuer_secret: get("PROMO_ISSUER_SECRET")
                .filter(|s| !s.trim().is_empty())
                .map(|s| Secret::parse(s.trim()))
                .transpose()
                .map_err(|e| ConfigError { var: "PROMO_ISSUER_SECRET".into(), message: e.to_string() })?,
            callback_tokens: get("PROMO_CALLBACK_TOKENS")
                .unwrap_or_default()
                .split_whitespace()
                .map(SecretString::new)
                .collect(),
            callback_recheck: chrono::Duration::seconds(number(
                &get,
                "PROMO_CALLBACK_RECHECK_SECONDS",
                DEFAULT_CALLBACK_RECHECK_SECONDS,
            )?),
            callback_limit_per_client: number(
                &get,
                "PROMO_CALLBACK_LIMIT_PER_CLIENT",
                DEFAULT_CALLBACK_LIMIT_PER_CLIENT,
            )?,
            callback_limit_per_payment: number(
                &get,
                "PROMO_CALLBACK_LIMIT_PER_PAYMENT",
                DEFAULT_CALLBACK_LIMIT_PER_PAYMENT,
            )?,
            prices: crate::pricing::prices::CachePolicy {
                ttl: chrono::Duration::seconds(number::<u32>(&get, "PROMO_PRICE_CACHE_TTL_SECONDS", 60)?.max(1).into()),
                stale: chrono::Duration::seconds(number::<u32>(&get, "PROMO_PRICE_CACHE_STALE_SECONDS", 300)?.into()),
            },
            api_url: get("PROMO_API_URL").filter(|u| !u.trim().is_empty()).map(|u| u.trim().to_string()),
            outbox_window_ms: match number::<u32>(&get, "PROMO_OUTBOX_WINDOW_MS", DEFAULT_OUTBOX_WINDOW_MS)? {
                w if w <= MAX_OUTBOX_WINDOW_MS => w,
                w => {
                    return Err(ConfigError {
                        var: "PROMO_OUTBOX_WINDOW_MS".into(),
                        message: format!("{w} is over {MAX_OUTBOX_WINDOW_MS} (a minute)"),
                    });
                }
            },
        })
    }

    /// Whether any secret is configured for a provider.
    pub fn has_secrets(&self, provider: Provider) -> bool {
        match provider {
            Provider::Standard => !self.standard_secrets.is_empty(),
            Provider::PortOne => !self.portone_secrets.is_empty(),
            Provider::Stripe => !self.stripe_secrets.is_empty(),
        }
    }
}

fn secrets<T, E: std::fmt::Display>(
    get: &impl Fn(&str) -> Option<String>,
    provider: Provider,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, ConfigError> {
    let var = provider.secret_var();
    get(&var)
        .unwrap_or_default()
        .split_whitespace()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError { var, message: e.to_string() })
}

/// The outbox's default window and the longest a shop may set (milliseconds).
pub const DEFAULT_OUTBOX_WINDOW_MS: u32 = 1_000;
pub const MAX_OUTBOX_WINDOW_MS: u32 = 60_000;

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    default: T,
) -> Result<T, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError { var: var.into(), message: format!("`{v}` is not a non-negative whole number") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_window_is_a_minute_at_most() {
        let with =
            |v: &'static str| EdgeConfig::from_lookup(move |k| (k == "PROMO_OUTBOX_WINDOW_MS").then(|| v.into()));
        assert_eq!(EdgeConfig::from_lookup(|_| None).unwrap().outbox_window_ms, 1_000);
        assert_eq!(with(" 2000 ").unwrap().outbox_window_ms, 2_000);
        assert_eq!(with("0").unwrap().outbox_window_ms, 0);
        for bad in ["60001", "-1", "soon"] {
            assert_eq!(with(bad).unwrap_err().var, "PROMO_OUTBOX_WINDOW_MS", "{bad}");
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let c = EdgeConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c.tolerance_seconds, 300);
        assert_eq!(c.max_body_bytes, 65536);
        assert!(c.standard_secrets.is_empty());
        let c = EdgeConfig::from_lookup(|k| match k {
            "PROMO_WEBHOOK_SECRET_STANDARD" => Some("whsec_c2VjcmV0 whsec_b2xk".into()),
            "PROMO_WEBHOOK_TOLERANCE_SECONDS" => Some("60".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.standard_secrets.len(), 2);
        assert_eq!(c.tolerance_seconds, 60);
    }

    #[test]
    fn the_payment_queue_needs_its_key_and_finds_its_region() {
        let vars = |extra: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                [("PROMO_PAYMENT_QUEUE_URL", "https://sqs.ap-northeast-2.amazonaws.com/123456789012/promo-payments")]
                    .iter()
                    .chain(extra)
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = EdgeConfig::from_lookup(vars(&[])).unwrap_err();
        assert_eq!(e.var, "PROMO_AWS_ACCESS_KEY_ID");
        let keys = &[("PROMO_AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("PROMO_AWS_SECRET_ACCESS_KEY", "s3cr3t")];
        let q = EdgeConfig::from_lookup(vars(keys)).unwrap().payment_queue.unwrap();
        assert_eq!((q.region.as_str(), q.access_key_id.as_str()), ("ap-northeast-2", "AKIDEXAMPLE"));
        assert!(!format!("{q:?}").contains("s3cr3t"), "the secret key is masked");
        let local = EdgeConfig::from_lookup(|k| match k {
            "PROMO_PAYMENT_QUEUE_URL" => Some("http://127.0.0.1:5000/123456789012/q".into()),
            "PROMO_AWS_ACCESS_KEY_ID" | "PROMO_AWS_SECRET_ACCESS_KEY" => Some("test".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(local.payment_queue.unwrap().region, "us-east-1", "a stand-in's URL names no region");
        assert!(EdgeConfig::from_lookup(|_| None).unwrap().payment_queue.is_none());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = EdgeConfig::from_lookup(|k| (k == "PROMO_WEBHOOK_MAX_BODY_BYTES").then(|| "lots".into())).unwrap_err();
        assert_eq!(e.var, "PROMO_WEBHOOK_MAX_BODY_BYTES");
        let e =
            EdgeConfig::from_lookup(|k| (k == "PROMO_WEBHOOK_SECRET_STANDARD").then(|| "whsec_!!".into())).unwrap_err();
        assert_eq!(e.var, "PROMO_WEBHOOK_SECRET_STANDARD");
        assert!(!e.message.contains("!!"), "never echo a secret");
    }

    #[test]
    fn debug_shows_no_secret() {
        let secrets = [
            ("PROMO_WEBHOOK_SECRET_STANDARD", "whsec_c2VjcmV0LXN0YW5kYXJk"),
            ("PROMO_WEBHOOK_SECRET_PORTONE", "whsec_c2VjcmV0LXBvcnRvbmU="),
            ("PROMO_WEBHOOK_SECRET_STRIPE", "whsec_stripe_endpoint_secret"),
            ("PROMO_PORTONE_API_SECRET", "portone-api-secret-value"),
            ("PROMO_ISSUER_SECRET", "whsec_aXNzdWVyLXNlY3JldA=="),
            ("PROMO_CALLBACK_TOKENS", "shop-token-one shop-token-two"),
        ];
        let c = EdgeConfig::from_lookup(|k| secrets.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
        let shown = format!("{c:?}");
        for (_, v) in secrets {
            for part in v.split_whitespace() {
                let bare = part.trim_start_matches("whsec_");
                assert!(!shown.contains(bare), "{part} shows in {shown}");
            }
        }
        assert_eq!(c.callback_tokens.len(), 2);
    }
}
