//! The email feedback Lambda: SES bounce and complaint events (configuration set → SNS →
//! here) suppress their addresses and pause a campaign whose rates pass the limits (see
//! `promo_lambdas::entry::feedback`).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use promo_lambdas::config::LambdaConfig;
use promo_lambdas::dynamodb::DynamoStore;
use promo_lambdas::entry;
use promo_lambdas::system::SystemClock;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let cfg = LambdaConfig::from_env()?;
    let store = Arc::new(DynamoStore::from_env(cfg.table, cfg.dynamodb_endpoint.as_deref()).await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let store = store.clone();
        async move { entry::feedback(&*store, &SystemClock, event.payload).await.map_err(Error::from) }
    }))
    .await
}
