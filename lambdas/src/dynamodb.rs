//! The DynamoDB adapter of the store port ([`promo_shared::ports::store::Store`]) over
//! `aws-sdk-dynamodb`, with the semantics of the embedded SQLite store (both pass the one
//! conformance suite in `infra/conformance`).
//!
//! # Table
//!
//! One table as `template.yaml` declares it ([`create_table`] makes the same one for tests
//! and local setups): string keys `pk` (HASH) / `sk` (RANGE), the global secondary index
//! `gsi1` on `gsi1pk` / `gsi1sk` with ALL projection, TTL on `expires_at`, on-demand billing.
//!
//! # Items
//!
//! An [`Item`] (a JSON object) maps to a DynamoDB item attribute by attribute: strings are
//! `S`, integers `N`, booleans `BOOL`, null `NULL`, arrays `L`, objects `M`. The store only
//! holds integers: a float is refused with [`StoreError::Invalid`] on the way in, and a
//! non-integer `N` read back is reported as a corrupt item. Sets (`SS`, `NS`), which this
//! adapter never writes, read back as arrays; binary values are refused.
//!
//! # Operations
//!
//! - `get`: `GetItem` with `ConsistentRead`.
//! - Conditions ([`Cond`]) become a `ConditionExpression` with `#n` name and `:v` value
//!   placeholders: `Exists` / `NotExists` are `attribute_exists(pk)` /
//!   `attribute_not_exists(pk)`, comparisons are `= <> < <= > >=`, combined with
//!   `AND` / `OR` / `NOT`. DynamoDB's own rules match [`Cond::eval`]: a missing attribute
//!   or one of another type compares false, and `<>` holds when the attribute is missing.
//!   A failed condition of a single-item write is [`StoreError::ConditionFailed`], with the
//!   item it found (`ReturnValuesOnConditionCheckFailure = ALL_OLD`).
//! - `put`: `PutItem`. `update`: `UpdateItem` with `SET` / `ADD` / `REMOVE` clauses and
//!   `ReturnValues = ALL_NEW` (DynamoDB creates a missing item). Several changes of one
//!   attribute, which DynamoDB refuses in one expression, are first folded into one change
//!   with the result of applying them in order, as [`Update::apply_all`] does; `pk`/`sk`
//!   cannot be changed. `delete`: `DeleteItem` with `ReturnValues = ALL_OLD`.
//! - `transact`: [`validate_tx`], then `TransactWriteItems` (with the `ClientRequestToken`
//!   when given). A `TransactionCanceledException`'s cancellation reasons map per
//!   operation: `ConditionalCheckFailed` → [`CancelReason::ConditionFailed`],
//!   `TransactionConflict` → [`CancelReason::Conflict`], `None` → [`CancelReason::None`].
//!   Every conditional operation asks for `ReturnValuesOnConditionCheckFailure = ALL_OLD`,
//!   so a failed one reports the item it found ([`StoreError::found_at`]).
//!   A token reused with other operations (`IdempotentParameterMismatchException`) is
//!   [`StoreError::Invalid`].
//! - `query`: `Query` with a `KeyConditionExpression` on the partition key (and
//!   `begins_with` on the sort key for a prefix), ascending, `Limit`, `ConsistentRead` on
//!   the table (a GSI is always eventually consistent), `IndexName = gsi1` for
//!   [`Index::Gsi1`]. Cursors are the embedded store's: on the table the last item's `sk`,
//!   on `gsi1` the JSON array `[gsi1sk, pk, sk]`; they become the `ExclusiveStartKey`.
//!   `next` is set whenever DynamoDB returns a `LastEvaluatedKey`, so the last page may be
//!   followed by one empty page.
//!
//! # Errors
//!
//! Throttling (`ProvisionedThroughputExceededException`, `ThrottlingException`,
//! `RequestLimitExceeded`, `LimitExceededException`) is [`StoreError::Throttled`];
//! timeouts, dispatch failures, unreadable responses, 5xx and other service failures are
//! [`StoreError::Unavailable`]; validation errors (and a missing table) are
//! [`StoreError::Invalid`]. The SDK's standard retry mode (3 attempts with backoff) runs
//! before any of these reaches the caller.
//!
//! # HTTP client
//!
//! The SDK is built without its default HTTPS client (rustls on aws-lc, which needs cmake):
//! [`https_client`] is hyper with rustls on `ring` and the system's root certificates. A
//! client's connection pool belongs to the tokio runtime that opened it: make one
//! [`DynamoStore`] per runtime (one per Lambda process is the normal case).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, Update as DdbUpdate,
};
use promo_shared::ports::store::CancelReason;
use promo_shared::ports::store::Cond;
use promo_shared::ports::store::GSI1_PK;
use promo_shared::ports::store::GSI1_SK;
use promo_shared::ports::store::Index;
use promo_shared::ports::store::Item;
use promo_shared::ports::store::ItemExt;
use promo_shared::ports::store::Key;
use promo_shared::ports::store::MAX_TX_OPS;
use promo_shared::ports::store::Page;
use promo_shared::ports::store::Query;
use promo_shared::ports::store::Store;
use promo_shared::ports::store::StoreError;
use promo_shared::ports::store::TTL_ATTRIBUTE;
use promo_shared::ports::store::TxOp;
use promo_shared::ports::store::Update;
use promo_shared::ports::store::validate_tx;
use serde_json::{Map, Value};

