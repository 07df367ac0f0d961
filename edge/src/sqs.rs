//! The durable hand-off's queue: accepted payment events are enqueued to the stack's SQS
//! queue (`SendMessageBatch`, AWS JSON 1.0 protocol) with requests signed by `aws-sigv4`;
//! the issuer Lambda consumes the queue with partial batch failures. The messages wait in
//! their delivery object's outbox until SQS acknowledged them (`crate::outbox`), so a queue
//! outage delays issuance without losing it, as a Lambda throttle or cold start does.
//!
//! Building and signing the requests needs no Worker runtime and is tested on the host; the
//! `fetch` that sends them is the object's (`crate::outbox`).

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use promo_shared::config::QueueTarget;
use promo_shared::http::ApiError;
use serde_json::json;
use sha2::{Digest, Sha256};

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

/// A JSON-protocol request to SQS with `body`, for action `target`, signed for `now` with
/// Signature Version 4: POST to `/`, no query, the four headers below signed, the body's
/// SHA-256 as the payload hash. Written out for this one request shape (a few hundred bytes
/// of wasm where `aws-sigv4` was ~80 KB of the bundle); `tests` checks it signs exactly as
/// `aws-sigv4` does.
fn signed(queue: &QueueTarget, target: &str, body: String, now: DateTime<Utc>) -> Result<SignedRequest, ApiError> {
    // The JSON protocol is served at the queue URL's origin; the queue is named in the body.
    let origin = queue.url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let url = format!("{origin}/");
    let host = origin.split("://").nth(1).unwrap_or_default();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    const SIGNED: &str = "content-type;host;x-amz-date;x-amz-target";
    let canonical = format!(
        "POST\n/\n\ncontent-type:{JSON_1_0}\nhost:{host}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\n{SIGNED}\n{}",
        hex::encode(Sha256::digest(body.as_bytes()))
    );
    let scope = format!("{date}/{}/sqs/aws4_request", queue.region);
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let secret = format!("AWS4{}", queue.secret_access_key.expose());
    let key = [date, queue.region.as_str(), "sqs", "aws4_request"]
        .iter()
        .fold(secret.into_bytes(), |key, part| hmac(&key, part));
    let signature = hex::encode(hmac(&key, &to_sign));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={SIGNED}, Signature={signature}",
        queue.access_key_id
    );
    // The Worker's fetch sets Host itself.
    let headers = vec![
        ("content-type".to_string(), JSON_1_0.to_string()),
        ("x-amz-target".to_string(), target.to_string()),
        ("x-amz-date".to_string(), amz_date),
        ("authorization".to_string(), authorization),
    ];
    Ok(SignedRequest { url, headers, body })
}

const JSON_1_0: &str = "application/x-amz-json-1.0";

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
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

    /// The same request signed by `aws-sigv4` (what the edge used before): the headers it
    /// adds, by name.
    fn signed_by_the_crate(queue: &QueueTarget, r: &SignedRequest, now: DateTime<Utc>) -> Vec<(String, String)> {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let host = r.url.split("://").nth(1).unwrap().trim_end_matches('/').to_string();
        let target = r.headers.iter().find(|(k, _)| k == "x-amz-target").unwrap().1.clone();
        let headers = [("host", host.as_str()), ("content-type", JSON_1_0), ("x-amz-target", target.as_str())];
        let identity = Credentials::new(
            queue.access_key_id.clone(),
            queue.secret_access_key.expose().to_string(),
            None,
            None,
            "test",
        )
        .into();
        let at =
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(now.timestamp_millis()).unwrap());
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&queue.region)
            .name("sqs")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable =
            SignableRequest::new("POST", &r.url, headers.into_iter(), SignableBody::Bytes(r.body.as_bytes())).unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_signature_is_the_one_aws_sigv4_makes() {
        let local = QueueTarget {
            url: "http://127.0.0.1:37129/123456789012/promo-payments".into(),
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: SecretString::new("test"),
        };
        for (q, now) in [(queue(), "2031-01-02T03:04:05Z"), (local, "2026-12-31T23:59:59.999Z")] {
            let now: DateTime<Utc> = now.parse().unwrap();
            let m = Queued { body: "{\"type\":\"paid\",\"note\":\"ü \\n\"}".into(), request_id: Some("r 1".into()) };
            for r in [send_message(&q, "{}", None, now).unwrap(), send_message_batch(&q, &[&m, &m], now).unwrap()] {
                let ours: Vec<_> =
                    r.headers.iter().filter(|(k, _)| k == "authorization" || k == "x-amz-date").collect();
                let theirs = signed_by_the_crate(&q, &r, now);
                for (name, value) in theirs {
                    assert!(ours.iter().any(|(k, v)| *k == name && *v == value), "{name}: {value} vs {ours:?}");
                }
                assert_eq!(ours.len(), 2);
            }
        }
    }
}
