//! The edge's ports that are another service over `fetch`: the hand-off to the issuer's
//! function URL (signed with Standard Webhooks, so the issuer verifies it like any webhook),
//! the outbound HTTP port (PortOne's payment API), and the shoppers' routes passed to the API
//! Lambda.

use async_trait::async_trait;
use promo_shared::domain::payment::PaymentEvent;
use promo_shared::http::{self, ApiError};
use promo_shared::payments::webhooks::standard::Secret;
use promo_shared::ports::handoff::HandOff;
use promo_shared::ports::http_client::{HttpClient, OutboundRequest, OutboundResponse, SendError};
use promo_shared::ports::shopper_api::ShopperApi;
use serde_json::json;
use worker::{Headers, Method, Request, RequestInit};

use crate::clock::now;

fn unavailable(what: &'static str) -> impl Fn(worker::Error) -> ApiError {
    move |e| ApiError::Unavailable(format!("{what}: {e}"))
}

/// Hands a verified event to the issuer's function URL.
pub struct FetchHandOff {
    pub url: Option<String>,
    pub secret: Option<Secret>,
}

#[async_trait(?Send)]
impl HandOff for FetchHandOff {
    async fn hand_off(&self, event: &PaymentEvent, request_id: Option<&str>) -> Result<(), ApiError> {
        let (Some(url), Some(secret)) = (&self.url, &self.secret) else {
            return Err(ApiError::Unavailable("the issuer hand-off is not configured".into()));
        };
        let unavailable = unavailable("hand-off");
        let body = event.to_json();
        let id = format!("payment:{}:{}", event.payment_id, json!(event.kind).as_str().unwrap_or("event"));
        let ts = now().timestamp();
        let headers = Headers::new();
        headers.set("content-type", "application/json").map_err(&unavailable)?;
        headers.set("webhook-id", &id).map_err(&unavailable)?;
        headers.set("webhook-timestamp", &ts.to_string()).map_err(&unavailable)?;
        headers.set("webhook-signature", &secret.sign(&id, ts, &body)).map_err(&unavailable)?;
        if let Some(rid) = request_id {
            headers.set("x-request-id", rid).map_err(&unavailable)?;
        }
        let body = String::from_utf8(body).map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
        let req = Request::new_with_init(url, &init).map_err(&unavailable)?;
        let resp = worker::Fetch::Request(req).send().await.map_err(&unavailable)?;
        if (200..300).contains(&resp.status_code()) {
            Ok(())
        } else {
            Err(ApiError::Unavailable(format!("issuer answered {}", resp.status_code())))
        }
    }
}

/// The outbound HTTP port over the Worker's `fetch` (PortOne's payment API goes through it).
pub struct FetchClient;

#[async_trait(?Send)]
impl HttpClient for FetchClient {
    async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, SendError> {
        let failed = |e: worker::Error| SendError(e.to_string());
        let headers = Headers::new();
        for (name, value) in &req.headers {
            headers.set(name, value).map_err(failed)?;
        }
        let method = Method::from(req.method.to_string());
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(headers);
        if !req.body.is_empty() {
            init.with_body(Some(js_sys_bytes(&req.body)));
        }
        let request = Request::new_with_init(&req.url, &init).map_err(failed)?;
        let mut resp = worker::Fetch::Request(request).send().await.map_err(failed)?;
        let status = resp.status_code();
        let body = resp.bytes().await.map_err(failed)?;
        Ok(OutboundResponse { status, body })
    }
}

/// The shoppers' routes (claims, wallets, personal price reads), passed to the API Lambda
/// (`PROMO_API_URL`), which has the shoppers' data: the method, path, body and the headers
/// the API reads go through; its status, body and the headers a client needs come back.
pub struct FetchShopperApi {
    pub api_url: Option<String>,
}

/// Request headers the API reads.
const FORWARDED: [&str; 5] = ["authorization", "idempotency-key", "content-type", "x-request-id", "accept"];
/// Answer headers passed back.
const RETURNED: [&str; 10] = [
    "content-type",
    "etag",
    "www-authenticate",
    "idempotent-replayed",
    "retry-after",
    "location",
    "x-request-id",
    "content-security-policy",
    "referrer-policy",
    "cache-control",
];

#[async_trait(?Send)]
impl ShopperApi for FetchShopperApi {
    async fn forward(&self, req: &http::Request) -> Result<http::Response, ApiError> {
        let Some(base) = &self.api_url else {
            return Err(ApiError::Unavailable("the shoppers' API is not configured (PROMO_API_URL)".into()));
        };
        let unavailable = unavailable("API");
        let headers = Headers::new();
        for name in FORWARDED {
            for value in req.header_values(name) {
                headers.append(name, value).map_err(&unavailable)?;
            }
        }
        let method = match req.method.as_str() {
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            _ => Method::Get,
        };
        let mut init = RequestInit::new();
        init.with_method(method.clone()).with_headers(headers);
        if matches!(method, Method::Post | Method::Delete) && !req.body.is_empty() {
            init.with_body(Some(js_sys_bytes(&req.body)));
        }
        let url = format!("{}{}", base.trim_end_matches('/'), req.path_and_query());
        let upstream = Request::new_with_init(&url, &init).map_err(&unavailable)?;
        let mut resp = worker::Fetch::Request(upstream).send().await.map_err(&unavailable)?;
        let status = resp.status_code();
        let body = resp.bytes().await.map_err(&unavailable)?;
        let mut out = http::Response { status, headers: vec![], body };
        for (k, v) in resp.headers().entries() {
            let k = k.to_ascii_lowercase();
            if RETURNED.contains(&k.as_str()) {
                out.headers.push((k, v));
            }
        }
        Ok(out)
    }
}

/// A body for `RequestInit`.
fn js_sys_bytes(body: &[u8]) -> wasm_bindgen::JsValue {
    worker::js_sys::Uint8Array::from(body).into()
}
