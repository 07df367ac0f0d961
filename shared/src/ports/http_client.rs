//! The outbound HTTP port: requests the core builds for another service (PortOne's payment
//! API), sent by each runtime's client — `fetch` in the Worker, reqwest on the host. The core
//! owns the request and the reading of the answer; an adapter only moves bytes.

use async_trait::async_trait;
use thiserror::Error;

/// A request to another service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: &'static str,
    pub url: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the service answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The request did not get an answer (connection refused, timeout, TLS, ...).
#[derive(Debug, Error)]
#[error("{0}")]
pub struct SendError(pub String);

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait HttpClient: super::MaybeSend {
    async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, SendError>;
}
