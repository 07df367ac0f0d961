//! The store port: a DynamoDB-shaped item store (partition key + sort key, conditional
//! writes, all-or-nothing transactions, TTL attribute) that every adapter implements with
//! the same semantics. The semantics are pinned down by the conformance suite
//! (`infra/conformance`), which runs against every adapter.
//!
//! Items are JSON objects that carry their own `pk` and `sk` string attributes. Numbers
//! are integers (i64). The TTL attribute is [`TTL_ATTRIBUTE`] (epoch seconds); as in
//! DynamoDB, an expired item is still returned by reads until the adapter deletes it, so
//! code that cares writes conditions on it (see `idempotency`).

use async_trait::async_trait;
use serde_json::{Map, Value};
use thiserror::Error;

/// A stored item: a JSON object with `pk` and `sk`.
pub type Item = Map<String, Value>;

/// Epoch-seconds attribute after which the adapter may delete the item.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// Primary key of an item.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Key {
        Key { pk: pk.into(), sk: sk.into() }
    }

    /// The key of an item, if it has string `pk` and `sk`.
    pub fn of(item: &Item) -> Result<Key, StoreError> {
        match (item.get("pk"), item.get("sk")) {
            (Some(Value::String(pk)), Some(Value::String(sk))) if !pk.is_empty() && !sk.is_empty() => {
                Ok(Key::new(pk.clone(), sk.clone()))
            }
            _ => Err(StoreError::Invalid("an item needs non-empty string `pk` and `sk`".into())),
        }
    }

    /// Starts an item with this key.
    pub fn item(&self) -> Item {
        let mut m = Map::new();
        m.insert("pk".into(), Value::String(self.pk.clone()));
        m.insert("sk".into(), Value::String(self.sk.clone()));
        m
    }
}

/// A condition on the current item (absent = no item). Comparisons against a missing
/// attribute, or an attribute of another type, are false — as in DynamoDB.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// The item exists.
    Exists,
    /// The item does not exist.
    NotExists,
    AttrExists(String),
    AttrNotExists(String),
    Eq(String, Value),
    Ne(String, Value),
    Lt(String, i64),
    Le(String, i64),
    Gt(String, i64),
    Ge(String, i64),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    pub fn eq(attr: &str, v: impl Into<Value>) -> Cond {
        Cond::Eq(attr.into(), v.into())
    }

    /// `NOT (self)`.
    pub fn negate(self) -> Cond {
        Cond::Not(Box::new(self))
    }

    /// Evaluates the condition on the current item (for adapters that evaluate in process).
    pub fn eval(&self, item: Option<&Item>) -> bool {
        let attr = |name: &str| item.and_then(|i| i.get(name));
        let num = |name: &str| attr(name).and_then(Value::as_i64);
        match self {
            Cond::Exists => item.is_some(),
            Cond::NotExists => item.is_none(),
            Cond::AttrExists(a) => attr(a).is_some(),
            Cond::AttrNotExists(a) => attr(a).is_none(),
            Cond::Eq(a, v) => attr(a) == Some(v),
            // DynamoDB: `a <> v` is true when `a` is missing.
            Cond::Ne(a, v) => attr(a) != Some(v),
            Cond::Lt(a, n) => num(a).is_some_and(|x| x < *n),
            Cond::Le(a, n) => num(a).is_some_and(|x| x <= *n),
            Cond::Gt(a, n) => num(a).is_some_and(|x| x > *n),
            Cond::Ge(a, n) => num(a).is_some_and(|x| x >= *n),
            Cond::And(cs) => cs.iter().all(|c| c.eval(item)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(item)),
            Cond::Not(c) => !c.eval(item),
        }
    }
}

/// One change of an update.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Set(String, Value),
    /// Adds to a number attribute; a missing attribute counts as 0 (DynamoDB `ADD`).
    Add(String, i64),
    Remove(String),
}

impl Update {
    pub fn set(attr: &str, v: impl Into<Value>) -> Update {
        Update::Set(attr.into(), v.into())
    }

