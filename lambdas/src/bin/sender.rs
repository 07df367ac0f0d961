//! The campaign email sender Lambda: builds its clients once (DynamoDB, SES v2, the account's
//! send rate, the email queue), then sends fan-out jobs from SQS or Amazon MQ (see
//! `promo_lambdas::entry::sender_until`). Configuration: `promo_lambdas::config`.
//!
//! The account's rate is SES's `MaxSendRate` (`GetAccount`), else `PROMO_EMAIL_RATE`; each
//! instance takes `1 / PROMO_SENDER_CONCURRENCY` of it, the function's reserved concurrency
//! bounding how many instances there are.
//!
//! Each invocation stops starting bulk calls `PROMO_SENDER_DEADLINE_MARGIN_SECONDS` before
//! its deadline: what is left of a job goes back unclaimed (never stranded UNCERTAIN by the
//! timeout). With `PROMO_EMAIL_QUEUE_URL`, held jobs go back to the queue as delayed copies.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use promo_lambdas::config::LambdaConfig;
use promo_lambdas::dynamodb::DynamoStore;
use promo_lambdas::entry;
use promo_lambdas::ses::SesMailer;
use promo_lambdas::ses::send_rate::RateWindow;
use promo_lambdas::sqs::{SqsConfig, SqsQueue};
use promo_lambdas::system::{OsIds, SystemClock};
use promo_shared::email::sender::{EMAIL_JOBS_QUEUE, Sender, SenderConfig};
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
    // Only `defer` is used (a copy to the queue, the original deleted): no dead-letter URL.
    let queue = match &email.queue_url {
        Some(url) => {
            let config = SqsConfig { max_attempts: 24, visibility: Duration::from_secs(360), create_missing: false };
            let q = SqsQueue::from_env(email.sqs_endpoint.as_deref(), config).await;
            Some(Arc::new(q.with_queue(EMAIL_JOBS_QUEUE, url, "")))
        }
        None => {
            tracing::warn!("PROMO_EMAIL_QUEUE_URL is unset: held jobs are returned as failed receives");
            None
        }
    };
    let sender = Arc::new(Sender {
        store: Arc::new(store),
        mailer: Arc::new(mailer),
        rate,
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsIds),
        keys: email.unsubscribe_keys()?,
        config: SenderConfig {
            unsubscribe_url: email.unsubscribe_url()?,
            paused_retry: Duration::from_secs(email.paused_retry.into()),
            ..SenderConfig::default()
        },
    });
    let parallel = email.parallel;
    let margin = chrono::Duration::seconds(email.deadline_margin.into());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (sender, queue) = (sender.clone(), queue.clone());
        async move {
            let deadline =
                entry::invocation_deadline(event.context.deadline, margin, chrono::Duration::seconds(50), &SystemClock);
            let requeue = queue.as_deref().map(|q| entry::Requeue { queue: q, name: EMAIL_JOBS_QUEUE });
            entry::sender_until(&sender, event.payload, parallel, Some(deadline), requeue).await.map_err(Error::from)
        }
    }))
    .await
}
