//! The SDK's errors as the store port's: throttling (`ProvisionedThroughputExceededException`,
//! `ThrottlingException`, `RequestLimitExceeded`, `LimitExceededException`) is
//! [`StoreError::Throttled`]; timeouts, dispatch failures, unreadable responses, 5xx and other
//! service failures are [`StoreError::Unavailable`]; validation errors (and a missing table)
//! are [`StoreError::Invalid`]. The SDK's standard retry mode (3 attempts with backoff) runs
//! before any of these reaches the caller.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use promo_shared::ports::store::{Item, StoreError};

use super::attributes::{Attrs, from_attrs};

pub(super) fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// Maps an SDK error (after the SDK's own retries) to the port's error.
pub(super) fn classify<E>(e: SdkError<E>) -> StoreError
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
pub(super) fn return_found(cond: &Option<String>) -> Option<ReturnValuesOnConditionCheckFailure> {
    cond.as_ref().map(|_| ReturnValuesOnConditionCheckFailure::AllOld)
}

/// The item a failed condition returned (`ReturnValuesOnConditionCheckFailure = ALL_OLD`);
/// `None` when there was none.
pub(super) fn found_item(attrs: Option<&Attrs>) -> Result<Option<Item>, StoreError> {
    match attrs {
        Some(attrs) if !attrs.is_empty() => from_attrs(attrs.clone()).map(Some),
        _ => Ok(None),
    }
}

/// A single-item write's failed condition, with the item it found.
pub(super) fn condition_failed(attrs: Option<&Attrs>) -> StoreError {
    match found_item(attrs) {
        Ok(found) => StoreError::ConditionFailed { found },
        Err(e) => e,
    }
}