    /// Applies updates to an item (for adapters that evaluate in process). An update of a
    /// missing item creates it (DynamoDB upsert). `pk`/`sk` cannot be changed.
    pub fn apply_all(key: &Key, current: Option<Item>, updates: &[Update]) -> Result<Item, StoreError> {
        let mut item = current.unwrap_or_else(|| key.item());
        for u in updates {
            match u {
                Update::Set(a, _) | Update::Add(a, _) | Update::Remove(a) if a == "pk" || a == "sk" => {
                    return Err(StoreError::Invalid(format!("cannot update the key attribute `{a}`")));
                }
                Update::Set(a, v) => {
                    item.insert(a.clone(), v.clone());
                }
                Update::Add(a, n) => {
                    let cur = match item.get(a) {
                        None => 0,
                        Some(Value::Number(x)) => {
                            x.as_i64().ok_or_else(|| StoreError::Invalid(format!("`{a}` is not an integer")))?
                        }
                        Some(_) => return Err(StoreError::Invalid(format!("cannot ADD to non-number `{a}`"))),
                    };
                    let next =
                        cur.checked_add(*n).ok_or_else(|| StoreError::Invalid(format!("`{a}` would overflow")))?;
                    item.insert(a.clone(), Value::from(next));
                }
                Update::Remove(a) => {
                    item.remove(a);
                }
            }
        }
        Ok(item)
    }
}

/// One operation of an all-or-nothing transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum TxOp {
    Put {
        item: Item,
        cond: Option<Cond>,
    },
    Update {
        key: Key,
        updates: Vec<Update>,
        cond: Option<Cond>,
    },
    Delete {
        key: Key,
        cond: Option<Cond>,
    },
    /// Only checks a condition.
    Check {
        key: Key,
        cond: Cond,
    },
}

impl TxOp {
    pub fn key(&self) -> Result<Key, StoreError> {
        match self {
            TxOp::Put { item, .. } => Key::of(item),
            TxOp::Update { key, .. } | TxOp::Delete { key, .. } | TxOp::Check { key, .. } => Ok(key.clone()),
        }
    }

    pub fn cond(&self) -> Option<&Cond> {
        match self {
            TxOp::Put { cond, .. } | TxOp::Update { cond, .. } | TxOp::Delete { cond, .. } => cond.as_ref(),
            TxOp::Check { cond, .. } => Some(cond),
        }
    }
}

/// A transaction's client request token derived from what makes the write unique: 36 hex
/// characters (DynamoDB's limit), the same for the same parts, so a retry of a write whose
/// outcome is unknown carries the token of the first attempt.
pub fn client_token(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..18])
}

/// A digest of a transaction's operations (64 hex characters), stored with its client token so
/// that a retry under the same token is recognised as the same transaction and a reuse with
/// other operations is refused, as DynamoDB does. Items are hashed as their JSON (streamed
/// into the hash, nothing built), keys, conditions and updates as their `Debug` form.
/// Stable across processes and versions of this crate that keep these types.
pub fn ops_digest(ops: &[TxOp]) -> String {
    ops_digest_of_json(ops, &put_items_json(ops))
}

/// The JSON of each put's item (`None` for the other operations), as [`ops_digest_of_json`]
/// takes it: a store that writes items as JSON serialises them once for both.
pub fn put_items_json(ops: &[TxOp]) -> Vec<Option<String>> {
    ops.iter()
        .map(|op| match op {
            // A map of JSON values always serialises.
            TxOp::Put { item, .. } => Some(serde_json::to_string(item).unwrap_or_default()),
            _ => None,
        })
        .collect()
}

