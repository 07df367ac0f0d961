//! The Lambdas' configuration: the one place their binaries read the environment.
//!
//! | variable | used by | meaning |
//! | --- | --- | --- |
//! | `PROMO_TABLE_NAME` | all (required) | the DynamoDB table (template.yaml `PromoTable`) |
//! | `PROMO_DYNAMODB_ENDPOINT` | all (optional) | a local DynamoDB stand-in instead of AWS |
//! | `PROMO_ISSUER_SECRET` | issuer | space-separated `whsec_` secrets verifying the edge's hand-off; several during a rotation |
//! | `PROMO_SHOPPER_JWT_SECRET` | api (required) | the HS256 secret of shoppers' bearer tokens, at least 32 bytes |
//! | `PROMO_CF_ACCOUNT_ID`, `PROMO_CF_KV_NAMESPACE_ID`, `PROMO_CF_API_TOKEN` | api (optional, all three or none) | the Worker's KV namespace: a claim campaign that sells out republishes the price book there |
//! | `PROMO_CF_API_BASE` | api (optional) | Cloudflare's API, default `https://api.cloudflare.com/client/v4` |
//! | `RUST_LOG` | all | log filter (JSON logs to CloudWatch) |
//!
//! The AWS SDK reads its usual variables (region, credentials) itself.

use promo_edge::webhook::standard::Secret;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
}

pub struct LambdaConfig {
    pub table: String,
    pub dynamodb_endpoint: Option<String>,
}

impl LambdaConfig {
    pub fn from_env() -> Result<LambdaConfig, ConfigError> {
        Ok(LambdaConfig {
            table: var("PROMO_TABLE_NAME").ok_or(ConfigError::Missing("PROMO_TABLE_NAME"))?,
            dynamodb_endpoint: var("PROMO_DYNAMODB_ENDPOINT"),
        })
    }
}

/// `PROMO_ISSUER_SECRET`; none configured means every hand-off is refused (503).
pub fn issuer_secrets() -> Result<Vec<Secret>, ConfigError> {
    var("PROMO_ISSUER_SECRET")
        .unwrap_or_default()
        .split_whitespace()
        .map(Secret::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::Invalid("PROMO_ISSUER_SECRET", e.to_string()))
}

/// `PROMO_SHOPPER_JWT_SECRET`, required by the API.
pub fn shopper_jwt_secret() -> Result<String, ConfigError> {
    var("PROMO_SHOPPER_JWT_SECRET").ok_or(ConfigError::Missing("PROMO_SHOPPER_JWT_SECRET"))
}

/// The edge's KV namespace (`PROMO_CF_*`); none set means sell-outs only rebuild the store's
/// copy of the price book, and a partial setting is an error.
pub fn edge_kv() -> Result<Option<crate::edge_kv::EdgeKv>, ConfigError> {
    crate::edge_kv::EdgeKv::from_vars(var).map_err(|e| ConfigError::Invalid("PROMO_CF_*", e.to_string()))
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
