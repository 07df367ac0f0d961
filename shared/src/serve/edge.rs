//! The edge application: the public routes, served by the Cloudflare Worker and natively by
//! the local runtime with the same code — health, webhooks and client callbacks (the
//! gateway), quotes, and product-page prices. The shoppers' routes belong to `serve::api`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::config::EdgeConfig;
use crate::http::{ApiError, Request, Response, Route, ServedBy};
use crate::payments::gateway;
use crate::ports::catalog::Catalog;
use crate::ports::handoff::HandOff;
use crate::ports::ledger::DeliveryLedger;
use crate::ports::lookup::PaymentLookup;
use crate::ports::price_cache::PriceCache;
use crate::ports::rate_limit::RateLimiter;
use crate::ports::shopper_api::ShopperApi;
use crate::pricing::prices::{self, CachePolicy};
use crate::pricing::quotes;

/// The edge application: its configuration and its ports.
pub struct Edge {
    pub config: EdgeConfig,
    pub ledger: Box<dyn DeliveryLedger>,
    pub handoff: Box<dyn HandOff>,
    pub lookup: Box<dyn PaymentLookup>,
    pub limiter: Box<dyn RateLimiter>,
    pub catalog: Arc<dyn Catalog>,
    pub cache: Arc<dyn PriceCache>,
    /// The shoppers' API: claims, wallets and personal price reads go there.
    pub shoppers: Box<dyn ShopperApi>,
    pub prices: CachePolicy,
}

/// What handling a request gave: the response, and the product whose public price the
/// runtime should recompute in the background (a stale answer was served).
pub struct Served {
    pub response: Response,
    pub refresh: Option<String>,
    /// What the runtime logs of a payment webhook (one JSON line; the metrics of accepted
    /// and rejected webhooks by reason are counted from these lines).
    pub webhook: Option<serde_json::Value>,
}

impl From<Response> for Served {
    fn from(response: Response) -> Served {
        Served { response, refresh: None, webhook: None }
    }
}

/// The log line of a webhook's answer: provider, outcome (`accepted`, `replayed`, `ignored`
/// or `rejected`), the reason of a rejection (the error code) and the request id.
/// How long the edge keeps an event's public view.
pub const EVENT_CACHE_SECONDS: i64 = 1;

pub fn webhook_line(provider: &str, req: &Request, response: &Response) -> serde_json::Value {
    let body = response.json_body();
    let replayed = response.header("idempotent-replayed") == Some("true");
    let (outcome, reason) = match (response.status, body.pointer("/error/code").and_then(|c| c.as_str())) {
        (200..=299, _) if replayed => ("replayed", None),
        (200..=299, _) if body.get("status").and_then(|s| s.as_str()) == Some("ignored") => ("ignored", None),
        (200..=299, _) => ("accepted", None),
        (_, code) => ("rejected", Some(code.unwrap_or("unknown").to_string())),
    };
    json!({
        "metric": "webhook", "provider": provider, "outcome": outcome, "reason": reason,
        "status": response.status, "request_id": crate::http::request_id(req),
    })
}

impl Edge {
    /// Serves `req` whole: a CORS preflight, the route table, the route's handler, and the
    /// CORS headers of the answer (the one place the shop's origins are applied).
    pub async fn respond(&self, req: &Request, now: DateTime<Utc>) -> Served {
        if let Some(preflight) = self.config.cors.preflight(req) {
            return preflight.into();
        }
        let request_id = crate::http::request_id(req);
        let route = match Route::of(&req.method, &req.path) {
            Ok(route) => route,
            Err(e) => return e.respond(request_id).into(),
        };
        let mut served = self.handle(route, req, now).await;
        self.config.cors.decorate(req, Some(&route), &mut served.response);
        // A 5xx says which request failed (an answer built without the request at hand).
        crate::http::stamp_request_id(&mut served.response, request_id);
        if let Some(id) = request_id {
            served.response.headers.push(("x-request-id".into(), id.to_string()));
        }
        if let Route::Webhook { provider } = route {
            served.webhook = Some(webhook_line(provider, req, &served.response));
        }
        served
    }

