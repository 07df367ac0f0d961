//! The payment look-up port: the provider's own record of a payment (PortOne V2's API).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::ids::PaymentId;
use crate::http::ApiError;

/// The provider's own record of a payment (PortOne V2 API).
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait PaymentLookup: super::MaybeSend {
    /// `None` when the provider does not know the payment.
    async fn portone_payment(&self, payment_id: &PaymentId) -> Result<Option<PortOnePayment>, ApiError>;
}

/// A payment as PortOne's `GET /payments/{paymentId}` describes it (the fields we use).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortOnePayment {
    pub status: String,
    pub id: String,
    pub currency: String,
    pub amount: PortOneAmount,
    #[serde(default)]
    pub customer: Option<PortOneCustomer>,
    /// JSON string the shop attached at checkout, e.g. `{"order_id": "..."}`.
    #[serde(default)]
    pub custom_data: Option<String>,
    #[serde(default)]
    pub paid_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub requested_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PortOneAmount {
    pub total: i64,
    #[serde(default)]
    pub paid: i64,
    #[serde(default)]
    pub cancelled: i64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PortOneCustomer {
    #[serde(default)]
    pub id: Option<String>,
}