/// How long a transaction's client token makes a retry idempotent (DynamoDB: 10 minutes).
const TOKEN_WINDOW_SECONDS: i64 = 600;

/// The name of the one global secondary index.
pub const GSI1: &str = "gsi1";

/// A DynamoDB item as the SDK holds it.
pub type Attrs = HashMap<String, AttributeValue>;

/// The store port on one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> DynamoStore {
        DynamoStore { client, table: table_name.into() }
    }

    /// A store on `table_name` with the SDK's default configuration chain (environment,
    /// profile, container/instance credentials; the region from `AWS_REGION` or the
    /// profile). `endpoint_url` points the client at another endpoint (a local
    /// DynamoDB-compatible server); the region then defaults to `us-east-1` when none is set.
    pub async fn from_env(table_name: impl Into<String>, endpoint_url: Option<&str>) -> DynamoStore {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client());
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        let mut conf = aws_sdk_dynamodb::config::Builder::from(&config);
        if endpoint_url.is_some() && config.region().is_none() {
            conf = conf.region(aws_sdk_dynamodb::config::Region::from_static("us-east-1"));
        }
        DynamoStore::new(Client::from_conf(conf.build()), table_name)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }
}

/// The SDK's HTTPS client on rustls with `ring` (no aws-lc / cmake in the build).
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

/// Creates the table as `template.yaml` declares it — `pk`/`sk` string keys, GSI `gsi1` on
/// `gsi1pk`/`gsi1sk` with ALL projection, on-demand billing — waits until it is active and
/// enables TTL on `expires_at`. An existing table is left as it is (TTL is still enabled).
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let attr = |n: &str| {
        AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().map_err(invalid)
    };
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().map_err(invalid);
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1_PK, KeyType::Hash)?)
        .key_schema(key(GSI1_SK, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(invalid)?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr(GSI1_PK)?)
        .attribute_definitions(attr(GSI1_SK)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(classify(e)),
    }
    use aws_sdk_dynamodb::client::Waiters;
    client.wait_until_table_exists().table_name(name).wait(Duration::from_secs(300)).await.map_err(|e| {
        StoreError::Unavailable(format!("table {name} did not become active: {}", DisplayErrorContext(e)))
    })?;
    let ttl = client.describe_time_to_live().table_name(name).send().await.map_err(classify)?;
    let enabled = ttl.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some(TTL_ATTRIBUTE)
            && matches!(d.time_to_live_status(), Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling))
    });
    if !enabled {
        let spec =
            TimeToLiveSpecification::builder().attribute_name(TTL_ATTRIBUTE).enabled(true).build().map_err(invalid)?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(classify)?;
    }
    Ok(())
}

// ---- items ----------------------------------------------------------------------------

