//! PortOne V2's payment API: the one request the platform makes of it
//! (`GET {base}/payments/{paymentId}` with `Authorization: PortOne {secret}`) and the one
//! reading of its answer, over the [`HttpClient`] port, so the Worker and the local runtime
//! look payments up alike.

use async_trait::async_trait;

use crate::domain::ids::PaymentId;
use crate::domain::secret::SecretString;
use crate::http::ApiError;
use crate::ports::http_client::{HttpClient, OutboundRequest, OutboundResponse};
use crate::ports::lookup::{PaymentLookup, PortOnePayment};

/// Payment look-ups at PortOne's API through `client`.
#[derive(Debug)]
pub struct PortOneApi<C> {
    base: String,
    secret: Option<SecretString>,
    client: C,
}

impl<C> PortOneApi<C> {
    pub fn new(base: &str, secret: Option<SecretString>, client: C) -> Self {
        PortOneApi { base: base.trim_end_matches('/').to_string(), secret, client }
    }
}

/// The look-up request of `payment_id`.
pub fn payment_request(base: &str, secret: &SecretString, payment_id: &PaymentId) -> OutboundRequest {
    OutboundRequest {
        method: "GET",
        url: format!(
            "{}/payments/{}",
            base.trim_end_matches('/'),
            crate::http::encode_path_segment(payment_id.as_str())
        ),
        headers: vec![("authorization".into(), format!("PortOne {}", secret.expose()))],
        body: vec![],
    }
}

/// PortOne's answer: the payment, `None` for 404, unavailable for anything else.
pub fn payment_answer(resp: &OutboundResponse) -> Result<Option<PortOnePayment>, ApiError> {
    match resp.status {
        404 => Ok(None),
        200..=299 => serde_json::from_slice(&resp.body)
            .map(Some)
            .map_err(|e| ApiError::Unavailable(format!("PortOne API answered an unexpected payment: {e}"))),
        s => Err(ApiError::Unavailable(format!("PortOne API answered {s}"))),
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl<C: HttpClient> PaymentLookup for PortOneApi<C> {
    async fn portone_payment(&self, payment_id: &PaymentId) -> Result<Option<PortOnePayment>, ApiError> {
        let Some(secret) = &self.secret else {
            return Err(ApiError::Unavailable("PortOne look-ups are not configured (PROMO_PORTONE_API_SECRET)".into()));
        };
        let resp = self
            .client
            .send(payment_request(&self.base, secret, payment_id))
            .await
            .map_err(|e| ApiError::Unavailable(format!("PortOne API: {e}")))?;
        payment_answer(&resp)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_payment_escaped_and_carries_the_secret() {
        let secret = SecretString::new("portone-api-secret-value");
        let req = payment_request("https://api.portone.io/", &secret, &PaymentId::parse("order:1").unwrap());
        assert_eq!(req.method, "GET");
        assert_eq!(req.url, "https://api.portone.io/payments/order%3A1");
        assert_eq!(req.headers, vec![("authorization".to_string(), "PortOne portone-api-secret-value".to_string())]);
    }

    #[test]
    fn answers_are_read_by_status() {
        let answer = |status: u16, body: &str| payment_answer(&OutboundResponse { status, body: body.into() });
        assert!(answer(404, "").unwrap().is_none());
        let paid = r#"{"status":"PAID","id":"p-1","currency":"KRW","amount":{"total":1000}}"#;
        assert_eq!(answer(200, paid).unwrap().unwrap().amount.total, 1000);
        assert!(matches!(answer(200, "{}"), Err(ApiError::Unavailable(_))));
        assert!(matches!(answer(500, ""), Err(ApiError::Unavailable(_))));
        assert!(matches!(answer(401, ""), Err(ApiError::Unavailable(_))));
    }

    #[test]
    fn debug_shows_no_secret() {
        let api = PortOneApi::new("https://api.portone.io", Some(SecretString::new("portone-api-secret-value")), ());
        let shown = format!("{api:?}");
        assert!(!shown.contains("portone-api-secret-value"), "{shown}");
        assert!(shown.contains("api.portone.io"), "{shown}");
    }
}
