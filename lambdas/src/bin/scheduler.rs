//! The events' scheduler Lambda (EventBridge, every minute): opens and closes limited events,
//! expires holds and promotes the next in line, closes waitlists and mails the shoppers
//! concerned (see `promo_shared::events::scheduler` and `promo_lambdas::entry::scheduler`).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use promo_lambdas::config::LambdaConfig;
use promo_lambdas::dynamodb::DynamoStore;
use promo_lambdas::entry;
use promo_lambdas::ses::SesMailer;
use promo_lambdas::system::{OsIds, SystemClock};
use promo_shared::events::Events;
use promo_shared::events::scheduler::Notices;
use serde_json::Value;

/// Time a run keeps for itself before the invocation's deadline.
const MARGIN: chrono::Duration = chrono::Duration::seconds(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let cfg = LambdaConfig::from_env()?;
    let store = Arc::new(DynamoStore::from_env(cfg.table.clone(), cfg.dynamodb_endpoint.as_deref()).await);
    let from = cfg.events_mail_from()?;
    let mailer = match &from {
        Some(_) => {
            let m = SesMailer::from_env(cfg.email.ses_endpoint.as_deref()).await;
            Some(Arc::new(match &cfg.email.configuration_set {
                Some(set) => m.with_configuration_set(set),
                None => m,
            }))
        }
        None => None,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (store, mailer, from) = (store.clone(), mailer.clone(), from.clone());
        async move {
            let deadline =
                entry::invocation_deadline(event.context.deadline, MARGIN, chrono::Duration::seconds(50), &SystemClock);
            let events = Events::new(&*store, &SystemClock, &OsIds);
            let notices = mailer.as_ref().zip(from).map(|(m, from)| Notices { mailer: &**m, from });
            entry::scheduler(&events, notices.as_ref(), deadline).await.map_err(Error::from)
        }
    }))
    .await
}
