//! Where promoctl's commands read and write (`--env`, `PROMO_ENV`):
//!
//! - `local` (the default): the local platform's store under the data directory, what
//!   `promoctl dev` serves; the edge's KV too when `PROMO_CF_*` is set;
//! - `prod`: the production DynamoDB table the Lambdas read (`PROMO_TABLE_NAME`, credentials
//!   and region from the AWS SDK's usual chain and `AWS_PROFILE`; `PROMO_DYNAMODB_ENDPOINT`
//!   for a stand-in) and the Worker's KV namespace (`PROMO_CF_*`, required). Built with the
//!   cargo feature `prod`, so `promoctl dev`'s build stays free of the AWS SDK.
//!
//! The store is the one source of truth; the KV namespace is a projection of it, written by
//! the same functions here and in the API Lambda's sell-out republisher.

use std::path::Path;
use std::sync::Arc;

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
}

impl Target {
    /// Opens `env`'s store (the configuration is checked before anything is written).
    pub async fn open(env: Env, data_dir: &Path) -> anyhow::Result<Target> {
        let edge = config::edge_kv()?; // a partial setting fails before anything is written
        match env {
            Env::Local => Ok(Target {
                env,
                store: runtime::open_store(data_dir)?,
                edge,
                description: format!("local store {}", data_dir.display()),
            }),
            Env::Prod => open_prod(edge).await,
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
    Ok(Target { env: Env::Prod, store: Arc::new(store), edge: Some(edge), description })
}

#[cfg(not(feature = "prod"))]
async fn open_prod(_edge: Option<EdgeKv>) -> anyhow::Result<Target> {
    anyhow::bail!(
        "this promoctl was built without the production target; install it with `cargo install --locked --path infra \
         --features prod`"
    )
}
