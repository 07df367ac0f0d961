//! The personal prices port: how the edge answers a product page read that carries a
//! shopper's bearer token. The edge holds no shopper data, so it hands such a read to the
//! shoppers' API — over HTTP to the API Lambda at the edge, in process locally.

use async_trait::async_trait;

use crate::http::{ApiError, Request, Response};

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait PersonalPrices: super::MaybeSend {
    /// The shopper's own answer to `req` (never stored by a shared cache).
    async fn personal_price(&self, req: &Request) -> Result<Response, ApiError>;
}
