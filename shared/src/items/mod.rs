//! The store's single-table layout: every item the platform writes, each in the `items` module
//! of its feature with its key builder, its attributes and the conditions and updates that
//! concern it, so the use cases read and write typed items rather than string-keyed maps. This
//! module holds the table and the codec they share.
//!
//! | item | module | pk | sk |
//! | --- | --- | --- | --- |
//! | campaign | [`campaigns::items`](crate::campaigns::items) | `CAMPAIGNS` | `CAMPAIGN#<campaign>` |
//! | claim stock shard | [`campaigns::stock`](crate::campaigns::stock) | `CAMPAIGN#<campaign>#STOCK#<shard>` | `STOCK` |
//! | reward rule stock shard | [`campaigns::stock`](crate::campaigns::stock) | `CAMPAIGN#<campaign>#REWARD#<rule>#STOCK#<shard>` | `STOCK` |
//! | claim campaign sold out | [`claims::sold_out`](mod@crate::claims::sold_out) | `CAMPAIGN#<campaign>#SOLDOUT` | `SOLDOUT` |
//! | a shopper's claims of a campaign | [`claims::items`](crate::claims::items) | `USER#<user>` | `CLAIMS#<campaign>` |
//! | wallet coupon | [`wallet::items`](crate::wallet::items) | `USER#<user>` | `COUPON#<code>` |
//! | coupon code (uniqueness) | [`wallet::items`](crate::wallet::items) | `CODE#<code>` | `CODE` |
//! | mileage balance | [`pricing::items`](crate::pricing::items) | `USER#<user>` | `MILEAGE` |
//! | payment reward marker | [`payments::items::reward`](crate::payments::items::reward) | `PAYMENT#<payment>` | `REWARD#<campaign>#<rule>` |
//! | payment state | [`payments::items::payment`](crate::payments::items::payment) | `PAYMENT#<payment>` | `STATE` |
//! | idempotency record | [`idempotency::items`](crate::idempotency::items) | `IDEMP#<key>` | `IDEMP` |
//! | catalog product | [`pricing::items`](crate::pricing::items) | `PRODUCTS` | `PRODUCT#<product>` |
//! | price book | [`pricing::items`](crate::pricing::items) | `PRICEBOOK` | `CURRENT` |
//! | audience member | [`email::items::audience`](crate::email::items::audience) | `AUDIENCE#<bucket>` | `MEMBER#<user>` |
//! | campaign email delivery | [`email::items::delivery`](crate::email::items::delivery) | `EMAILREC#<campaign>#<bucket>` | `U#<user>` |
//! | campaign email delivery tallies | [`email::items::tally`](crate::email::items::tally) | `EMAILREC#<campaign>#<bucket>` | `TALLY`, `TALLY#<claimed_at>#<run>` |
//! | campaign email send | [`email::items::send`](crate::email::items::send) | `EMAILSEND#<campaign>` | `STATE` |
//! | send publisher checkpoint | [`email::items::send`](crate::email::items::send) | `EMAILSEND#<campaign>` | `BUCKET#<bucket>` |
//! | send feedback counts | [`email::items::send`](crate::email::items::send) | `EMAILSEND#<campaign>` | `FEEDBACK` |
//! | suppressed address | [`email::items::suppression`](crate::email::items::suppression) | `SUPPRESS#<address>` | `SUPPRESS` |
//! | limited event, its shoppers, waitlist and its lines, open holds, refunds | [`events::items`](crate::events::items) | `EVENT#<event>[#SHOPPER\|#WAIT\|#LINES\|#HOLDS\|#REFUNDS]` | see [`events::items`](crate::events::items) |
//! | reservation | [`events::items`](crate::events::items) | `USER#<user>#RESERVATIONS` | `<reservation>` |
//! | due work of the scheduler | [`events::items`](crate::events::items) | `DUE#<shard>` | `<at>#<kind>#<what>` |
//!
//! The DynamoDB adapter adds one item of its own inside transactions that carry a client
//! token: `TXTOKEN#<token>` / `TXTOKEN`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::store::{Item, Key, StoreError};

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
