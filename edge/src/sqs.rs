//! The durable hand-off's queue: accepted payment events are enqueued to the stack's SQS
//! queue (`SendMessageBatch`, AWS JSON 1.0 protocol) with requests signed by `aws-sigv4`;
//! the issuer Lambda consumes the queue with partial batch failures. The messages wait in
//! their delivery object's outbox until SQS acknowledged them (`crate::outbox`), so a queue
//! outage delays issuance without losing it, as a Lambda throttle or cold start does.
//!
//! Building and signing the requests needs no Worker runtime and is tested on the host; the
//! `fetch` that sends them is the object's (`crate::outbox`).

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use chrono::{DateTime, Utc};
use promo_shared::config::QueueTarget;
use promo_shared::http::ApiError;
use serde_json::json;

use crate::ledger::Queued;

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
    let mut body = json!({"QueueUrl": queue.url, "MessageBody": message});
    if let Some(rid) = request_id {
        // The issuer logs it with the event (`lambdas::entry`).
        body["MessageAttributes"] = attributes(rid);
    }
    signed(queue, "AmazonSQS.SendMessage", body.to_string(), now)
}

/// At most this many messages go in one `SendMessageBatch` (SQS's limit).
pub const BATCH_MAX: usize = 10;

/// `SendMessageBatch` of `messages` (at most [`BATCH_MAX`]) to `queue`, signed for `now`:
/// entry `i` has the id `m<i>` ([`batch_outcome`] reads the answer by it).
pub fn send_message_batch(
    queue: &QueueTarget,
    messages: &[&Queued],
    now: DateTime<Utc>,
) -> Result<SignedRequest, ApiError> {
    let entries: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut entry = json!({"Id": format!("m{i}"), "MessageBody": m.body});
            if let Some(rid) = &m.request_id {
                entry["MessageAttributes"] = attributes(rid);
            }
            entry
        })
        .collect();
    let body = json!({"QueueUrl": queue.url, "Entries": entries}).to_string();
    signed(queue, "AmazonSQS.SendMessageBatch", body, now)
}

/// Which entries of a `SendMessageBatch` of `count` messages SQS took, by index, from its
/// 200 answer `body`: only those listed as successful (an entry missing from both lists was
/// not taken either, and is sent again).
pub fn batch_outcome(body: &str, count: usize) -> Vec<bool> {
    let mut taken = vec![false; count];
    let answer: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let ids = answer.get("Successful").and_then(|s| s.as_array()).into_iter().flatten();
    for id in ids.filter_map(|e| e.get("Id")?.as_str()) {
        if let Some(i) = id.strip_prefix('m').and_then(|n| n.parse::<usize>().ok()).filter(|&i| i < count) {
            taken[i] = true;
        }
    }
    taken
}

fn attributes(request_id: &str) -> serde_json::Value {
    json!({"request_id": {"DataType": "String", "StringValue": request_id}})
}

/// A JSON-protocol request to SQS with `body`, for action `target`, signed for `now`.
fn signed(queue: &QueueTarget, target: &str, body: String, now: DateTime<Utc>) -> Result<SignedRequest, ApiError> {
    let internal = |e: &dyn std::fmt::Display| ApiError::Internal(format!("signing the queue request: {e}"));
    // The JSON protocol is served at the queue URL's origin; the queue is named in the body.
    let origin = queue.url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let url = format!("{origin}/");
    let host = origin.split("://").nth(1).unwrap_or_default().to_string();
    let mut headers = vec![
        ("host".to_string(), host),
        ("content-type".to_string(), "application/x-amz-json-1.0".to_string()),
        ("x-amz-target".to_string(), target.to_string()),
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

    #[test]
    fn a_batch_names_its_entries_and_only_the_successful_ones_count_as_taken() {
        let now: DateTime<Utc> = "2031-01-02T03:04:05Z".parse().unwrap();
        let a = Queued { body: "{\"n\":1}".into(), request_id: Some("req-1".into()) };
        let b = Queued { body: "{\"n\":2}".into(), request_id: None };
        let r = send_message_batch(&queue(), &[&a, &b], now).unwrap();
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["QueueUrl"], queue().url);
        assert_eq!(body["Entries"][0]["Id"], "m0");
        assert_eq!(body["Entries"][0]["MessageBody"], "{\"n\":1}");
        assert_eq!(body["Entries"][0]["MessageAttributes"]["request_id"]["StringValue"], "req-1");
        assert_eq!(body["Entries"][1]["Id"], "m1");
        assert!(body["Entries"][1].get("MessageAttributes").is_none());
        let header = |name: &str| r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(header("x-amz-target"), Some("AmazonSQS.SendMessageBatch"));
        assert!(header("authorization").is_some_and(|a| a.contains("/sqs/aws4_request")));
        let answer = r#"{"Successful":[{"Id":"m1","MessageId":"x"}],"Failed":[{"Id":"m0","SenderFault":false,"Code":"InternalError"}]}"#;
        assert_eq!(batch_outcome(answer, 2), [false, true]);
        assert_eq!(batch_outcome(r#"{"Successful":[{"Id":"m7"}]}"#, 2), [false, false], "an id it never had");
        assert_eq!(batch_outcome("not json", 2), [false, false]);
    }
}