/// A JSON value as a DynamoDB attribute value (integers only).
pub fn to_attr(v: &Value) -> Result<AttributeValue, StoreError> {
    Ok(match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => AttributeValue::N(i.to_string()),
            (None, Some(u)) => AttributeValue::N(u.to_string()),
            _ => return Err(StoreError::Invalid("numbers in items must be integers".into())),
        },
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attr).collect::<Result<_, _>>()?),
        Value::Object(m) => AttributeValue::M(to_attrs(m)?),
    })
}

/// A DynamoDB attribute value as a JSON value.
pub fn from_attr(a: AttributeValue) -> Result<Value, StoreError> {
    Ok(match a {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::N(n) => number(&n)?,
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::L(l) => Value::Array(l.into_iter().map(from_attr).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => Value::Object(from_attrs(m)?),
        AttributeValue::Ss(ss) => Value::Array(ss.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(ns.iter().map(|n| number(n)).collect::<Result<_, _>>()?),
        other => return Err(StoreError::Unavailable(format!("unsupported attribute value in the store: {other:?}"))),
    })
}

fn number(n: &str) -> Result<Value, StoreError> {
    if let Ok(i) = n.parse::<i64>() {
        Ok(Value::from(i))
    } else if let Ok(u) = n.parse::<u64>() {
        Ok(Value::from(u))
    } else {
        Err(StoreError::Unavailable(format!("non-integer number `{n}` in the store")))
    }
}

/// A JSON object (an [`Item`]) as a DynamoDB item.
pub fn to_attrs(item: &Map<String, Value>) -> Result<Attrs, StoreError> {
    item.iter().map(|(k, v)| Ok((k.clone(), to_attr(v)?))).collect()
}

/// A DynamoDB item as a JSON object.
pub fn from_attrs(attrs: Attrs) -> Result<Item, StoreError> {
    attrs.into_iter().map(|(k, v)| Ok((k, from_attr(v)?))).collect()
}

fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(key.pk.clone())),
        ("sk".to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

// ---- expressions ----------------------------------------------------------------------

/// Placeholders of one request's expressions.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    by_attr: HashMap<String, String>,
    values: Attrs,
}

/// An attribute that no item has: `REMOVE` of it is an update that changes nothing.
const NOOP_ATTRIBUTE: &str = "promo:noop";

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        if let Some(p) = self.by_attr.get(attr) {
            return p.clone();
        }
        let p = format!("#n{}", self.by_attr.len());
        self.by_attr.insert(attr.to_string(), p.clone());
        self.names.insert(p.clone(), attr.to_string());
        p
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    fn cond(&mut self, c: &Cond) -> Result<String, StoreError> {
        let cmp = |e: &mut Expr, a: &str, op: &str, v: AttributeValue| format!("{} {op} {}", e.name(a), e.value(v));
        let n = |i: &i64| AttributeValue::N(i.to_string());
        Ok(match c {
            Cond::Exists => format!("attribute_exists({})", self.name("pk")),
            Cond::NotExists => format!("attribute_not_exists({})", self.name("pk")),
            Cond::AttrExists(a) => format!("attribute_exists({})", self.name(a)),
            Cond::AttrNotExists(a) => format!("attribute_not_exists({})", self.name(a)),
            Cond::Eq(a, v) => cmp(self, a, "=", to_attr(v)?),
            Cond::Ne(a, v) => cmp(self, a, "<>", to_attr(v)?),
            Cond::Lt(a, v) => cmp(self, a, "<", n(v)),
            Cond::Le(a, v) => cmp(self, a, "<=", n(v)),
            Cond::Gt(a, v) => cmp(self, a, ">", n(v)),
            Cond::Ge(a, v) => cmp(self, a, ">=", n(v)),
            Cond::And(cs) => self.join(cs, "AND", true)?,
            Cond::Or(cs) => self.join(cs, "OR", false)?,
            Cond::Not(c) => format!("NOT ({})", self.cond(c)?),
        })
    }

    /// `(a) OP (b) ...`; an empty AND is true and an empty OR false, as in [`Cond::eval`].
    fn join(&mut self, cs: &[Cond], op: &str, empty: bool) -> Result<String, StoreError> {
        if cs.is_empty() {
            let pk = self.name("pk");
            let (a, b) = (format!("attribute_exists({pk})"), format!("attribute_not_exists({pk})"));
            return Ok(if empty { format!("({a} OR {b})") } else { format!("({a} AND {b})") });
        }
        let parts = cs.iter().map(|c| Ok(format!("({})", self.cond(c)?))).collect::<Result<Vec<_>, StoreError>>()?;
        Ok(parts.join(&format!(" {op} ")))
    }

    /// `SET ... ADD ... REMOVE ...` for the folded updates.
    fn update(&mut self, updates: &[Update]) -> Result<String, StoreError> {
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for (attr, change) in fold_updates(updates)? {
            let n = self.name(&attr);
            match change {
                Change::Set(v) => {
                    let v = self.value(to_attr(&v)?);
                    set.push(format!("{n} = {v}"));
                }
                Change::Add(i) => {
                    let v = self.value(AttributeValue::N(i.to_string()));
                    add.push(format!("{n} {v}"));
                }
                Change::Remove => remove.push(n),
            }
        }
        if set.is_empty() && add.is_empty() && remove.is_empty() {
            remove.push(self.name(NOOP_ATTRIBUTE));
        }
        let mut clauses = Vec::new();
        for (kw, list) in [("SET", set), ("ADD", add), ("REMOVE", remove)] {
            if !list.is_empty() {
                clauses.push(format!("{kw} {}", list.join(", ")));
            }
        }
        Ok(clauses.join(" "))
    }

    fn names(&mut self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| std::mem::take(&mut self.names))
    }

    fn values(&mut self) -> Option<Attrs> {
        (!self.values.is_empty()).then(|| std::mem::take(&mut self.values))
    }
}