/// [`ops_digest`] from the puts' item JSON already made by [`put_items_json`].
pub fn ops_digest_of_json(ops: &[TxOp], put_json: &[Option<String>]) -> String {
    use sha2::{Digest, Sha256};
    /// Streams both `fmt::Write` and `io::Write` output into the hash.
    struct Hashing(Sha256);
    impl std::fmt::Write for Hashing {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hashing(Sha256::new());
    for (i, op) in ops.iter().enumerate() {
        // Writing into a hash cannot fail.
        let _ = match op {
            TxOp::Put { item, cond } => {
                // One buffer, one update: much cheaper than streaming serde's small writes.
                match put_json.get(i) {
                    Some(Some(json)) => h.0.update(json.as_bytes()),
                    _ => h.0.update(serde_json::to_vec(item).unwrap_or_default()),
                }
                std::fmt::Write::write_fmt(&mut h, format_args!("\0put\0{cond:?}\0"))
            }
            TxOp::Update { key, updates, cond } => {
                std::fmt::Write::write_fmt(&mut h, format_args!("{key:?}\0update\0{updates:?}\0{cond:?}\0"))
            }
            TxOp::Delete { key, cond } => {
                std::fmt::Write::write_fmt(&mut h, format_args!("{key:?}\0delete\0{cond:?}\0"))
            }
            TxOp::Check { key, cond } => std::fmt::Write::write_fmt(&mut h, format_args!("{key:?}\0check\0{cond:?}\0")),
        };
    }
    hex::encode(h.0.finalize())
}

/// Most operations one transaction may hold (DynamoDB's limit).
pub const MAX_TX_OPS: usize = 100;

/// Items of one partition, in ascending sort-key order.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub pk: String,
    /// Only sort keys starting with this.
    pub sk_prefix: Option<String>,
    pub limit: usize,
    /// Resume after this sort key (from the previous page's `next`).
    pub after: Option<String>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Query {
        Query { pk: pk.into(), sk_prefix: None, limit: 100, after: None }
    }

    pub fn prefix(mut self, p: impl Into<String>) -> Query {
        self.sk_prefix = Some(p.into());
        self
    }

    pub fn limit(mut self, n: usize) -> Query {
        self.limit = n;
        self
    }

    pub fn after(mut self, sk: Option<String>) -> Query {
        self.after = sk;
        self
    }
}

/// A page of a query; `next` is set when more may follow.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

/// Why a transaction was cancelled: per operation, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// This operation's condition held (or it had none).
    None,
    ConditionFailed,
    /// Another transaction touched the same item concurrently (DynamoDB only); retryable.
    Conflict,
}

/// `Debug` shows a found item only as `<item>`: items can hold coupon codes, which are
/// bearer secrets, and errors end up in logs.
#[derive(Clone, PartialEq, Error)]
pub enum StoreError {
    /// The condition of a single-item write did not hold; nothing was written. `found`: the
    /// item the condition was evaluated against (`None`: there was none), so the caller
    /// learns what is there without another read.
    #[error("condition failed")]
    ConditionFailed { found: Option<Item> },
    /// A transaction was cancelled; nothing was written. One reason per operation, and
    /// one `found` per operation: for an operation whose condition failed, the item the
    /// condition was evaluated against (`None`: there was none), so the caller learns what
    /// won without another read; `None` for the others.
    #[error("transaction cancelled: {reasons:?}")]
    TransactionCancelled { reasons: Vec<CancelReason>, found: Vec<Option<Item>> },
    /// The store asked us to slow down; retry with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The store could not be reached or failed; retry with backoff.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (a bug, not a condition); do not retry.
    #[error("invalid store request: {0}")]
    Invalid(String),
}

impl std::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |i: &Option<Item>| i.as_ref().map(|_| "<item>");
        match self {
            StoreError::ConditionFailed { found } => {
                f.debug_struct("ConditionFailed").field("found", &masked(found)).finish()
            }
            StoreError::TransactionCancelled { reasons, found } => f
                .debug_struct("TransactionCancelled")
                .field("reasons", reasons)
                .field("found", &found.iter().map(masked).collect::<Vec<_>>())
                .finish(),
            StoreError::Throttled(m) => f.debug_tuple("Throttled").field(m).finish(),
            StoreError::Unavailable(m) => f.debug_tuple("Unavailable").field(m).finish(),
            StoreError::Invalid(m) => f.debug_tuple("Invalid").field(m).finish(),
        }
    }
}

