//! The shoppers' API Lambda behind a function URL: FCFS claims and the wallet
//! (`promo_shared::serve::api`); a claim that finds its campaign sold out republishes the price
//! book (`promo_shared::claims::sell_out`). Builds its clients once; configuration: `promo_lambdas::config`.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use promo_lambdas::config::LambdaConfig;
use promo_lambdas::dynamodb::DynamoStore;
use promo_lambdas::entry;
use promo_lambdas::system::OsIds;
use promo_lambdas::system::SystemClock;
use promo_shared::claims::Claimer;
use promo_shared::claims::sell_out::Republisher;
use promo_shared::serve::api::Api;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let cfg = LambdaConfig::from_env()?;
    let auth = cfg.shopper_auth()?;
    let edge = cfg.edge_kv.clone();
    if edge.is_none() {
        tracing::warn!(
            "PROMO_CF_* not set: a sell-out rebuilds the stored price book only; product pages keep \
             the coupon until the next `promoctl campaign deploy` publishes to the edge's KV"
        );
    }
    let store = DynamoStore::from_env(cfg.table, cfg.dynamodb_endpoint.as_deref()).await;
    let clock = Arc::new(SystemClock);
    // A sell-out republishes the price book (store and KV), so pages stop offering its coupon.
    let republisher = Arc::new(Republisher::new(store.clone(), clock.clone(), edge.map(|kv| Arc::new(kv) as _)));
    let claimer = Claimer::new(store, clock, Arc::new(OsIds)).with_sold_out_hook(republisher);
    let mut api = Api::new(claimer, auth);
    match cfg.email.unsubscribe_keys() {
        Ok(keys) => api = api.with_unsubscribe(keys),
        Err(e) => tracing::warn!(error = %e, "unsubscribe links are not served: /v1/unsubscribe answers 503"),
    }
    let api = Arc::new(api);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let api = api.clone();
        async move { entry::api(&api, event.payload).await.map_err(Error::from) }
    }))
    .await
}