    /// Serves `route`, matched by the caller. Never fails: errors become their HTTP answer.
    pub async fn handle(&self, route: Route<'_>, req: &Request, now: DateTime<Utc>) -> Served {
        match self.serve(route, req, now).await {
            Ok(served) => served,
            Err(e) => e.respond(crate::http::request_id(req)).into(),
        }
    }

    async fn serve(&self, route: Route<'_>, req: &Request, now: DateTime<Utc>) -> Result<Served, ApiError> {
        req.check_headers()?;
        let ports = gateway::Ports {
            ledger: &*self.ledger,
            handoff: &*self.handoff,
            lookup: &*self.lookup,
            limiter: &*self.limiter,
            request_id: crate::http::request_id(req),
        };
        if route.traits().served_by == ServedBy::Shoppers {
            return Ok(self.shoppers.forward(req).await?.into());
        }
        let response = match route {
            Route::Healthz => Response::json(200, &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})),
            Route::Webhook { provider } => gateway::handle_webhook(&self.config, ports, provider, req, now).await?,
            Route::PaymentComplete { payment_id } => {
                gateway::handle_callback(&self.config, ports, payment_id, req, now).await?
            }
            Route::Quote => quotes::handle(req)?,
            Route::MaxBenefitPrice { product } => {
                if req.header_values("authorization").next().is_some() {
                    let mut answer = self.shoppers.forward(req).await?;
                    // Whatever the API said: a personal answer is never stored by a shared cache.
                    answer.headers.retain(|(k, _)| k != "cache-control");
                    answer.headers.push(("cache-control".into(), "private, no-store".into()));
                    return Ok(answer.into());
                }
                let read = prices::read(&*self.catalog, &*self.cache, req, product, None, now, self.prices).await?;
                return Ok(Served { response: read.response, refresh: read.revalidate, webhook: None });
            }
            Route::MaxBenefitPriceHtml { product } => {
                let read = crate::pricing::fragment::read(&*self.catalog, &*self.cache, req, product, now, self.prices)
                    .await?;
                return Ok(Served { response: read.response, refresh: read.revalidate, webhook: None });
            }
            Route::EmbedScript => crate::serve::embed::latest(req),
            Route::EmbedVersioned { file } => crate::serve::embed::versioned(req, file)?,
            Route::Event { event } => return self.event(event, req, now).await,
            // The route table passes them on above.
            Route::Claim { .. }
            | Route::Wallet { .. }
            | Route::Unsubscribe
            | Route::Reserve { .. }
            | Route::CancelReservation { .. }
            | Route::Reservations { .. } => unreachable_route(route)?,
        };
        Ok(response.into())
    }

    /// A limited event's public view: the shoppers' API's answer, kept in the shared cache for
    /// [`EVENT_CACHE_SECONDS`] so a crowd refreshing the page before a drop reads the store
    /// about once a second per edge location.
    async fn event(&self, event: &str, req: &Request, now: DateTime<Utc>) -> Result<Served, ApiError> {
        let key = format!("event:{event}");
        let t = now.timestamp();
        if let Some(hit) = self.cache.get(&key).await
            && hit.fresh_until > t
        {
            let mut resp = Response {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: hit.body.into_bytes(),
            };
            resp.headers.push(("cache-control".into(), format!("public, max-age={EVENT_CACHE_SECONDS}")));
            resp.headers.push(("age".into(), (t - hit.computed_at).max(0).to_string()));
            return Ok(resp.into());
        }
        let answer = self.shoppers.forward(req).await?;
        // Only a GET's answer has the view: a HEAD's is empty, and storing it would blank the
        // page for everyone for the second.
        if answer.status == 200 && req.method == "GET" && !answer.body.is_empty() {
            let entry = crate::ports::price_cache::CachedPrice {
                body: String::from_utf8_lossy(&answer.body).into_owned(),
                etag: String::new(),
                computed_at: t,
                fresh_until: t + EVENT_CACHE_SECONDS,
                stale_until: t + EVENT_CACHE_SECONDS,
            };
            self.cache.put(&key, entry).await;
        }
        Ok(answer.into())
    }

    /// The product of a request a runtime may answer from stored bytes alone, without
    /// [`Edge::respond`]: a plain public `GET` of a product's max-benefit price — no query
    /// (`?quantity=` is another answer), no `Authorization` (personal), `Origin` (CORS),
    /// `If-None-Match` (maybe a 304) or body —
    /// whose answer is then exactly the public answer's, CORS adding only `Vary: Origin`.
    /// `has_header` says whether the request carries a header (lower-case name). The runtime
    /// still answers through `respond` unless the stored answer is fresh
    /// ([`prices::freshness`]).
    pub fn plain_public_price<'a>(
        method: &str,
        path: &'a str,
        query: Option<&str>,
        has_header: impl Fn(&str) -> bool,
    ) -> Option<&'a str> {
        const NOT_PLAIN: [&str; 5] =
            ["authorization", "origin", "if-none-match", "content-length", "transfer-encoding"];
        if method != "GET" || query.is_some() || NOT_PLAIN.iter().any(|h| has_header(h)) {
            return None;
        }
        match Route::of(method, path) {
            Ok(Route::MaxBenefitPrice { product }) if crate::domain::ids::ProductId::parse(product).is_ok() => {
                Some(product)
            }
            _ => None,
        }
    }

    /// The key the public price answer of `product` is cached under, when the catalog has the
    /// product (the catalog's memo: no store read on a hit).
    pub async fn public_price_key(&self, product: &str) -> Option<Arc<str>> {
        self.catalog.priced(product).await.ok().flatten().map(|p| p.public_key)
    }

    /// Recomputes the public price of `product` (after a stale answer was served): what
    /// [`Served::refresh`] named ([`prices::refresh_target`]).
    pub async fn refresh(&self, product: &str, now: DateTime<Utc>) {
        prices::refresh(&*self.catalog, &*self.cache, product, now, self.prices).await;
    }
}

