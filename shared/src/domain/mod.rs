//! The domain: pure types and rules, no ports.

pub mod address;
pub mod audience;
pub mod campaign;
pub mod campaign_diff;
pub mod coupon;
pub mod email;
pub mod error;
pub mod ids;
pub mod limited_event;
pub mod money;
pub mod payment;
pub mod price_book;
pub mod pricing;
pub mod secret;
