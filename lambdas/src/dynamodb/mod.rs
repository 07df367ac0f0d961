//! The DynamoDB adapter of the store port ([`promo_shared::ports::store::Store`]) over
//! `aws-sdk-dynamodb`, with the semantics of the embedded SQLite store (both pass the one
//! conformance suite in `infra/conformance`).
//!
//! # Table
//!
//! One table as `template.yaml` declares it ([`create_table`] makes the same one for tests
//! and local setups): string keys `pk` (HASH) / `sk` (RANGE), TTL on `expires_at`,
//! on-demand billing. Every access is by key or by partition: no secondary index.
//!
//! # Modules
//!
//! - [`attributes`]: items as DynamoDB attribute maps (integers only);
//! - [`expressions`]: conditions and updates as expressions with placeholders;
//! - [`transactions`]: `TransactWriteItems`, cancellation reasons per slot, client tokens;
//! - [`errors`]: the SDK's errors as the port's;
//! - [`table`]: the table as `template.yaml` declares it.
//!
//! # Operations
//!
//! - `get`: `GetItem` with `ConsistentRead`.
//! - A failed condition of a single-item write is [`StoreError::ConditionFailed`], with the
//!   item it found (`ReturnValuesOnConditionCheckFailure = ALL_OLD`).
//! - `put`: `PutItem`. `update`: `UpdateItem` with `SET` / `ADD` / `REMOVE` clauses and
//!   `ReturnValues = ALL_NEW` (DynamoDB creates a missing item). `delete`: `DeleteItem` with
//!   `ReturnValues = ALL_OLD`.
//! - `query`: `Query` with a `KeyConditionExpression` on the partition key (and
//!   `begins_with` on the sort key for a prefix), ascending, `Limit`, `ConsistentRead`. The
//!   cursor is the last item's `sk`, as in the embedded store; it becomes the
//!   `ExclusiveStartKey`. `next` is set whenever DynamoDB returns a `LastEvaluatedKey`, so
//!   the last page may be followed by one empty page.
//!
//! # HTTP client
//!
//! The SDK is built without its default HTTPS client (rustls on aws-lc, which needs cmake):
//! [`https_client`] is hyper with rustls on `ring` and the system's root certificates. A
//! client's connection pool belongs to the tokio runtime that opened it: make one
//! [`DynamoStore`] per runtime (one per Lambda process is the normal case).

mod attributes;
mod errors;
mod expressions;
mod table;
mod transactions;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use promo_shared::ports::clock::Clock;
use promo_shared::ports::store::{Cond, Item, Key, Page, Query, Store, StoreError, TxOp, Update};

pub use attributes::{Attrs, from_attr, from_attrs, to_attr, to_attrs};
use attributes::{key_attrs, string_attr};
use errors::{classify, condition_failed, return_found};
use expressions::Expr;
pub use table::create_table;

use crate::system::SystemClock;

/// The store port on one DynamoDB table.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Reads the time a client token's window starts at.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoStore {
    async fn get_item(&self, key: &Key, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(classify)?;
        out.item.map(from_attrs).transpose()
    }

    pub fn new(client: Client, table_name: impl Into<String>) -> DynamoStore {
        DynamoStore { client, table: table_name.into(), clock: Arc::new(SystemClock) }
    }

    /// The same store reading time (a client token's window) from `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> DynamoStore {
        DynamoStore { clock, ..self }
    }

    /// A store on `table_name` with the SDK's default configuration chain (environment,
    /// profile, container/instance credentials; the region from `AWS_REGION` or the
    /// profile). `endpoint_url` points the client at another endpoint (a local
    /// DynamoDB-compatible server); the region then defaults to `us-east-1` when none is set.
    pub async fn from_env(table_name: impl Into<String>, endpoint_url: Option<&str>) -> DynamoStore {
        DynamoStore::new(Client::new(&sdk_config(endpoint_url).await), table_name)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }
}

/// The AWS SDK's configuration every client here is built from: the default chain
/// (environment, profile, container/instance credentials; the region from `AWS_REGION` or the
/// profile) over [`https_client`]. `endpoint_url` points it at a local stand-in, and then the
/// region defaults to `us-east-1` when none is set.
pub async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if endpoint_url.is_some() && config.region().is_none() {
        return config.into_builder().region(aws_config::Region::from_static("us-east-1")).build();
    }
    config
}

/// The SDK's HTTPS client on rustls with `ring` (no aws-lc / cmake in the build).
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get_item(key, true).await
    }

    async fn get_eventual(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get_item(key, false).await
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        Key::of(&item)?;
        let attrs = to_attrs(&item)?;
        let mut e = Expr::default();
        let cond = cond.as_ref().map(|c| e.cond(c)).transpose()?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .set_return_values_on_condition_check_failure(return_found(&cond))
            .set_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => condition_failed(c.item()),
                _ => classify(e),
            })?;
        Ok(())
    }

    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        let mut e = Expr::default();
        let update = e.update(updates)?;
        let cond = cond.as_ref().map(|c| e.cond(c)).transpose()?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression(update)
            .set_return_values_on_condition_check_failure(return_found(&cond))
            .set_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => condition_failed(c.item()),
                _ => classify(e),
            })?;
        match out.attributes {
            Some(attrs) if !attrs.is_empty() => from_attrs(attrs),
            _ => Ok(key.item()),
        }
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        let mut e = Expr::default();
        let cond = cond.as_ref().map(|c| e.cond(c)).transpose()?;
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_return_values_on_condition_check_failure(return_found(&cond))
            .set_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(c)) => condition_failed(c.item()),
                _ => classify(e),
            })?;
        match out.attributes {
            Some(attrs) if !attrs.is_empty() => from_attrs(attrs).map(Some),
            _ => Ok(None),
        }
    }

    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        self.transact_ops(ops, token).await
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        if q.limit == 0 {
            return Err(StoreError::Invalid("query limit must be at least 1".into()));
        }
        let mut e = Expr::default();
        let key_cond = e.key_condition(&q.pk, q.sk_prefix.as_deref());
        let start = q.after.as_ref().map(|sk| {
            HashMap::from([
                ("pk".to_string(), AttributeValue::S(q.pk.clone())),
                ("sk".to_string(), AttributeValue::S(sk.clone())),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(key_cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .set_exclusive_start_key(start)
            .limit(i32::try_from(q.limit).unwrap_or(i32::MAX))
            .scan_index_forward(true)
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let raw = out.items.unwrap_or_default();
        let next = match out.last_evaluated_key {
            None => None,
            // The last item's cursor (the same keys as LastEvaluatedKey).
            Some(lek) => {
                let from = raw.last().unwrap_or(&lek);
                let field = |n: &str| {
                    string_attr(from, n).ok_or_else(|| StoreError::Unavailable(format!("query page without `{n}`")))
                };
                Some(field("sk")?)
            }
        };
        let items = raw.into_iter().map(from_attrs).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next })
    }
}