/// The net change of one attribute.
#[derive(Clone, Debug, PartialEq)]
enum Change {
    Set(Value),
    Add(i64),
    Remove,
}

/// Folds the updates into at most one change per attribute (DynamoDB refuses overlapping
/// paths in one expression), in order of first mention, with the effect of applying them
/// one after the other as [`Update::apply_all`] does.
fn fold_updates(updates: &[Update]) -> Result<Vec<(String, Change)>, StoreError> {
    let mut out: Vec<(String, Change)> = Vec::new();
    for u in updates {
        let attr = match u {
            Update::Set(a, _) | Update::Add(a, _) | Update::Remove(a) => a,
        };
        if attr == "pk" || attr == "sk" {
            return Err(StoreError::Invalid(format!("cannot update the key attribute `{attr}`")));
        }
        let overflow = || StoreError::Invalid(format!("`{attr}` would overflow"));
        let prev = out.iter().position(|(a, _)| a == attr);
        let next = match (u, prev.map(|i| &out[i].1)) {
            (Update::Set(_, v), _) => Change::Set(v.clone()),
            (Update::Remove(_), _) => Change::Remove,
            (Update::Add(_, n), None) => Change::Add(*n),
            (Update::Add(_, n), Some(Change::Add(m))) => Change::Add(m.checked_add(*n).ok_or_else(overflow)?),
            (Update::Add(_, n), Some(Change::Remove)) => Change::Set(Value::from(*n)),
            (Update::Add(_, n), Some(Change::Set(Value::Number(x)))) => {
                let x = x.as_i64().ok_or_else(|| StoreError::Invalid(format!("`{attr}` is not an integer")))?;
                Change::Set(Value::from(x.checked_add(*n).ok_or_else(overflow)?))
            }
            (Update::Add(..), Some(Change::Set(_))) => {
                return Err(StoreError::Invalid(format!("cannot ADD to non-number `{attr}`")));
            }
        };
        match prev {
            Some(i) => out[i].1 = next,
            None => out.push((attr.clone(), next)),
        }
    }
    Ok(out)
}

