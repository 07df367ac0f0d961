//! The payment look-up port: the provider's own record of a payment (PortOne V2's API).

use async_trait::async_trait;

use crate::app::providers::PortOnePayment;
use crate::domain::ids::PaymentId;
use crate::http::ApiError;

/// The provider's own record of a payment (PortOne V2 API).
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait PaymentLookup: super::MaybeSend {
    /// `None` when the provider does not know the payment.
    async fn portone_payment(&self, payment_id: &PaymentId) -> Result<Option<PortOnePayment>, ApiError>;
}