impl StoreError {
    /// Throttling, unavailability and transaction conflicts are worth retrying.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Throttled(_) | StoreError::Unavailable(_) => true,
            StoreError::TransactionCancelled { reasons: r, .. } => {
                r.contains(&CancelReason::Conflict) && !r.contains(&CancelReason::ConditionFailed)
            }
            StoreError::ConditionFailed { .. } | StoreError::Invalid(_) => false,
        }
    }

    /// For a cancelled transaction: did operation `i` fail its condition? (Callers name the
    /// operations with [`Tx`] and ask it instead.)
    pub fn failed_at(&self, i: usize) -> bool {
        self.reasons().and_then(|r| r.get(i)) == Some(&CancelReason::ConditionFailed)
    }

    /// A cancelled transaction whose stores reported no items.
    pub fn cancelled(reasons: Vec<CancelReason>) -> StoreError {
        let found = vec![None; reasons.len()];
        StoreError::TransactionCancelled { reasons, found }
    }

    /// For a cancelled transaction: the reason of each operation.
    pub fn reasons(&self) -> Option<&[CancelReason]> {
        match self {
            StoreError::TransactionCancelled { reasons, .. } => Some(reasons),
            _ => None,
        }
    }

    /// For a cancelled transaction: the item operation `i` failed its condition against
    /// (`None` when it did not fail, or found no item).
    pub fn found_at(&self, i: usize) -> Option<&Item> {
        match self {
            StoreError::TransactionCancelled { found, .. } => found.get(i).and_then(Option::as_ref),
            _ => None,
        }
    }
}

/// The store port. Reads are strongly consistent on the primary index.
#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// A read that may miss the last second's writes (DynamoDB's eventually consistent read:
    /// half the read units, so a hot item serves twice as many). Only for a read that
    /// chooses what to try, where the write's conditions decide; stores without such a read
    /// answer a consistent one.
    async fn get_eventual(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get(key).await
    }
    /// Writes the whole item if `cond` holds on the current one.
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError>;
    /// Applies `updates` if `cond` holds (creating the item when absent); returns the new item.
    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError>;
    /// Deletes if `cond` holds; returns the deleted item.
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError>;
    /// All operations or none, each item at most once, at most [`MAX_TX_OPS`]. The same
    /// `token` within minutes makes a retried transaction idempotent (DynamoDB's
    /// ClientRequestToken). A cancelled one says, per operation, whether its condition
    /// failed and against which item (DynamoDB's `ReturnValuesOnConditionCheckFailure`).
    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError>;
    async fn query(&self, q: &Query) -> Result<Page, StoreError>;
}

/// A transaction whose operations are named by `Slot`, so that when it is cancelled the
/// caller asks which condition failed, and against what, by name rather than by position.
#[derive(Clone, Debug)]
pub struct Tx<Slot> {
    ops: Vec<TxOp>,
    slots: Slots<Slot>,
}

impl<Slot: Copy + PartialEq> Tx<Slot> {
    pub fn new() -> Tx<Slot> {
        Tx { ops: Vec::new(), slots: Slots(Vec::new()) }
    }

    /// Adds `op` under `slot`.
    pub fn with(mut self, slot: Slot, op: TxOp) -> Tx<Slot> {
        self.push(slot, op);
        self
    }

    pub fn push(&mut self, slot: Slot, op: TxOp) {
        self.ops.push(op);
        self.slots.0.push(slot);
    }

    /// The operations, in order, for [`Store::transact`] (a copy: the transaction is kept,
    /// to be sent again).
    pub fn ops(&self) -> Vec<TxOp> {
        self.ops.clone()
    }

    /// The operations, for [`Store::transact`], and the slots that read its cancellation:
    /// no copy of the items, for a transaction sent once.
    pub fn split(self) -> (Vec<TxOp>, Slots<Slot>) {
        (self.ops, self.slots)
    }

    /// For the cancellation `e` of this transaction: did `slot`'s condition fail?
    pub fn failed(&self, e: &StoreError, slot: Slot) -> bool {
        self.slots.failed(e, slot)
    }

    /// For the cancellation `e` of this transaction: the item `slot`'s condition failed
    /// against (`None` when it did not fail, or found no item).
    pub fn found<'e>(&self, e: &'e StoreError, slot: Slot) -> Option<&'e Item> {
        self.slots.found(e, slot)
    }
}

