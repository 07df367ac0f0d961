//! The coupon issuer Lambda: builds its clients once, then serves function URL hand-offs
//! from the edge, SQS batches and Amazon MQ batches (see `promo_lambdas::entry`).
//!
//! Environment: `PROMO_TABLE_NAME` (required), `PROMO_ISSUER_SECRET` (space-separated
//! `whsec_` secrets verifying the edge's hand-off), `PROMO_DYNAMODB_ENDPOINT` (optional, for
//! a local stand-in), and the usual AWS variables.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use promo_edge::webhook::standard::Secret;
use promo_lambdas::dynamodb::DynamoStore;
use promo_lambdas::entry;
use promo_lambdas::issuer::Issuer;
use promo_lambdas::system::{OsIds, SystemClock};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let table = std::env::var("PROMO_TABLE_NAME").map_err(|_| "PROMO_TABLE_NAME is not set")?;
    let endpoint = std::env::var("PROMO_DYNAMODB_ENDPOINT").ok();
    let secrets = std::env::var("PROMO_ISSUER_SECRET")
        .unwrap_or_default()
        .split_whitespace()
        .map(Secret::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("PROMO_ISSUER_SECRET: {e}"))?;
    let store = DynamoStore::from_env(table, endpoint.as_deref()).await;
    let issuer = Arc::new(Issuer::new(store, Arc::new(SystemClock), Arc::new(OsIds)));
    let secrets = Arc::new(secrets);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (issuer, secrets) = (issuer.clone(), secrets.clone());
        async move { entry::handle(&issuer, &secrets, event.payload).await.map_err(Error::from) }
    }))
    .await
}
