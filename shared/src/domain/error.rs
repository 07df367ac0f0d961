//! Validation errors raised by the domain's constructors.

use thiserror::Error;

/// Input that does not satisfy the domain's rules. `field` names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError { field: field.into(), message: message.into() }
    }

    /// Prefixes the field path, e.g. `coupons[2]` + `discount` → `coupons[2].discount`.
    pub fn within(mut self, parent: impl AsRef<str>) -> Self {
        self.field = format!("{}.{}", parent.as_ref(), self.field);
        self
    }
}
