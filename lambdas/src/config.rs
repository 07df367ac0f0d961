//! The Lambdas' configuration: the one place their binaries read the environment.
//!
//! | variable | used by | meaning |
//! | --- | --- | --- |
//! | `PROMO_TABLE_NAME` | all (required) | the DynamoDB table (template.yaml `PromoTable`) |
//! | `PROMO_DYNAMODB_ENDPOINT` | all (optional) | a local DynamoDB stand-in instead of AWS |
//! | `PROMO_ISSUER_SECRET` | issuer | space-separated `whsec_` secrets verifying the edge's hand-off; several during a rotation |
//! | `PROMO_SHOPPER_JWT_SECRET` | api (required) | the HS256 secret of shoppers' bearer tokens, at least 32 bytes |
//! | `PROMO_SHOPPER_JWT_ISSUER` | api (default `shop`) | the `iss` every shopper token must carry |
//! | `PROMO_SHOPPER_JWT_AUDIENCE` | api (default `promo-platform`) | the `aud` every shopper token must carry |
//! | `PROMO_CF_ACCOUNT_ID`, `PROMO_CF_KV_NAMESPACE_ID`, `PROMO_CF_API_TOKEN` | api (optional, all three or none) | the Worker's KV namespace: a claim campaign that sells out republishes the price book there |
//! | `PROMO_CF_API_BASE` | api (optional) | Cloudflare's API, default `https://api.cloudflare.com/client/v4` |
//! | `PROMO_PUBLIC_URL` | sender (required) | the shop's public origin: every email links to `<it>/v1/unsubscribe` |
//! | `PROMO_UNSUBSCRIBE_SECRETS` | sender (required), api | comma-separated secrets (≥ 32 bytes) of unsubscribe links; the first signs, all verify |
//! | `PROMO_EMAIL_RATE` | sender (optional) | the account's messages per second when SES `GetAccount` does not answer |
//! | `PROMO_SENDER_CONCURRENCY` | sender (default 1) | the sender's reserved concurrency: each instance takes this share of the account's rate |
//! | `PROMO_SENDER_PARALLEL` | sender (default 8) | jobs one invocation sends at once |
//! | `PROMO_SES_ENDPOINT` | sender (optional) | an SES v2 stand-in instead of AWS |
//! | `PROMO_EMAIL_QUEUE_URL` | sender (optional) | the email queue's URL: a held job (paused, outside its send window, cut by the deadline) goes back there as a delayed copy instead of a failed receive |
//! | `PROMO_SQS_ENDPOINT` | sender (optional) | an SQS stand-in instead of AWS |
//! | `PROMO_SENDER_DEADLINE_MARGIN_SECONDS` | sender (default 10) | time kept before the invocation's deadline: no bulk call starts later |
//! | `PROMO_SENDER_PAUSED_RETRY_SECONDS` | sender (default 300, at most 900) | how soon a paused send's job looks again (a resume is seen then) |
//! | `PROMO_EVENTS_MAIL_FROM` | scheduler (optional) | the sender of the events' notices (promoted, waitlist closed); without it no notice is mailed |
//! | `PROMO_SES_CONFIGURATION_SET` | sender (optional) | the SES configuration set of every send (bounces and complaints to the feedback Lambda) |
//! | `RUST_LOG` | all | log filter (JSON logs to CloudWatch) |
//!
//! The AWS SDK reads its usual variables (region, credentials) itself. Every secret is held in
//! a type whose `Debug` masks it, so the whole configuration may be logged.

use promo_shared::domain::secret::SecretString;
use promo_shared::payments::webhooks::standard::Secret;
use thiserror::Error;

use crate::auth::DEFAULT_AUDIENCE;

use crate::auth::DEFAULT_ISSUER;

use crate::auth::ShopperAuth;

use crate::auth::TokenScope;
use crate::edge_kv::EdgeKv;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
}

