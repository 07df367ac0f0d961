//! The payment state item: what cancellations and refunds have said of a payment, checked
//! by every issuance of a reward for it.

use chrono::{DateTime, Utc};

use crate::domain::ids::PaymentId;
use crate::ports::store::{Cond, Item, ItemExt, Key, TxOp, Update};

pub const STATUS: &str = "status";
/// The lowest amount still paid after partial refunds.
pub const STILL_PAID: &str = "still_paid";
pub const CANCELLED: &str = "CANCELLED";
pub const REFUNDED: &str = "REFUNDED";
pub const PARTIALLY_REFUNDED: &str = "PARTIALLY_REFUNDED";

pub fn key(payment: &PaymentId) -> Key {
    Key::new(super::reward::partition(payment), "STATE")
}

/// A payment's state as found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentState {
    pub status: Option<String>,
    pub still_paid: Option<i64>,
}

impl PaymentState {
    pub fn from_item(item: &Item) -> PaymentState {
        PaymentState { status: item.str_attr(STATUS).map(str::to_string), still_paid: item.i64_attr(STILL_PAID) }
    }

    /// Cancelled or fully refunded: nothing of the payment is earned any more.
    pub fn is_full(&self) -> bool {
        matches!(self.status.as_deref(), Some(CANCELLED | REFUNDED))
    }
}

/// Marking a payment cancelled or fully refunded (`status` is [`CANCELLED`] or [`REFUNDED`]).
pub fn mark_full(status: &'static str, now: DateTime<Utc>) -> Vec<Update> {
    vec![Update::set(STATUS, status), Update::set("updated_at", now.to_rfc3339())]
}

/// Marking a partial refund that leaves `still` paid, and the condition that keeps the lowest
/// amount (out-of-order refunds cannot raise it) and a full cancellation or refund full.
pub fn mark_partial(still: i64, now: DateTime<Utc>) -> (Vec<Update>, Cond) {
    let updates = vec![
        Update::set(STATUS, PARTIALLY_REFUNDED),
        Update::set(STILL_PAID, still),
        Update::set("updated_at", now.to_rfc3339()),
    ];
    let lower = Cond::And(vec![
        not_fully_refunded(),
        Cond::Or(vec![Cond::AttrNotExists(STILL_PAID.into()), Cond::Gt(STILL_PAID.into(), still)]),
    ]);
    (updates, lower)
}

/// The state is not a full cancellation or refund (absent counts as not).
pub fn not_fully_refunded() -> Cond {
    Cond::Or(vec![
        Cond::AttrNotExists(STATUS.into()),
        Cond::And(vec![Cond::eq(STATUS, CANCELLED).negate(), Cond::eq(STATUS, REFUNDED).negate()]),
    ])
}

/// The check every reward issuance carries: the payment has not been cancelled or refunded,
/// and what a partial refund left paid still meets the rule's `min_payment` — so a
/// cancellation or refund that commits first wins.
pub fn still_earns(payment: &PaymentId, min_payment: i64) -> TxOp {
    TxOp::Check {
        key: key(payment),
        cond: Cond::And(vec![
            not_fully_refunded(),
            Cond::Or(vec![Cond::AttrNotExists(STILL_PAID.into()), Cond::Ge(STILL_PAID.into(), min_payment)]),
        ]),
    }
}
