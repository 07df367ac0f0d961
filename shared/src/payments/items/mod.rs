//! The store items of payments: a payment's state and its reward markers.

pub mod payment;
pub mod reward;