// ---- errors ---------------------------------------------------------------------------

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// Maps an SDK error (after the SDK's own retries) to the port's error.
fn classify<E>(e: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::ConstructionFailure(_) => StoreError::Invalid(message),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(message)
        }
        SdkError::ServiceError(se) => match se.err().code().unwrap_or_default() {
            // put, update and delete map this one themselves, with the item it carries;
            // no other operation has a condition.
            "ConditionalCheckFailedException" => StoreError::ConditionFailed { found: None },
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "LimitExceededException" => StoreError::Throttled(message),
            "ValidationException"
            | "SerializationException"
            | "ResourceNotFoundException"
            | "IdempotentParameterMismatchException"
            | "ItemCollectionSizeLimitExceededException" => StoreError::Invalid(message),
            _ => StoreError::Unavailable(message),
        },
        _ => StoreError::Unavailable(message),
    }
}

/// A conditional write asks for the item its condition finds when it fails: the caller
/// learns what won (an earlier reward, the current count) without reading again.
fn return_found(cond: &Option<String>) -> Option<ReturnValuesOnConditionCheckFailure> {
    cond.as_ref().map(|_| ReturnValuesOnConditionCheckFailure::AllOld)
}

/// The item a failed condition returned (`ReturnValuesOnConditionCheckFailure = ALL_OLD`);
/// `None` when there was none.
fn found_item(attrs: Option<&Attrs>) -> Result<Option<Item>, StoreError> {
    match attrs {
        Some(attrs) if !attrs.is_empty() => from_attrs(attrs.clone()).map(Some),
        _ => Ok(None),
    }
}

/// A single-item write's failed condition, with the item it found.
fn condition_failed(attrs: Option<&Attrs>) -> StoreError {
    match found_item(attrs) {
        Ok(found) => StoreError::ConditionFailed { found },
        Err(e) => e,
    }
}

/// The port's error for a cancelled transaction of `ops` operations.
fn cancelled(reasons: &[CancellationReason], ops: usize, message: &str) -> StoreError {
    let mut out = vec![CancelReason::None; ops];
    let mut found = vec![None; ops];
    let mut throttled = None;
    for ((slot, item), r) in out.iter_mut().zip(found.iter_mut()).zip(reasons) {
        match r.code().unwrap_or("None") {
            "None" => {}
            "ConditionalCheckFailed" => {
                *slot = CancelReason::ConditionFailed;
                *item = match found_item(r.item()) {
                    Ok(found) => found,
                    Err(e) => return e,
                };
            }
            "TransactionConflict" => *slot = CancelReason::Conflict,
            "ProvisionedThroughputExceeded" | "ThrottlingError" => throttled = Some(r.message().unwrap_or(message)),
            "ValidationError" | "ItemCollectionSizeLimitExceeded" => {
                return StoreError::Invalid(format!(
                    "{}: {}",
                    r.code().unwrap_or_default(),
                    r.message().unwrap_or(message)
                ));
            }
            other => return StoreError::Unavailable(format!("transaction cancelled ({other}): {message}")),
        }
    }
    match throttled {
        Some(m) if !out.contains(&CancelReason::ConditionFailed) => StoreError::Throttled(m.to_string()),
        _ => StoreError::TransactionCancelled { reasons: out, found },
    }
}

// ---- the port -------------------------------------------------------------------------

impl DynamoStore {
    fn tx_item(&self, op: &TxOp) -> Result<TransactWriteItem, StoreError> {
        let mut e = Expr::default();
        let cond = op.cond().map(|c| e.cond(c)).transpose()?;
        let found = return_found(&cond);
        Ok(match op {
            TxOp::Put { item, .. } => TransactWriteItem::builder().put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to_attrs(item)?))
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .set_return_values_on_condition_check_failure(found.clone())
                    .build()
                    .map_err(invalid)?,
            ),
            TxOp::Update { key, updates, .. } => {
                let update = e.update(updates)?;
                TransactWriteItem::builder().update(
                    DdbUpdate::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .update_expression(update)
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .set_return_values_on_condition_check_failure(found.clone())
                        .build()
                        .map_err(invalid)?,
                )
            }
            TxOp::Delete { key, .. } => TransactWriteItem::builder().delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .set_return_values_on_condition_check_failure(found.clone())
                    .build()
                    .map_err(invalid)?,
            ),
            TxOp::Check { key, .. } => TransactWriteItem::builder().condition_check(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .set_return_values_on_condition_check_failure(found.clone())
                    .build()
                    .map_err(invalid)?,
            ),
        }
        .build())
    }
}

