//! The durable hand-off: an accepted payment event is enqueued to the stack's SQS queue
//! (`SendMessage`, AWS JSON 1.0 protocol) with a request signed by `aws-sigv4`; the issuer
//! Lambda consumes the queue with partial batch failures. The answer to the provider is 2xx
//! only once SQS has the message, so a queue outage becomes the provider's retry, and a
//! Lambda throttle or cold start delays issuance without losing it.
//!
//! Building and signing the request needs no Worker runtime and is tested on the host; the
//! `fetch` that sends it is the Worker's ([`SqsHandOff`]).

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use chrono::{DateTime, Utc};
use promo_shared::config::QueueTarget;
use promo_shared::http::ApiError;
use serde_json::json;

/// A request ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// `SendMessage` of `message` to `queue`, signed for `now`.
pub fn send_message(
    queue: &QueueTarget,
    message: &str,
    request_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SignedRequest, ApiError> {
    let internal = |e: &dyn std::fmt::Display| ApiError::Internal(format!("signing the queue request: {e}"));
    // The JSON protocol is served at the queue URL's origin; the queue is named in the body.
    let origin = queue.url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let url = format!("{origin}/");
    let mut body = json!({"QueueUrl": queue.url, "MessageBody": message});
    if let Some(rid) = request_id {
        // The issuer logs it with the event (`lambdas::entry`).
        body["MessageAttributes"] = json!({"request_id": {"DataType": "String", "StringValue": rid}});
    }
    let body = body.to_string();
    let host = origin.split("://").nth(1).unwrap_or_default().to_string();
    let mut headers = vec![
        ("host".to_string(), host),
        ("content-type".to_string(), "application/x-amz-json-1.0".to_string()),
        ("x-amz-target".to_string(), "AmazonSQS.SendMessage".to_string()),
    ];
    let identity = Credentials::new(
        queue.access_key_id.clone(),
        queue.secret_access_key.expose().to_string(),
        None,
        None,
        "promo-edge",
    )
    .into();
    let millis = u64::try_from(now.timestamp_millis()).map_err(|e| internal(&e))?;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&queue.region)
        .name("sqs")
        .time(UNIX_EPOCH + Duration::from_millis(millis))
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| internal(&e))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| internal(&e))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| internal(&e))?.into_parts();
    headers.extend(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())));
    // The Worker's fetch sets Host itself.
    headers.retain(|(k, _)| k != "host");
    Ok(SignedRequest { url, headers, body })
}

#[cfg(target_arch = "wasm32")]
pub use worker_adapter::SqsHandOff;

#[cfg(target_arch = "wasm32")]
mod worker_adapter {
    use async_trait::async_trait;
    use promo_shared::config::QueueTarget;
    use promo_shared::domain::payment::PaymentEvent;
    use promo_shared::http::ApiError;
    use promo_shared::ports::handoff::HandOff;
    use worker::{Headers, Method, Request, RequestInit};

    use crate::clock::now;

    /// Enqueues accepted events to SQS.
    pub struct SqsHandOff {
        pub queue: QueueTarget,
    }

    #[async_trait(?Send)]
    impl HandOff for SqsHandOff {
        async fn hand_off(&self, event: &PaymentEvent, request_id: Option<&str>) -> Result<(), ApiError> {
            let unavailable = |e: worker::Error| ApiError::Unavailable(format!("payment queue: {e}"));
            let message = String::from_utf8(event.to_json()).map_err(|e| ApiError::Internal(e.to_string()))?;
            let signed = super::send_message(&self.queue, &message, request_id, now())?;
            let headers = Headers::new();
            for (k, v) in &signed.headers {
                headers.set(k, v).map_err(unavailable)?;
            }
            let mut init = RequestInit::new();
            init.with_method(Method::Post).with_headers(headers).with_body(Some(signed.body.into()));
            let req = Request::new_with_init(&signed.url, &init).map_err(unavailable)?;
            let mut resp = worker::Fetch::Request(req).send().await.map_err(unavailable)?;
            let status = resp.status_code();
            if (200..300).contains(&status) {
                return Ok(());
            }
            // SQS's error type, never the request (it carries no secret, but keep logs small).
            let detail = resp.text().await.unwrap_or_default();
            let kind = serde_json::from_str::<serde_json::Value>(&detail)
                .ok()
                .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(str::to_string))
                .unwrap_or_default();
            Err(ApiError::Unavailable(format!("payment queue answered {status} {kind}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promo_shared::domain::secret::SecretString;

    fn queue() -> QueueTarget {
        QueueTarget {
            url: "https://sqs.ap-northeast-2.amazonaws.com/123456789012/promo-payments".into(),
            region: "ap-northeast-2".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        }
    }

    #[test]
    fn send_message_is_a_signed_json_protocol_request() {
        let now: DateTime<Utc> = "2031-01-02T03:04:05Z".parse().unwrap();
        let r = send_message(&queue(), "{\"type\":\"paid\"}", Some("req-1"), now).unwrap();
        assert_eq!(r.url, "https://sqs.ap-northeast-2.amazonaws.com/");
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["QueueUrl"], queue().url);
        assert_eq!(body["MessageBody"], "{\"type\":\"paid\"}");
        assert_eq!(body["MessageAttributes"]["request_id"]["StringValue"], "req-1");
        let header = |name: &str| r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(header("x-amz-target"), Some("AmazonSQS.SendMessage"));
        assert_eq!(header("x-amz-date"), Some("20310102T030405Z"));
        let auth = header("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20310102/ap-northeast-2/sqs/aws4_request, "),
            "{auth}"
        );
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target"), "{auth}");
        assert!(!r.headers.iter().any(|(_, v)| v.contains("wJalrXUtnFEMI")), "the secret key is never sent");
        // Deterministic for the same instant; another body, another signature.
        assert_eq!(send_message(&queue(), "{\"type\":\"paid\"}", Some("req-1"), now).unwrap(), r);
        let other = send_message(&queue(), "{\"type\":\"cancelled\"}", Some("req-1"), now).unwrap();
        assert_ne!(other.headers, r.headers);
    }
}
