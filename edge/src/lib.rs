//! Edge HTTP handlers: plain async functions over runtime-neutral [`http`] types, served
//! by the Cloudflare Worker (`worker_entry`, wasm32 only) and natively by `promoctl dev`.

pub mod config;
pub mod error;
pub mod gateway;
pub mod http;
pub mod prices;
pub mod providers;
pub mod quotes;
pub mod webhook;

#[cfg(not(target_arch = "wasm32"))]
pub mod adapters;

#[cfg(target_arch = "wasm32")]
mod worker_entry;

use chrono::{DateTime, Utc};
use serde_json::json;

pub use config::EdgeConfig;
pub use error::EdgeError;
pub use gateway::{DeliveryLedger, HandOff, PaymentLookup, RateLimiter};
pub use http::{Request, Response};

/// The edge application: configuration and its ports.
pub struct Edge<L, H, P, R> {
    pub config: EdgeConfig,
    pub ledger: L,
    pub handoff: H,
    pub lookup: P,
    pub limiter: R,
}

impl<L: DeliveryLedger, H: HandOff, P: PaymentLookup, R: RateLimiter> Edge<L, H, P, R> {
    /// Routes a request. Never fails: errors become their HTTP answer.
    pub async fn handle(&self, req: Request, now: DateTime<Utc>) -> Response {
        match self.route(&req, now).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }

    async fn route(&self, req: &Request, now: DateTime<Utc>) -> Result<Response, EdgeError> {
        req.check_headers()?;
        let segments: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(1).collect();
        let method = req.method.as_str();
        match segments.as_slice() {
            ["healthz"] => {
                allow(method, "GET")?;
                Ok(Response::json(200, &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})))
            }
            ["v1", "webhooks", provider] => {
                allow(method, "POST")?;
                gateway::handle_webhook(&self.config, self.ports(), provider, req, now).await
            }
            ["v1", "payments", payment_id, "complete"] => {
                allow(method, "POST")?;
                gateway::handle_callback(&self.config, self.ports(), payment_id, req, now).await
            }
            ["v1", "quotes"] => {
                allow(method, "POST")?;
                quotes::handle(req)
            }
            _ => Err(EdgeError::NotFound(format!("{} {}", req.method, req.path))),
        }
    }
}

impl<L, H, P, R> Edge<L, H, P, R> {
    fn ports(&self) -> gateway::Ports<'_, L, H, P, R> {
        gateway::Ports { ledger: &self.ledger, handoff: &self.handoff, lookup: &self.lookup, limiter: &self.limiter }
    }
}

fn allow(method: &str, allowed: &'static str) -> Result<(), EdgeError> {
    if method == allowed || (allowed == "GET" && method == "HEAD") {
        Ok(())
    } else {
        Err(EdgeError::MethodNotAllowed { method: method.into(), allow: allowed })
    }
}
