//! The store's single-table layout: every item the platform writes, each in its module with
//! its key builder, its attributes and the conditions and updates that concern it, so the
//! use cases read and write typed items rather than string-keyed maps.
//!
//! | item | module | pk | sk |
//! | --- | --- | --- | --- |
//! | campaign | [`campaign`] | `CAMPAIGNS` | `CAMPAIGN#<campaign>` |
//! | claim stock shard | [`stock`] | `CAMPAIGN#<campaign>#STOCK#<shard>` | `STOCK` |
//! | reward rule stock shard | [`stock`] | `CAMPAIGN#<campaign>#REWARD#<rule>#STOCK#<shard>` | `STOCK` |
//! | claim campaign sold out | [`sold_out`] | `CAMPAIGN#<campaign>#SOLDOUT` | `SOLDOUT` |
//! | a shopper's claims of a campaign | [`claims`] | `USER#<user>` | `CLAIMS#<campaign>` |
//! | wallet coupon | [`wallet`] | `USER#<user>` | `COUPON#<code>` |
//! | coupon code (uniqueness) | [`wallet`] | `CODE#<code>` | `CODE` |
//! | mileage balance | [`catalog`] | `USER#<user>` | `MILEAGE` |
//! | payment reward marker | [`reward`] | `PAYMENT#<payment>` | `REWARD#<campaign>#<rule>` |
//! | payment state | [`payment`] | `PAYMENT#<payment>` | `STATE` |
//! | idempotency record | [`idempotency`] | `IDEMP#<key>` | `IDEMP` |
//! | catalog product | [`catalog`] | `PRODUCTS` | `PRODUCT#<product>` |
//! | price book | [`catalog`] | `PRICEBOOK` | `CURRENT` |
//! | audience member | [`audience`] | `AUDIENCE#<bucket>` | `MEMBER#<user>` |
//! | campaign email delivery | [`email_delivery`] | `EMAILREC#<campaign>#<bucket>` | `U#<user>` |
//! | campaign email send | [`email_send`] | `EMAILSEND#<campaign>` | `STATE` |
//! | send publisher checkpoint | [`email_send`] | `EMAILSEND#<campaign>` | `BUCKET#<bucket>` |
//! | send feedback counts | [`email_send`] | `EMAILSEND#<campaign>` | `FEEDBACK` |
//! | suppressed address | [`suppression`] | `SUPPRESS#<address>` | `SUPPRESS` |
//! | limited event, its shoppers, waitlist, open holds, refunds | [`event`] | `EVENT#<event>[#SHOPPER\|#WAIT\|#HOLDS\|#REFUNDS]` | see [`event`] |
//! | reservation | [`event`] | `USER#<user>#RESERVATIONS` | `<reservation>` |
//! | due work of the scheduler | [`event`] | `DUE#<shard>` | `<at>#<kind>#<what>` |
//!
//! The DynamoDB adapter adds one item of its own inside transactions that carry a client
//! token: `TXTOKEN#<token>` / `TXTOKEN`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::store::{Item, Key, StoreError};

pub mod audience;
pub mod campaign;
pub mod catalog;
pub mod claims;
pub mod email_delivery;
pub mod email_send;
pub mod event;
pub mod idempotency;
pub mod payment;
pub mod reward;
pub mod sold_out;
pub mod stock;
pub mod suppression;
pub mod wallet;

/// The item of `fields` (a struct serialising to an object) under `key`, of type `kind`.
pub(crate) fn to_item<T: Serialize>(key: &Key, kind: &str, fields: &T) -> Result<Item, StoreError> {
    let mut item = match serde_json::to_value(fields) {
        Ok(serde_json::Value::Object(fields)) => fields,
        Ok(other) => return Err(StoreError::Invalid(format!("a {kind} serialised to {other}, not an object"))),
        Err(e) => return Err(StoreError::Invalid(e.to_string())),
    };
    item.extend(key.item());
    item.insert("type".into(), kind.into());
    Ok(item)
}

/// The fields of a stored item (its key and type are ignored).
pub(crate) fn from_item<T: DeserializeOwned>(kind: &str, item: &Item) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::Object(item.clone()))
        .map_err(|e| StoreError::Invalid(format!("stored {kind} is invalid: {e}")))
}
