//! The shoppers' API port: the edge holds no shopper data, so it passes what needs it —
//! claims, wallets and product-page reads that carry a bearer token — to the shoppers' API:
//! over HTTP to the API Lambda in the Worker, in process in the local runtime. The shop
//! talks to one origin either way.

use async_trait::async_trait;

use crate::http::{ApiError, Request, Response};

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait ShopperApi: super::MaybeSend {
    /// The shoppers' API's answer to `req`.
    async fn forward(&self, req: &Request) -> Result<Response, ApiError>;
}
