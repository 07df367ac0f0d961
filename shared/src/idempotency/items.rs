//! Idempotency records: one item per idempotency key, in the store (the Durable Object
//! ledger keeps the same [`Record`] in its own storage). The rules that decide over them are
//! `idempotency`'s.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ports::store::{Item, ItemExt, Key};

pub const STATUS_IN_PROGRESS: &str = "INPROGRESS";
pub const STATUS_COMPLETED: &str = "COMPLETED";

/// One idempotency record, as both homes keep it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub completed: bool,
    pub payload_hash: String,
    /// The lease token of the run that took it (kept once completed, for the record).
    pub owner: String,
    /// Epoch ms; meaningful while in progress.
    pub in_progress_expiry_ms: i64,
    /// Epoch s: after it, the record is gone for every purpose.
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

pub fn record_key(key: &str) -> Key {
    Key::new(format!("IDEMP#{key}"), "IDEMP")
}

/// The store item of a record under `key`.
pub fn to_item(key: &str, r: &Record) -> Item {
    let mut item = record_key(key).item();
    item.insert("type".into(), "idempotency".into());
    item.insert("status".into(), if r.completed { STATUS_COMPLETED } else { STATUS_IN_PROGRESS }.into());
    item.insert("payload_hash".into(), r.payload_hash.clone().into());
    item.insert("owner".into(), r.owner.clone().into());
    if !r.completed {
        item.insert("in_progress_expiry".into(), r.in_progress_expiry_ms.into());
    }
    item.insert("expires_at".into(), r.expires_at.into());
    if let Some(result) = &r.result {
        item.insert("result".into(), result.to_string().into());
    }
    item
}

/// A record read back from its store item.
pub fn from_item(item: &Item) -> Record {
    Record {
        completed: item.str_attr("status") == Some(STATUS_COMPLETED),
        payload_hash: item.str_attr("payload_hash").unwrap_or_default().to_string(),
        owner: item.str_attr("owner").unwrap_or_default().to_string(),
        in_progress_expiry_ms: item.i64_attr("in_progress_expiry").unwrap_or(i64::MIN),
        expires_at: item.i64_attr("expires_at").unwrap_or(i64::MAX),
        result: item.str_attr("result").map(|r| serde_json::from_str(r).unwrap_or(Value::Null)),
    }
}