/// The JSON cursor of a `gsi1` page: `[gsi1sk, pk, sk]`.
type GsiCursor = (String, String, String);

fn string_attr(attrs: &Attrs, name: &str) -> Option<String> {
    match attrs.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.map(from_attrs).transpose()
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
        validate_tx(&ops)?;
        // The client token is enforced by a token item written in the same transaction, not
        // only by DynamoDB's own ClientRequestToken: the guarantee then holds on every
        // DynamoDB-compatible store. (The embedded store keeps its tokens in memory: its
        // callers share its process, here they are Lambdas a network away.)
        let mut all = ops.clone();
        let token_item = match token {
            Some(t) => {
                if ops.len() >= MAX_TX_OPS {
                    return Err(StoreError::Invalid(format!(
                        "a transaction with a client token holds at most {} operations",
                        MAX_TX_OPS - 1
                    )));
                }
                let digest = promo_shared::ports::store::ops_digest(&ops);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                    .unwrap_or(0);
                let key = Key::new(format!("TXTOKEN#{t}"), "TXTOKEN");
                let mut item = key.item();
                item.insert("digest".into(), digest.clone().into());
                item.insert(TTL_ATTRIBUTE.into(), (now + TOKEN_WINDOW_SECONDS).into());
                all.push(TxOp::Put {
                    item,
                    cond: Some(Cond::Or(vec![Cond::NotExists, Cond::Lt(TTL_ATTRIBUTE.into(), now)])),
                });
                Some(digest)
            }
            None => None,
        };
        let items = all.iter().map(|op| self.tx_item(op)).collect::<Result<Vec<_>, _>>()?;
        let send = |native_token: Option<String>| {
            self.client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .set_client_request_token(native_token)
                .send()
        };
        let mut result = send(token.map(str::to_string)).await;
        if token_item.is_some()
            && result
                .as_ref()
                .err()
                .and_then(|e| e.as_service_error())
                .is_some_and(|e| matches!(e, TransactWriteItemsError::IdempotentParameterMismatchException(_)))
        {
            // DynamoDB compares the whole request under a native token, and a caller's resend
            // of the same operations (after an unknown outcome) carries a token item whose
            // expiry moved on: not a different transaction. Sent again without the caller's
            // token (the SDK makes up a fresh one), the token item decides instead.
            result = send(None).await;
        }
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let err =
                        cancelled(c.cancellation_reasons(), all.len(), c.message().unwrap_or("transaction cancelled"));
                    match (&token_item, err) {
                        (Some(digest), StoreError::TransactionCancelled { mut reasons, mut found }) => {
                            if reasons.last() == Some(&CancelReason::ConditionFailed) {
                                // The token was used: a replay of the same operations succeeded
                                // before. The failed put returned the token item it found.
                                let stored = found.last().and_then(Option::as_ref).and_then(|i| i.str_attr("digest"));
                                return if stored == Some(digest.as_str()) {
                                    Ok(())
                                } else {
                                    Err(StoreError::Invalid("client token reused with different operations".into()))
                                };
                            }
                            reasons.truncate(ops.len());
                            found.truncate(ops.len());
                            StoreError::TransactionCancelled { reasons, found }
                        }
                        (_, other) => other,
                    }
                }
                Some(TransactWriteItemsError::IdempotentParameterMismatchException(m)) => StoreError::Invalid(format!(
                    "client token reused with different operations: {}",
                    m.message().unwrap_or_default()
                )),
                _ => classify(e),
            }),
        }
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        if q.limit == 0 {
            return Err(StoreError::Invalid("query limit must be at least 1".into()));
        }
        let (pk_attr, sk_attr) = match q.index {
            Index::Primary => ("pk", "sk"),
            Index::Gsi1 => (GSI1_PK, GSI1_SK),
        };
        let mut e = Expr::default();
        let mut key_cond = format!("{} = {}", e.name(pk_attr), e.value(AttributeValue::S(q.pk.clone())));
        if let Some(prefix) = q.sk_prefix.as_deref().filter(|p| !p.is_empty()) {
            let (n, v) = (e.name(sk_attr), e.value(AttributeValue::S(prefix.to_string())));
            key_cond.push_str(&format!(" AND begins_with({n}, {v})"));
        }
        let start = match (&q.after, q.index) {
            (None, _) => None,
            (Some(sk), Index::Primary) => Some(HashMap::from([
                ("pk".to_string(), AttributeValue::S(q.pk.clone())),
                ("sk".to_string(), AttributeValue::S(sk.clone())),
            ])),
            (Some(cursor), Index::Gsi1) => {
                let (gsk, pk, sk): GsiCursor =
                    serde_json::from_str(cursor).map_err(|_| StoreError::Invalid("bad query cursor".into()))?;
                Some(HashMap::from([
                    (GSI1_PK.to_string(), AttributeValue::S(q.pk.clone())),
                    (GSI1_SK.to_string(), AttributeValue::S(gsk)),
                    ("pk".to_string(), AttributeValue::S(pk)),
                    ("sk".to_string(), AttributeValue::S(sk)),
                ]))
            }
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name((q.index == Index::Gsi1).then(|| GSI1.to_string()))
            .key_condition_expression(key_cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .set_exclusive_start_key(start)
            .limit(i32::try_from(q.limit).unwrap_or(i32::MAX))
            .scan_index_forward(true)
            .consistent_read(q.index == Index::Primary)
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
                Some(match q.index {
                    Index::Primary => field("sk")?,
                    Index::Gsi1 => serde_json::json!([field(GSI1_SK)?, field("pk")?, field("sk")?]).to_string(),
                })
            }
        };
        let items = raw.into_iter().map(from_attrs).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use serde_json::json;

    #[test]
    fn items_round_trip_with_integer_numbers() {
        let item = json!({
            "pk": "P", "sk": "S", "n": 7, "neg": -42, "big": u64::MAX, "min": i64::MIN, "s": "x", "empty": "",
            "b": true, "f": false, "z": null, "l": [1, "two", [3], {"k": null}], "m": {"k": "v", "n": {"deep": 0}},
        });
        let attrs = to_attrs(item.as_object().unwrap()).unwrap();
        assert_eq!(attrs["n"], AttributeValue::N("7".into()));
        assert_eq!(attrs["neg"], AttributeValue::N("-42".into()));
        assert_eq!(attrs["big"], AttributeValue::N(u64::MAX.to_string()));
        assert_eq!(attrs["s"], AttributeValue::S("x".into()));
        assert_eq!(attrs["b"], AttributeValue::Bool(true));
        assert_eq!(attrs["z"], AttributeValue::Null(true));
        assert!(matches!(&attrs["l"], AttributeValue::L(l) if l.len() == 4));
        assert!(matches!(&attrs["m"], AttributeValue::M(m) if m["k"] == AttributeValue::S("v".into())));
        let back = from_attrs(attrs).unwrap();
        assert_eq!(Value::Object(back.clone()), item);
        assert!(back["n"].is_i64() && back["big"].is_u64(), "numbers come back as JSON integers");
    }

    #[test]
    fn floats_are_refused_and_sets_read_as_arrays() {
        assert!(matches!(to_attr(&json!({"x": [1.5]})), Err(StoreError::Invalid(_))));
        assert!(matches!(from_attr(AttributeValue::N("1.5".into())), Err(StoreError::Unavailable(_))));
        let ss = from_attr(AttributeValue::Ss(vec!["a".into(), "b".into()])).unwrap();
        assert_eq!(ss, json!(["a", "b"]));
        assert_eq!(from_attr(AttributeValue::Ns(vec!["1".into(), "-2".into()])).unwrap(), json!([1, -2]));
    }

    #[test]
    fn conditions_use_placeholders() {
        let mut e = Expr::default();
        let c = Cond::Or(vec![
            Cond::NotExists,
            Cond::Lt("expires_at".into(), 10),
            Cond::And(vec![Cond::eq("status", "IN PROGRESS"), Cond::Not(Box::new(Cond::AttrExists("a.b".into())))]),
        ]);
        let s = e.cond(&c).unwrap();
        assert_eq!(s, "(attribute_not_exists(#n0)) OR (#n1 < :v0) OR ((#n2 = :v1) AND (NOT (attribute_exists(#n3))))");
        let names = e.names().unwrap();
        assert_eq!(names["#n0"], "pk");
        assert_eq!(names["#n3"], "a.b");
        let values = e.values().unwrap();
        assert_eq!(values[":v0"], AttributeValue::N("10".into()));
        assert_eq!(values[":v1"], AttributeValue::S("IN PROGRESS".into()));
        let mut e = Expr::default();
        assert_eq!(e.cond(&Cond::And(vec![])).unwrap(), "(attribute_exists(#n0) OR attribute_not_exists(#n0))");
        assert!(e.values().is_none(), "no empty value map is sent");
    }

    #[test]
    fn updates_fold_per_attribute_like_apply_all() {
        let ups = [
            Update::Add("n".into(), 2),
            Update::set("s", "v"),
            Update::Add("n".into(), 3),
            Update::Remove("s".into()),
            Update::set("m", 5),
            Update::Add("m".into(), -1),
            Update::Remove("r".into()),
            Update::Add("r".into(), 4),
        ];
        let folded = fold_updates(&ups).unwrap();
        assert_eq!(
            folded,
            vec![
                ("n".to_string(), Change::Add(5)),
                ("s".to_string(), Change::Remove),
                ("m".to_string(), Change::Set(json!(4))),
                ("r".to_string(), Change::Set(json!(4))),
            ]
        );
        let mut e = Expr::default();
        assert_eq!(e.update(&ups).unwrap(), "SET #n2 = :v1, #n3 = :v2 ADD #n0 :v0 REMOVE #n1");
        assert!(matches!(fold_updates(&[Update::set("sk", "x")]), Err(StoreError::Invalid(_))));
        assert!(matches!(
            fold_updates(&[Update::set("s", "x"), Update::Add("s".into(), 1)]),
            Err(StoreError::Invalid(_))
        ));
        let mut e = Expr::default();
        assert_eq!(e.update(&[]).unwrap(), "REMOVE #n0");
    }

    #[test]
    fn cancellation_reasons_map_per_operation() {
        let r = |c: &str| CancellationReason::builder().code(c).build();
        let err = cancelled(&[r("ConditionalCheckFailed"), r("None"), r("TransactionConflict")], 3, "m");
        assert_eq!(
            err,
            StoreError::cancelled(vec![CancelReason::ConditionFailed, CancelReason::None, CancelReason::Conflict])
        );
        // The item a failed condition was evaluated against comes back with its reason.
        let with_item = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item("pk", AttributeValue::S("P".into()))
            .item("sk", AttributeValue::S("S".into()))
            .item("n", AttributeValue::N("7".into()))
            .build();
        let err = cancelled(&[r("None"), with_item, r("ConditionalCheckFailed")], 3, "m");
        assert!(err.failed_at(1) && err.failed_at(2) && !err.failed_at(0));
        assert_eq!(err.found_at(1), Some(&json!({"pk": "P", "sk": "S", "n": 7}).as_object().unwrap().clone()));
        assert_eq!((err.found_at(0), err.found_at(2)), (None, None));
        assert!(matches!(cancelled(&[r("None"), r("ThrottlingError")], 2, "m"), StoreError::Throttled(_)));
        assert!(matches!(cancelled(&[r("ValidationError")], 1, "m"), StoreError::Invalid(_)));
        assert_eq!(cancelled(&[], 2, "m"), StoreError::cancelled(vec![CancelReason::None; 2]));
    }
}
