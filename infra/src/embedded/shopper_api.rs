//! The shoppers' API in the local runtime: the edge application hands claims, wallets and
//! personal price reads to it in the same process (the Worker sends them to the API Lambda).

use std::sync::Arc;

use async_trait::async_trait;
use promo_shared::http::{ApiError, Request, Response};
use promo_shared::ports::shopper_api::ShopperApi;
use promo_shared::ports::store::Store;
use promo_shared::serve::api::Api;

pub struct InProcessApi<S>(pub Arc<Api<S>>);

#[async_trait]
impl<S: Store + 'static> ShopperApi for InProcessApi<S> {
    async fn forward(&self, req: &Request) -> Result<Response, ApiError> {
        Ok(self.0.respond(req).await)
    }
}
