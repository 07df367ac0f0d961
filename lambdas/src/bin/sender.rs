//! The campaign email sender Lambda: builds its clients once (DynamoDB, SES v2, the account's
//! send rate), then sends fan-out jobs from SQS or Amazon MQ (see
//! `promo_lambdas::entry::sender`). Configuration: `promo_lambdas::config`.
//!
//! The account's rate is SES's `MaxSendRate` (`GetAccount`), else `PROMO_EMAIL_RATE`; each
//! instance takes `1 / PROMO_SENDER_CONCURRENCY` of it, the function's reserved concurrency
//! bounding how many instances there are.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use promo_lambdas::config::LambdaConfig;
use promo_lambdas::dynamodb::DynamoStore;
use promo_lambdas::entry;
use promo_lambdas::send_rate::RateWindow;
use promo_lambdas::ses::SesMailer;
use promo_lambdas::system::{OsIds, SystemClock};
use promo_shared::app::email_sender::{Sender, SenderConfig};
use promo_shared::ports::mail::{SendRate, Unlimited};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let cfg = LambdaConfig::from_env()?;
    let email = cfg.email.clone();
    let store = DynamoStore::from_env(cfg.table, cfg.dynamodb_endpoint.as_deref()).await;
    let mut mailer = SesMailer::from_env(email.ses_endpoint.as_deref()).await;
    if let Some(set) = &email.configuration_set {
        mailer = mailer.with_configuration_set(set);
    }
    let rate: Arc<dyn SendRate> = match mailer.max_send_rate().await.or(email.rate) {
        Some(r) => Arc::new(RateWindow::per_instance(r, email.instances)?),
        None => {
            tracing::warn!("no send rate: SES GetAccount did not answer and PROMO_EMAIL_RATE is unset");
            Arc::new(Unlimited)
        }
    };
    let sender = Arc::new(Sender {
        store: Arc::new(store),
        mailer: Arc::new(mailer),
        rate,
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsIds),
        keys: email.unsubscribe_keys()?,
        config: SenderConfig { unsubscribe_url: email.unsubscribe_url()?, ..SenderConfig::default() },
    });
    let parallel = email.parallel;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let sender = sender.clone();
        async move { entry::sender(&sender, event.payload, parallel).await.map_err(Error::from) }
    }))
    .await
}
