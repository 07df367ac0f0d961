//! Where promoctl's commands read and write (`--env`, `PROMO_ENV`):
//!
//! - `local` (the default): the local platform's store under the data directory, what
//!   `promoctl dev` serves; never the Worker's KV, whatever `PROMO_CF_*` says (those are
//!   a deployed stage's variables: a local try-out must not overwrite production's prices);
//! - `staging`, `prod` (the deployed stages, [`crate::stages::STAGES`]): the stage's DynamoDB
//!   table the Lambdas read and the Worker's KV namespace, as `promoctl env add <stage>`
//!   recorded them from the stack's outputs ([`crate::stages`]), each overridden by its
//!   variable (`PROMO_TABLE_NAME`, `PROMO_CF_*`...; credentials and region from the AWS SDK's
//!   usual chain and `AWS_PROFILE`; `PROMO_DYNAMODB_ENDPOINT` for a stand-in). Built with the
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
    /// The staging stage: its DynamoDB table and its Worker's KV namespace.
    Staging,
    /// Production: the DynamoDB table and the Worker's KV namespace.
    Prod,
}

impl Env {
    /// The deployed stage this is (one of [`crate::stages::STAGES`]); `None` for `local`.
    pub fn stage(self) -> Option<&'static str> {
        match self {
            Env::Local => None,
            Env::Staging => Some("staging"),
            Env::Prod => Some("prod"),
        }
    }

    /// A deployed stage (banners, confirmations, the AWS adapters), not the local platform.
    pub fn is_remote(self) -> bool {
        self.stage().is_some()
    }

    /// How messages name it: "production", "staging", "local".
    pub fn human(self) -> &'static str {
        match self {
            Env::Local => "local",
            Env::Staging => "staging",
            Env::Prod => "production",
        }
    }
}

/// Makes `env`'s recorded profile (`promoctl env add`) the fallback of every `PROMO_*`
/// variable the configuration reads; the variables themselves still win. Nothing for `local`,
/// or for a stage without a profile (its variables then say everything, as before).
pub fn select_stage(env: Env) -> anyhow::Result<Option<crate::stages::Profile>> {
    let Some(stage) = env.stage() else { return Ok(None) };
    let profile = crate::stages::load(stage)?;
    if let Some(p) = &profile {
        config::use_stage_vars(p.vars.clone());
    }
    Ok(profile)
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
            Env::Staging | Env::Prod => prod_email().await,
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
            Env::Staging | Env::Prod => open_prod(env).await,
        }
    }
}

#[cfg(feature = "prod")]
async fn open_prod(env: Env) -> anyhow::Result<Target> {
    let stage = env.stage().unwrap_or("prod");
    // The table first: without it (no `env add`) that is the one thing to say.
    let prod = config::prod_store(stage)?;
    let edge = config::edge_kv()?.ok_or_else(|| {
        anyhow::anyhow!(
            "--env {stage} publishes to the Worker's KV namespace: set PROMO_CF_API_TOKEN (and PROMO_CF_ACCOUNT_ID, \
             PROMO_CF_KV_NAMESPACE_ID unless `promoctl env add {stage}` recorded them from a stack deployed with the \
             Cloudflare parameters)"
        )
    })?;
    check_region(env, prod.endpoint.as_deref()).await?;
    let store = promo_lambdas::dynamodb::DynamoStore::from_env(&prod.table, prod.endpoint.as_deref()).await;
    let description = match &prod.endpoint {
        Some(url) => format!("DynamoDB table {} at {url}", prod.table),
        None => format!("DynamoDB table {}", prod.table),
    };
    Ok(Target { env, store: Arc::new(store), edge: Some(edge), description, data_dir: Default::default() })
}

/// A stage recorded in another region than the SDK's would read another account's (or no)
/// table: say which region to use instead.
#[cfg(feature = "prod")]
async fn check_region(env: Env, endpoint: Option<&str>) -> anyhow::Result<()> {
    let Some(stage) = env.stage() else { return Ok(()) };
    let Some(want) = crate::stages::load(stage)?.and_then(|p| p.region) else { return Ok(()) };
    let config = promo_lambdas::dynamodb::sdk_config(endpoint).await;
    let have = config.region().map(|r| r.to_string());
    anyhow::ensure!(
        have.as_deref() == Some(want.as_str()),
        "stage {stage} is in region {want} (its stack, `promoctl env add`), but the AWS SDK's region is {}: set \
         AWS_REGION={want} (or an AWS_PROFILE in that region)",
        have.as_deref().unwrap_or("unset")
    );
    Ok(())
}

#[cfg(not(feature = "prod"))]
async fn open_prod(_env: Env) -> anyhow::Result<Target> {
    anyhow::bail!(
        "this promoctl was built without the production target; install it with `cargo install --locked --path infra \
         --features prod`"
    )
}
