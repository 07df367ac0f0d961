//! The shopper authentication port: who a request's bearer token names (HS256 JWTs in
//! `lambdas::auth`).

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::domain::ids::UserId;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// Verifies shoppers' bearer tokens.
pub trait ShopperTokens: Send + Sync {
    /// The shopper of a request's `Authorization: Bearer <token>` header (exactly one).
    fn shopper(&self, authorization: &mut dyn Iterator<Item = &str>, now: DateTime<Utc>) -> Result<UserId, AuthError>;
}
