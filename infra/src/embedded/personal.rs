//! Personal price reads in the local runtime: the edge application hands them to the
//! shoppers' API in the same process (the Worker sends them to the API Lambda).

use std::sync::Arc;

use async_trait::async_trait;
use promo_shared::app::api::Api;
use promo_shared::http::{ApiError, Request, Response, Route};
use promo_shared::ports::personal::PersonalPrices;
use promo_shared::ports::store::Store;

pub struct InProcessApi<S>(pub Arc<Api<S>>);

#[async_trait]
impl<S: Store + 'static> PersonalPrices for InProcessApi<S> {
    async fn personal_price(&self, req: &Request) -> Result<Response, ApiError> {
        match Route::of(&req.method, &req.path)? {
            Route::MaxBenefitPrice { product } => Ok(self.0.personal_price(product, req).await),
            _ => Err(ApiError::NotFound(format!("{} {}", req.method, req.path))),
        }
    }
}