/// A route the table passes to the shoppers' API reached the edge's own match: a table that
/// disagrees with the match is a bug, answered as one.
fn unreachable_route(route: Route<'_>) -> Result<Response, ApiError> {
    Err(ApiError::Internal(format!("{route:?} is the shoppers' API's, not the edge's")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhooks_log_line_says_its_outcome_and_reason() {
        let req = Request::new("POST", "/v1/webhooks/stripe").header("x-request-id", "req-1");
        let accepted = Response::json(200, &json!({"status": "accepted"}));
        let line = webhook_line("stripe", &req, &accepted);
        assert_eq!(
            line,
            json!({"metric": "webhook", "provider": "stripe", "outcome": "accepted", "reason": null,
            "status": 200, "request_id": "req-1"})
        );
        let mut replayed = accepted.clone();
        replayed.headers.push(("idempotent-replayed".into(), "true".into()));
        assert_eq!(webhook_line("stripe", &req, &replayed)["outcome"], "replayed");
        let ignored = Response::json(200, &json!({"status": "ignored"}));
        assert_eq!(webhook_line("stripe", &req, &ignored)["outcome"], "ignored");
        let rejected = ApiError::InvalidSignature("no".into()).into_response();
        let line = webhook_line("stripe", &Request::new("POST", "/v1/webhooks/stripe"), &rejected);
        assert_eq!((line["outcome"].as_str(), line["reason"].as_str()), (Some("rejected"), Some("invalid_signature")));
        assert_eq!(line["request_id"], serde_json::Value::Null);
    }

    /// The edge over fakes: the shoppers' API answers every request with its method and path
    /// (no body for a HEAD, as an HTTP server answers one) and counts them; the cache is a map.
    mod fakes {
        use std::collections::HashMap;
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use super::*;
        use crate::domain::ids::PaymentId;
        use crate::domain::payment::PaymentEvent;
        use crate::domain::price_book::{CatalogProduct, PriceBook};
        use crate::payments::providers::PortOnePayment;
        use crate::ports::ledger::{Recorded, Taken};
        use crate::ports::price_cache::CachedPrice;
        use crate::ports::rate_limit::Unlimited;

        #[derive(Default)]
        pub struct Fakes {
            pub forwarded: AtomicUsize,
            pub cache: Mutex<HashMap<String, CachedPrice>>,
            /// The shoppers' API fails with this `Unavailable` detail.
            pub down: Option<String>,
        }

        pub struct Shared(pub Arc<Fakes>);

        #[async_trait::async_trait]
        impl ShopperApi for Shared {
            async fn forward(&self, req: &Request) -> Result<Response, ApiError> {
                self.0.forwarded.fetch_add(1, Ordering::SeqCst);
                if let Some(detail) = &self.0.down {
                    return Err(ApiError::Unavailable(detail.clone()));
                }
                let mut answer = Response::json(200, &json!({"method": req.method, "path": req.path}));
                if req.method == "HEAD" {
                    answer.body.clear();
                }
                Ok(answer)
            }
        }

        #[async_trait::async_trait]
        impl PriceCache for Shared {
            async fn get(&self, key: &str) -> Option<CachedPrice> {
                self.0.cache.lock().unwrap().get(key).cloned()
            }
            async fn put(&self, key: &str, entry: CachedPrice) {
                self.0.cache.lock().unwrap().insert(key.into(), entry);
            }
        }

        #[async_trait::async_trait]
        impl Catalog for Shared {
            async fn product(&self, _id: &str) -> Result<Option<CatalogProduct>, ApiError> {
                Ok(None)
            }
            async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError> {
                Err(ApiError::Unavailable("no catalog in this test".into()))
            }
        }

        #[async_trait::async_trait]
        impl DeliveryLedger for Shared {
            async fn begin(&self, _key: &str, _hash: &str, _now: DateTime<Utc>) -> Result<Taken, ApiError> {
                Ok(Taken::Run { lease: "l".into() })
            }
            async fn complete(
                &self,
                _key: &str,
                _lease: &str,
                _answer: &serde_json::Value,
                _now: DateTime<Utc>,
                _keep: chrono::Duration,
            ) -> Result<Recorded, ApiError> {
                Ok(Recorded::Yes)
            }
            async fn release(&self, _key: &str, _lease: &str) -> Result<(), ApiError> {
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl HandOff for Shared {
            async fn hand_off(&self, _event: &PaymentEvent, _request_id: Option<&str>) -> Result<(), ApiError> {
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl PaymentLookup for Shared {
            async fn portone_payment(&self, _id: &PaymentId) -> Result<Option<PortOnePayment>, ApiError> {
                Ok(None)
            }
        }

        /// The edge over `fakes`, with this limiter.
        pub fn edge_with(fakes: &Arc<Fakes>, limiter: Box<dyn RateLimiter>) -> Edge {
            Edge {
                config: EdgeConfig::from_lookup(|_| None).unwrap(),
                ledger: Box::new(Shared(fakes.clone())),
                handoff: Box::new(Shared(fakes.clone())),
                lookup: Box::new(Shared(fakes.clone())),
                limiter,
                catalog: Arc::new(Shared(fakes.clone())),
                cache: Arc::new(Shared(fakes.clone())),
                shoppers: Box::new(Shared(fakes.clone())),
                prices: CachePolicy::default(),
            }
        }

        pub fn edge(fakes: &Arc<Fakes>) -> Edge {
            edge_with(fakes, Box::new(Unlimited))
        }
    }

    #[tokio::test]
    async fn a_head_of_an_event_never_blanks_its_cached_view() {
        use std::sync::atomic::Ordering;
        let fakes = Arc::new(fakes::Fakes::default());
        let edge = fakes::edge(&fakes);
        let now = crate::testing::at("2026-11-27T09:00:00Z");
        let head = edge.respond(&Request::new("HEAD", "/v1/events/drop-1"), now).await.response;
        assert_eq!((head.status, head.body.len()), (200, 0));
        let get = edge.respond(&Request::new("GET", "/v1/events/drop-1"), now).await.response;
        assert_eq!(get.json_body(), json!({"method": "GET", "path": "/v1/events/drop-1"}), "the GET's own answer");
        let again = edge.respond(&Request::new("GET", "/v1/events/drop-1"), now).await.response;
        assert_eq!(again.json_body(), json!({"method": "GET", "path": "/v1/events/drop-1"}), "the stored view");
        assert_eq!(again.header("cache-control"), Some("public, max-age=1"));
        assert_eq!(fakes.forwarded.load(Ordering::SeqCst), 2, "the HEAD and the first GET; the second GET is a hit");
    }

    #[tokio::test]
    async fn a_failed_dependency_is_answered_in_words_with_the_request_id() {
        let arn = "arn:aws:iam::123456789012:role/promo-prod-ApiRole";
        let fakes = Arc::new(fakes::Fakes {
            down: Some(format!("API: AccessDenied: User: {arn} is not authorized")),
            ..Default::default()
        });
        let edge = fakes::edge(&fakes);
        let req = Request::new("POST", "/v1/campaigns/bf/claims").header("x-request-id", "req-12");
        let resp = edge.respond(&req, crate::testing::at("2026-11-27T09:00:00Z")).await.response;
        let text = String::from_utf8(resp.body.clone()).unwrap();
        assert_eq!(resp.status, 503);
        assert!(
            !text.contains("123456789012") && !text.contains("arn:aws") && !text.contains("AccessDenied"),
            "{text}"
        );
        assert_eq!(resp.json_body()["error"]["request_id"], "req-12", "{text}");
        assert_eq!(resp.json_body()["error"]["message"], crate::http::UNAVAILABLE_MESSAGE);
        assert_eq!(resp.header("x-request-id"), Some("req-12"));
    }

    /// A limiter whose binding is missing.
    struct NoBinding;

    #[async_trait::async_trait]
    impl RateLimiter for NoBinding {
        async fn allow(
            &self,
            _scope: crate::ports::rate_limit::LimitScope,
            _key: &str,
        ) -> Result<bool, crate::ports::rate_limit::LimiterUnavailable> {
            Err(crate::ports::rate_limit::LimiterUnavailable("binding CALLBACK_PAYMENT_LIMITER is missing".into()))
        }
    }

    #[tokio::test]
    async fn a_callback_whose_limiter_cannot_count_is_503_never_let_through() {
        let fakes = Arc::new(fakes::Fakes::default());
        let edge = fakes::edge_with(&fakes, Box::new(NoBinding));
        let now = crate::testing::at("2026-11-27T09:00:00Z");
        for client in [None, Some("203.0.113.9")] {
            let mut req = Request::new("POST", "/v1/payments/po_1/complete").body("{}");
            req.client = client.map(str::to_string);
            let resp = edge.respond(&req, now).await.response;
            assert_eq!((resp.status, resp.json_body()["error"]["code"].as_str()), (503, Some("unavailable")));
            assert_eq!(resp.header("retry-after"), Some("5"));
        }
    }

    #[test]
    fn only_a_plausible_request_id_is_used() {
        let with = |id: &str| Request::new("GET", "/healthz").header("x-request-id", id);
        assert_eq!(crate::http::request_id(&with("8a1b2c3d4e5f-ICN")), Some("8a1b2c3d4e5f-ICN"));
        assert_eq!(crate::http::request_id(&with("a b")), None);
        assert_eq!(crate::http::request_id(&with(&"x".repeat(129))), None);
        assert_eq!(crate::http::request_id(&Request::new("GET", "/healthz")), None);
    }
}
