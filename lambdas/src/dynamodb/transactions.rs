//! Transactions: [`validate_tx`], then `TransactWriteItems`. A
//! `TransactionCanceledException`'s cancellation reasons map per operation:
//! `ConditionalCheckFailed` → [`CancelReason::ConditionFailed`], `TransactionConflict` →
//! [`CancelReason::Conflict`], `None` → [`CancelReason::None`]. Every conditional operation
//! asks for `ReturnValuesOnConditionCheckFailure = ALL_OLD`, so a failed one reports the item
//! it found ([`StoreError::found_at`]).
//!
//! A client token is enforced by a token item written in the same transaction (and passed as
//! DynamoDB's own `ClientRequestToken`): the guarantee then holds on every DynamoDB-compatible
//! store. A token reused with other operations is [`StoreError::Invalid`].

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, ConditionCheck, Delete, Put, TransactWriteItem, Update as DdbUpdate,
};
use promo_shared::ports::store::{
    CancelReason, Cond, ItemExt, Key, MAX_TX_OPS, StoreError, TTL_ATTRIBUTE, TxOp, validate_tx,
};

use super::DynamoStore;
use super::attributes::{key_attrs, to_attrs};
use super::errors::{classify, found_item, invalid, return_found};
use super::expressions::Expr;

/// How long a transaction's client token makes a retry idempotent (DynamoDB: 10 minutes).
const TOKEN_WINDOW_SECONDS: i64 = 600;

impl DynamoStore {
    /// `TransactWriteItems` of `ops`, with `token` as the client token when given.
    pub(super) async fn transact_ops(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
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
                let now = self.clock.now().timestamp();
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

/// The port's error for a cancelled transaction of `ops` operations.
pub(super) fn cancelled(reasons: &[CancellationReason], ops: usize, message: &str) -> StoreError {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::json;

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
