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
//! | `RUST_LOG` | all | log filter (JSON logs to CloudWatch) |
//!
//! The AWS SDK reads its usual variables (region, credentials) itself. Every secret is held in
//! a type whose `Debug` masks it, so the whole configuration may be logged.

use promo_shared::app::webhooks::standard::Secret;
use promo_shared::domain::secret::SecretString;
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
        })
    }

    /// The shoppers' token verifier; the API cannot run without its secret.
    pub fn shopper_auth(&self) -> Result<ShopperAuth, ConfigError> {
        let secret = self.shopper_jwt_secret.as_ref().ok_or(ConfigError::Missing("PROMO_SHOPPER_JWT_SECRET"))?;
        ShopperAuth::scoped(secret.expose().as_bytes(), self.shopper_tokens.clone())
            .map_err(|e| ConfigError::Invalid("PROMO_SHOPPER_JWT_SECRET", e.to_string()))
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
        ];
        let cfg =
            LambdaConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
        let shown = format!("{cfg:?} {:?}", cfg.shopper_auth().unwrap());
        for secret in ["aXNzdWVyLWhhbmQtb2ZmLXNlY3JldA", "shopper-jwt-secret", "cloudflare-api-token"] {
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
