//! The edge application: the public routes, served by the Cloudflare Worker and natively by
//! the local runtime with the same code — health, webhooks and client callbacks (the
//! gateway), quotes, and product-page prices. The shoppers' routes belong to `app::api`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::config::EdgeConfig;
use crate::app::prices::{self, CachePolicy};
use crate::app::{gateway, quotes};
use crate::http::{ApiError, Request, Response, Route};
use crate::ports::catalog::Catalog;
use crate::ports::handoff::HandOff;
use crate::ports::ledger::DeliveryLedger;
use crate::ports::lookup::PaymentLookup;
use crate::ports::personal::PersonalPrices;
use crate::ports::price_cache::PriceCache;
use crate::ports::rate_limit::RateLimiter;

/// The edge application: its configuration and its ports.
pub struct Edge {
    pub config: EdgeConfig,
    pub ledger: Box<dyn DeliveryLedger>,
    pub handoff: Box<dyn HandOff>,
    pub lookup: Box<dyn PaymentLookup>,
    pub limiter: Box<dyn RateLimiter>,
    pub catalog: Arc<dyn Catalog>,
    pub cache: Arc<dyn PriceCache>,
    pub personal: Box<dyn PersonalPrices>,
    pub prices: CachePolicy,
}

/// What handling a request gave: the response, and the product whose public price the
/// runtime should recompute in the background (a stale answer was served).
pub struct Served {
    pub response: Response,
    pub refresh: Option<String>,
}

impl From<Response> for Served {
    fn from(response: Response) -> Served {
        Served { response, refresh: None }
    }
}

impl Edge {
    /// Serves `route`. Never fails: errors become their HTTP answer.
    pub async fn handle(&self, route: Route<'_>, req: &Request, now: DateTime<Utc>) -> Served {
        match self.serve(route, req, now).await {
            Ok(served) => served,
            Err(e) => e.into_response().into(),
        }
    }

    async fn serve(&self, route: Route<'_>, req: &Request, now: DateTime<Utc>) -> Result<Served, ApiError> {
        req.check_headers()?;
        let ports = gateway::Ports {
            ledger: &*self.ledger,
            handoff: &*self.handoff,
            lookup: &*self.lookup,
            limiter: &*self.limiter,
        };
        let response = match route {
            Route::Healthz => Response::json(200, &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})),
            Route::Webhook { provider } => gateway::handle_webhook(&self.config, ports, provider, req, now).await?,
            Route::PaymentComplete { payment_id } => {
                gateway::handle_callback(&self.config, ports, payment_id, req, now).await?
            }
            Route::Quote => quotes::handle(req)?,
            Route::MaxBenefitPrice { product } => {
                if req.header_values("authorization").next().is_some() {
                    return Ok(self.personal.personal_price(req).await?.into());
                }
                let read = prices::read(&*self.catalog, &*self.cache, req, product, None, now, self.prices).await?;
                return Ok(Served { response: read.response, refresh: read.revalidate.map(|_| product.to_string()) });
            }
            Route::Claim { .. } | Route::Wallet { .. } => {
                return Err(ApiError::NotFound(format!("{} {} (the shoppers' API serves it)", req.method, req.path)));
            }
        };
        Ok(response.into())
    }

    /// Recomputes the public price of `product` (after a stale answer was served).
    pub async fn refresh(&self, product: &str, now: DateTime<Utc>) {
        prices::refresh(&*self.catalog, &*self.cache, product, now, self.prices).await;
    }
}