/// Everything a Lambda binary reads from its environment.
#[derive(Clone, Debug)]
pub struct LambdaConfig {
    pub table: String,
    pub dynamodb_endpoint: Option<String>,
    /// The issuer's hand-off secrets; none configured means every hand-off is refused (503).
    pub issuer_secrets: Vec<Secret>,
    /// The shoppers' token secret (the API requires it; see [`LambdaConfig::shopper_auth`]).
    pub shopper_jwt_secret: Option<SecretString>,
    pub shopper_tokens: TokenScope,
    /// The edge's KV namespace (`PROMO_CF_*`); none means sell-outs only rebuild the store's
    /// copy of the price book.
    pub edge_kv: Option<EdgeKv>,
    pub email: EmailConfig,
    /// `PROMO_EVENTS_MAIL_FROM`, unchecked (see [`LambdaConfig::events_mail_from`]).
    pub events_mail_from: Option<String>,
}

/// The campaign email sender's settings.
#[derive(Clone, Debug, Default)]
pub struct EmailConfig {
    pub public_url: Option<String>,
    pub unsubscribe_secrets: Vec<SecretString>,
    pub rate: Option<f64>,
    pub instances: u32,
    pub parallel: usize,
    pub ses_endpoint: Option<String>,
    pub configuration_set: Option<String>,
    /// The email queue's URL (`PROMO_EMAIL_QUEUE_URL`), where held jobs are put back.
    pub queue_url: Option<String>,
    pub sqs_endpoint: Option<String>,
    /// Seconds kept before the invocation's deadline.
    pub deadline_margin: u32,
    /// Seconds before a paused send's job looks again.
    pub paused_retry: u32,
}

impl EmailConfig {
    /// The unsubscribe link signer (the sender and the unsubscribe route need one).
    pub fn unsubscribe_keys(&self) -> Result<promo_shared::email::unsubscribe::UnsubscribeKeys, ConfigError> {
        let secrets: Vec<&[u8]> = self.unsubscribe_secrets.iter().map(|s| s.expose().as_bytes()).collect();
        if secrets.is_empty() {
            return Err(ConfigError::Missing("PROMO_UNSUBSCRIBE_SECRETS"));
        }
        promo_shared::email::unsubscribe::UnsubscribeKeys::new(&secrets)
            .map_err(|e| ConfigError::Invalid("PROMO_UNSUBSCRIBE_SECRETS", e))
    }

    /// `<PROMO_PUBLIC_URL>/v1/unsubscribe`.
    pub fn unsubscribe_url(&self) -> Result<String, ConfigError> {
        let base = self.public_url.as_deref().ok_or(ConfigError::Missing("PROMO_PUBLIC_URL"))?;
        Ok(format!("{}/v1/unsubscribe", base.trim_end_matches('/')))
    }
}

