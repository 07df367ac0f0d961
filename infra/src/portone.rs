//! The PortOne V2 API client of the local runtime (the Worker has its own, over `fetch`):
//! `GET {base}/payments/{paymentId}` with `Authorization: PortOne {secret}`.

use async_trait::async_trait;
use promo_shared::domain::ids::PaymentId;
use promo_shared::domain::secret::SecretString;
use promo_shared::http::ApiError;
use promo_shared::payments::providers::PortOnePayment;
use promo_shared::ports::lookup::PaymentLookup;

#[derive(Debug)]
pub struct PortOneClient {
    base: String,
    secret: Option<SecretString>,
    http: reqwest::Client,
}

impl PortOneClient {
    pub fn new(base: &str, secret: Option<SecretString>) -> PortOneClient {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        PortOneClient { base: base.trim_end_matches('/').to_string(), secret, http }
    }
}

#[async_trait]
impl PaymentLookup for PortOneClient {
    async fn portone_payment(&self, payment_id: &PaymentId) -> Result<Option<PortOnePayment>, ApiError> {
        let Some(secret) = &self.secret else {
            return Err(ApiError::Unavailable("PortOne look-ups are not configured (PROMO_PORTONE_API_SECRET)".into()));
        };
        let url = format!("{}/payments/{}", self.base, promo_shared::http::encode_path_segment(payment_id.as_str()));
        let resp = self
            .http
            .get(&url)
            .header("authorization", format!("PortOne {}", secret.expose()))
            .send()
            .await
            .map_err(|e| ApiError::Unavailable(format!("PortOne API: {e}")))?;
        match resp.status().as_u16() {
            404 => Ok(None),
            200..=299 => resp
                .json::<PortOnePayment>()
                .await
                .map(Some)
                .map_err(|e| ApiError::Unavailable(format!("PortOne API answered an unexpected payment: {e}"))),
            s => Err(ApiError::Unavailable(format!("PortOne API answered {s}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let client = PortOneClient::new("https://api.portone.io", Some(SecretString::new("portone-api-secret-value")));
        let shown = format!("{client:?}");
        assert!(!shown.contains("portone-api-secret-value"), "{shown}");
        assert!(shown.contains("api.portone.io"), "{shown}");
    }
}
