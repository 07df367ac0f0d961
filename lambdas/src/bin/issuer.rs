//! The coupon issuer Lambda: builds its clients once, then serves function URL hand-offs
//! from the edge, SQS batches and Amazon MQ batches (see `promo_lambdas::entry`).
//! Configuration: `promo_lambdas::config`.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use promo_lambdas::config::LambdaConfig;
use promo_lambdas::dynamodb::DynamoStore;
use promo_lambdas::entry;
use promo_lambdas::system::OsIds;
use promo_lambdas::system::SystemClock;
use promo_shared::payments::issuer::Issuer;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let cfg = LambdaConfig::from_env()?;
    let secrets = Arc::new(cfg.issuer_secrets.clone());
    let store = DynamoStore::from_env(cfg.table, cfg.dynamodb_endpoint.as_deref()).await;
    let issuer = Arc::new(Issuer::new(store, Arc::new(SystemClock), Arc::new(OsIds)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (issuer, secrets) = (issuer.clone(), secrets.clone());
        async move { entry::handle(&issuer, &secrets, event.payload).await.map_err(Error::from) }
    }))
    .await
}