impl LambdaConfig {
    pub fn from_env() -> Result<LambdaConfig, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration from a variable lookup (empty values count as unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<LambdaConfig, ConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        Ok(LambdaConfig {
            table: var("PROMO_TABLE_NAME").ok_or(ConfigError::Missing("PROMO_TABLE_NAME"))?,
            dynamodb_endpoint: var("PROMO_DYNAMODB_ENDPOINT"),
            issuer_secrets: var("PROMO_ISSUER_SECRET")
                .unwrap_or_default()
                .split_whitespace()
                .map(Secret::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::Invalid("PROMO_ISSUER_SECRET", e.to_string()))?,
            shopper_jwt_secret: var("PROMO_SHOPPER_JWT_SECRET").map(SecretString::new),
            shopper_tokens: TokenScope {
                issuer: var("PROMO_SHOPPER_JWT_ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.into()),
                audience: var("PROMO_SHOPPER_JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
            },
            edge_kv: EdgeKv::from_vars(var).map_err(|e| ConfigError::Invalid("PROMO_CF_*", e.to_string()))?,
            email: EmailConfig {
                public_url: var("PROMO_PUBLIC_URL"),
                unsubscribe_secrets: var("PROMO_UNSUBSCRIBE_SECRETS")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::new(s.to_string()))
                    .collect(),
                rate: match var("PROMO_EMAIL_RATE") {
                    None => None,
                    Some(v) => {
                        Some(v.trim().parse::<f64>().ok().filter(|r| r.is_finite() && *r > 0.0).ok_or_else(|| {
                            ConfigError::Invalid("PROMO_EMAIL_RATE", format!("`{v}` is not a positive number"))
                        })?)
                    }
                },
                instances: whole(&var, "PROMO_SENDER_CONCURRENCY", 1)?,
                parallel: whole(&var, "PROMO_SENDER_PARALLEL", 8)? as usize,
                ses_endpoint: var("PROMO_SES_ENDPOINT"),
                configuration_set: var("PROMO_SES_CONFIGURATION_SET"),
                queue_url: var("PROMO_EMAIL_QUEUE_URL"),
                sqs_endpoint: var("PROMO_SQS_ENDPOINT"),
                deadline_margin: whole(&var, "PROMO_SENDER_DEADLINE_MARGIN_SECONDS", 10)?,
                paused_retry: whole(&var, "PROMO_SENDER_PAUSED_RETRY_SECONDS", 300)?.min(900),
            },
            events_mail_from: var("PROMO_EVENTS_MAIL_FROM"),
        })
    }

    /// The sender of the events' notices, if one is configured.
    pub fn events_mail_from(&self) -> Result<Option<promo_shared::domain::email::EmailAddress>, ConfigError> {
        self.events_mail_from
            .as_deref()
            .map(|a| {
                promo_shared::domain::email::EmailAddress::parse(a)
                    .map_err(|e| ConfigError::Invalid("PROMO_EVENTS_MAIL_FROM", e.to_string()))
            })
            .transpose()
    }

    /// The shoppers' token verifier; the API cannot run without its secret.
    ///
    /// (See also [`EmailConfig`] for the sender.)
    pub fn shopper_auth(&self) -> Result<ShopperAuth, ConfigError> {
        let secret = self.shopper_jwt_secret.as_ref().ok_or(ConfigError::Missing("PROMO_SHOPPER_JWT_SECRET"))?;
        ShopperAuth::scoped(secret.expose().as_bytes(), self.shopper_tokens.clone())
            .map_err(|e| ConfigError::Invalid("PROMO_SHOPPER_JWT_SECRET", e.to_string()))
    }
}

fn whole(var: &impl Fn(&str) -> Option<String>, name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError::Invalid(name, format!("`{v}` is not a whole number of at least 1"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let vars = [
            ("PROMO_TABLE_NAME", "promo"),
            ("PROMO_ISSUER_SECRET", "whsec_aXNzdWVyLWhhbmQtb2ZmLXNlY3JldA=="),
            ("PROMO_SHOPPER_JWT_SECRET", "shopper-jwt-secret-0123456789abcdef"),
            ("PROMO_CF_ACCOUNT_ID", "acct"),
            ("PROMO_CF_KV_NAMESPACE_ID", "ns"),
            ("PROMO_CF_API_TOKEN", "cloudflare-api-token-value"),
            ("PROMO_UNSUBSCRIBE_SECRETS", "unsubscribe-secret-value-of-32-bytes-or-more"),
        ];
        let cfg =
            LambdaConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
        let shown = format!("{cfg:?} {:?}", cfg.shopper_auth().unwrap());
        assert!(cfg.email.unsubscribe_keys().is_ok());
        for secret in
            ["aXNzdWVyLWhhbmQtb2ZmLXNlY3JldA", "shopper-jwt-secret", "cloudflare-api-token", "unsubscribe-secret"]
        {
            assert!(!shown.contains(secret), "{secret} shows in {shown}");
        }
        assert!(shown.contains("promo") && shown.contains("acct"), "the rest is shown: {shown}");
    }

    #[test]
    fn the_token_scope_has_documented_defaults() {
        let cfg = LambdaConfig::from_lookup(|k| (k == "PROMO_TABLE_NAME").then(|| "t".to_string())).unwrap();
        assert_eq!(cfg.shopper_tokens, TokenScope { issuer: "shop".into(), audience: "promo-platform".into() });
        assert!(matches!(cfg.shopper_auth(), Err(ConfigError::Missing("PROMO_SHOPPER_JWT_SECRET"))));
    }
}
