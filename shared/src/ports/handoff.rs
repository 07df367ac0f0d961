//! The hand-off port: how an accepted payment event reaches the coupon issuer, durably.

use async_trait::async_trait;

use crate::domain::payment::PaymentEvent;
use crate::http::ApiError;

/// Durable hand-off of a verified event to the coupon issuer.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait HandOff: super::MaybeSend {
    /// Hands `event` on; `request_id` (the accepting request's `x-request-id`) travels with it
    /// so the issuer's logs name the same request as the edge's.
    async fn hand_off(&self, event: &PaymentEvent, request_id: Option<&str>) -> Result<(), ApiError>;
}
