//! The outbound HTTP port on the host (reqwest): PortOne's payment API goes through it in the
//! local runtime (the request and the reading of its answer are the core's,
//! `promo_shared::payments::portone`).

use async_trait::async_trait;
use promo_shared::ports::http_client::{HttpClient, OutboundRequest, OutboundResponse, SendError};

#[derive(Debug)]
pub struct ReqwestClient(reqwest::Client);

impl ReqwestClient {
    /// A client whose requests give up after `timeout`.
    pub fn new(timeout: std::time::Duration) -> ReqwestClient {
        ReqwestClient(reqwest::Client::builder().timeout(timeout).build().unwrap_or_else(|_| reqwest::Client::new()))
    }
}

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, SendError> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| SendError(e.to_string()))?;
        let mut builder = self.0.request(method, &req.url);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        if !req.body.is_empty() {
            builder = builder.body(req.body);
        }
        let resp = builder.send().await.map_err(|e| SendError(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| SendError(e.to_string()))?.to_vec();
        Ok(OutboundResponse { status, body })
    }
}
