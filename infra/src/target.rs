//! Where promoctl's commands read and write (`--env`, `PROMO_ENV`):
//!
//! - `local` (the default): the local platform's store under the data directory, what
//!   `promoctl dev` serves; never the Worker's KV, whatever `PROMO_CF_*` says (those are
//!   production's variables: a local try-out must not overwrite production's prices);
//! - `prod`: the production DynamoDB table the Lambdas read (`PROMO_TABLE_NAME`, credentials
//!   and region from the AWS SDK's usual chain and `AWS_PROFILE`; `PROMO_DYNAMODB_ENDPOINT`
//!   for a stand-in) and the Worker's KV namespace (`PROMO_CF_*`, required). Built with the
//!   cargo feature `prod`, so `promoctl dev`'s build stays free of the AWS SDK.
//!
//! The store is the one source of truth; the KV namespace is a projection of it, written by
//! the same functions here and in the API Lambda's sell-out republisher.

use std::path::Path;
use std::sync::Arc;

use promo_shared::ports::mail::BulkMailer;
use promo_shared::ports::queue::Queue;
use promo_shared::ports::store::Store;

use crate::config;
use crate::edge_kv::EdgeKv;
use crate::runtime;

/// Which platform a command works on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Env {
    /// The local platform (`promoctl dev`'s store).
    #[default]
    Local,
    /// Production: the DynamoDB table and the Worker's KV namespace.
    Prod,
}

/// The store a command works on and the edge's KV namespace it publishes to, if any.
pub struct Target {
    pub env: Env,
    pub store: Arc<dyn Store>,
    pub edge: Option<EdgeKv>,
    /// Where this is, for messages ("local store .promo", "DynamoDB table promo").
    pub description: String,
    /// The local platform's directory (its queue and outbox, for `--env local`).
    pub data_dir: std::path::PathBuf,
}

/// Where campaign email goes on a target: the fan-out queue and the provider.
pub struct EmailPorts {
    pub queue: Arc<dyn Queue>,
    pub mailer: Arc<dyn BulkMailer>,
}

impl Target {
    /// The queue and the mailer of campaign email: locally the platform's queue and outbox
    /// (`promoctl dev` sends from them), in production the stack's SQS queue and SES.
    pub async fn email(&self) -> anyhow::Result<EmailPorts> {
        match self.env {
            Env::Local => {
                let queue = crate::embedded::SqliteQueue::open(
                    &self.data_dir.join("queue.db"),
                    crate::embedded::QueueConfig::default(),
                )?;
                let mailer = crate::embedded::OutboxMailer::open(&self.data_dir.join("outbox"))?;
                Ok(EmailPorts { queue: Arc::new(queue), mailer: Arc::new(mailer) })
            }
            Env::Prod => prod_email().await,
        }
    }
}

#[cfg(feature = "prod")]
async fn prod_email() -> anyhow::Result<EmailPorts> {
    let q = config::prod_queue("email")?;
    // As the stack's EmailQueue is declared (template.yaml): the fan-out only publishes.
    let config = promo_lambdas::sqs::SqsConfig {
        max_attempts: 24,
        visibility: std::time::Duration::from_secs(360),
        create_missing: false,
    };
    let queue = promo_lambdas::sqs::SqsQueue::from_env(q.endpoint.as_deref(), config).await.with_queue(
        promo_shared::email::sender::EMAIL_JOBS_QUEUE,
        &q.url,
        &q.dlq_url,
    );
    let mailer = promo_lambdas::ses::SesMailer::from_env(config::ses_endpoint().as_deref()).await;
    Ok(EmailPorts { queue: Arc::new(queue), mailer: Arc::new(mailer) })
}

#[cfg(not(feature = "prod"))]
async fn prod_email() -> anyhow::Result<EmailPorts> {
    anyhow::bail!("this promoctl was built without the production target (`--features prod`)")
}

impl Target {
    /// Opens `env`'s store (the configuration is checked before anything is written). Only
    /// `prod` gets the Worker's KV: `PROMO_CF_*` is production's namespace, and a local target
    /// never publishes there, whatever the environment says.
    pub async fn open(env: Env, data_dir: &Path) -> anyhow::Result<Target> {
        match env {
            Env::Local => {
                if config::edge_kv_configured() {
                    eprintln!(
                        "note: PROMO_CF_* is set, but --env local never writes the Worker's KV (that is --env prod)"
                    );
                }
                Ok(Target {
                    env,
                    store: runtime::open_store(data_dir)?,
                    edge: None,
                    description: format!("local store {}", data_dir.display()),
                    data_dir: data_dir.to_path_buf(),
                })
            }
            // A partial setting fails before anything is written.
            Env::Prod => open_prod(config::edge_kv()?).await,
        }
    }
}

#[cfg(feature = "prod")]
async fn open_prod(edge: Option<EdgeKv>) -> anyhow::Result<Target> {
    let prod = config::prod_store()?;
    let edge = edge.ok_or_else(|| {
        anyhow::anyhow!(
            "--env prod publishes to the Worker's KV namespace: set PROMO_CF_ACCOUNT_ID, PROMO_CF_KV_NAMESPACE_ID and \
             PROMO_CF_API_TOKEN"
        )
    })?;
    let store = promo_lambdas::dynamodb::DynamoStore::from_env(&prod.table, prod.endpoint.as_deref()).await;
    let description = match &prod.endpoint {
        Some(url) => format!("DynamoDB table {} at {url}", prod.table),
        None => format!("DynamoDB table {}", prod.table),
    };
    Ok(Target { env: Env::Prod, store: Arc::new(store), edge: Some(edge), description, data_dir: Default::default() })
}

#[cfg(not(feature = "prod"))]
async fn open_prod(_edge: Option<EdgeKv>) -> anyhow::Result<Target> {
    anyhow::bail!(
        "this promoctl was built without the production target; install it with `cargo install --locked --path infra \
         --features prod`"
    )
}