/// The slots of a transaction sent with [`Tx::split`].
#[derive(Clone, Debug)]
pub struct Slots<Slot>(Vec<Slot>);

impl<Slot: Copy + PartialEq> Slots<Slot> {
    /// For the cancellation `e` of the transaction: did `slot`'s condition fail?
    pub fn failed(&self, e: &StoreError, slot: Slot) -> bool {
        self.index(slot).is_some_and(|i| e.failed_at(i))
    }

    /// For the cancellation `e` of the transaction: the item `slot`'s condition failed
    /// against (`None` when it did not fail, or found no item).
    pub fn found<'e>(&self, e: &'e StoreError, slot: Slot) -> Option<&'e Item> {
        self.index(slot).and_then(|i| e.found_at(i))
    }

    fn index(&self, slot: Slot) -> Option<usize> {
        self.0.iter().position(|s| *s == slot)
    }
}

impl<Slot: Copy + PartialEq> Default for Tx<Slot> {
    fn default() -> Self {
        Tx::new()
    }
}

/// Every item `q` matches, all pages read (strongly consistent on the primary index).
pub async fn query_all<S: Store + ?Sized>(store: &S, q: Query) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    let mut q = q;
    loop {
        let page = store.query(&q).await?;
        out.extend(page.items);
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Checks a transaction's shape: size limit and each item at most once.
pub fn validate_tx(ops: &[TxOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TX_OPS {
        return Err(StoreError::Invalid(format!("a transaction holds 1..={MAX_TX_OPS} operations, not {}", ops.len())));
    }
    let mut seen = std::collections::BTreeSet::new();
    for op in ops {
        let k = op.key()?;
        if !seen.insert(k.clone()) {
            return Err(StoreError::Invalid(format!("item {}/{} appears twice in one transaction", k.pk, k.sk)));
        }
    }
    Ok(())
}

/// Helpers to read typed attributes out of items.
pub trait ItemExt {
    fn str_attr(&self, name: &str) -> Option<&str>;
    fn i64_attr(&self, name: &str) -> Option<i64>;
}

impl ItemExt for Item {
    fn str_attr(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
    fn i64_attr(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }
}

#[async_trait]
impl<T: Store + ?Sized> Store for std::sync::Arc<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        (**self).get(key).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        (**self).put(item, cond).await
    }
    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        (**self).update(key, updates, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        (**self).delete(key, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        (**self).transact(ops, token).await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        (**self).query(q).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn conditions_follow_dynamodb_semantics() {
        let it = item(json!({"pk":"a","sk":"b","n":5,"s":"x"}));
        assert!(Cond::Exists.eval(Some(&it)));
        assert!(Cond::NotExists.eval(None));
        assert!(!Cond::Exists.eval(None));
        assert!(Cond::Ge("n".into(), 5).eval(Some(&it)));
        assert!(!Cond::Gt("n".into(), 5).eval(Some(&it)));
        assert!(!Cond::Lt("missing".into(), 100).eval(Some(&it)), "missing attr compares false");
        assert!(!Cond::Lt("s".into(), 100).eval(Some(&it)), "type mismatch compares false");
        assert!(Cond::Ne("missing".into(), json!(1)).eval(Some(&it)));
        assert!(Cond::Or(vec![Cond::NotExists, Cond::Lt("n".into(), 6)]).eval(Some(&it)));
        assert!(!Cond::And(vec![Cond::Exists, Cond::eq("s", "y")]).eval(Some(&it)));
        assert!(Cond::Not(Box::new(Cond::AttrExists("q".into()))).eval(Some(&it)));
    }

    #[test]
    fn updates_upsert_add_and_refuse_key_changes() {
        let k = Key::new("a", "b");
        let new = Update::apply_all(&k, None, &[Update::Add("n".into(), -1), Update::set("s", "v")]).unwrap();
        assert_eq!(Value::Object(new.clone()), json!({"pk":"a","sk":"b","n":-1,"s":"v"}));
        let next = Update::apply_all(&k, Some(new), &[Update::Remove("s".into()), Update::Add("n".into(), 3)]).unwrap();
        assert_eq!(Value::Object(next), json!({"pk":"a","sk":"b","n":2}));
        assert!(Update::apply_all(&k, None, &[Update::set("pk", "z")]).is_err());
        let s = item(json!({"pk":"a","sk":"b","s":"x"}));
        assert!(Update::apply_all(&k, Some(s), &[Update::Add("s".into(), 1)]).is_err());
    }

    #[test]
    fn transactions_refuse_duplicates_and_oversize() {
        let put = TxOp::Put { item: item(json!({"pk":"a","sk":"b"})), cond: None };
        assert!(validate_tx(std::slice::from_ref(&put)).is_ok());
        assert!(validate_tx(&[put.clone(), put.clone()]).is_err());
        assert!(validate_tx(&[]).is_err());
        let many: Vec<_> =
            (0..101).map(|i| TxOp::Check { key: Key::new("a", i.to_string()), cond: Cond::Exists }).collect();
        assert!(validate_tx(&many).is_err());
    }

    #[test]
    fn retryability() {
        assert!(StoreError::Throttled("x".into()).is_retryable());
        assert!(!StoreError::ConditionFailed { found: None }.is_retryable());
        // A found item (it may hold a coupon code) never reaches a log through `Debug`.
        let mut coupon = Item::new();
        coupon.insert("code".into(), "SECR-ETCO-DE12".into());
        let err = StoreError::ConditionFailed { found: Some(coupon.clone()) };
        assert_eq!(format!("{err:?}"), r#"ConditionFailed { found: Some("<item>") }"#);
        let err = StoreError::TransactionCancelled {
            reasons: vec![CancelReason::ConditionFailed, CancelReason::None],
            found: vec![Some(coupon), None],
        };
        assert!(!format!("{err:?} {err}").contains("SECR"));
        assert!(StoreError::cancelled(vec![CancelReason::Conflict, CancelReason::None]).is_retryable());
        let failed = StoreError::cancelled(vec![CancelReason::None, CancelReason::ConditionFailed]);
        assert!(!failed.is_retryable());
        assert!(failed.failed_at(1) && !failed.failed_at(0));
    }

    #[test]
    fn a_digest_tells_transactions_apart_and_only_them() {
        let item = |v: &str| -> Item {
            let mut i = Key::new("A", "1").item();
            i.insert("v".into(), v.into());
            i
        };
        let put = |v: &str, cond: Option<Cond>| TxOp::Put { item: item(v), cond };
        let base = vec![put("x", Some(Cond::NotExists)), TxOp::Check { key: Key::new("B", "1"), cond: Cond::Exists }];
        assert_eq!(ops_digest(&base), ops_digest(&base.clone()), "deterministic");
        assert_eq!(ops_digest(&base).len(), 64);
        let variants = [
            vec![put("y", Some(Cond::NotExists)), base[1].clone()],
            vec![put("x", None), base[1].clone()],
            vec![put("x", Some(Cond::NotExists)), TxOp::Check { key: Key::new("B", "2"), cond: Cond::Exists }],
            vec![put("x", Some(Cond::NotExists)), TxOp::Check { key: Key::new("B", "1"), cond: Cond::NotExists }],
            vec![put("x", Some(Cond::NotExists)), TxOp::Delete { key: Key::new("B", "1"), cond: Some(Cond::Exists) }],
            vec![base[1].clone(), put("x", Some(Cond::NotExists))],
            vec![put("x", Some(Cond::NotExists))],
            vec![
                put("x", Some(Cond::NotExists)),
                TxOp::Update {
                    key: Key::new("B", "1"),
                    updates: vec![Update::Add("n".into(), 1)],
                    cond: Some(Cond::Exists),
                },
            ],
        ];
        let mut seen = std::collections::BTreeSet::from([ops_digest(&base)]);
        for v in &variants {
            assert!(seen.insert(ops_digest(v)), "{v:?} shares a digest");
        }
    }
}
