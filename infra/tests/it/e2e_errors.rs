//! Server-side failures through the whole local runtime: the answer says what failed in words
//! for the shop and carries the request id; the detail (here a connection error naming the
//! internal address the PortOne look-up tried) reaches the log only, with the same id
//! (issue 25, item 12).

use crate::support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use promo_shared::config::EdgeConfig;
use promo_shared::http::UNAVAILABLE_MESSAGE;
use promoctl::runtime::Platform;
use serde_json::Value;

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn post(url: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, Value, String) {
    let mut req = reqwest::Client::new().post(url).body("{}");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let id = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    (status, id, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_dependency_answers_in_words_with_the_request_id_and_logs_the_detail() {
    let log = support::captured_logs();

    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let vars: HashMap<&str, String> = HashMap::from([
        ("PROMO_PORTONE_API_BASE", format!("http://127.0.0.1:{port}")),
        ("PROMO_PORTONE_API_SECRET", "portone-api-secret".to_string()),
    ]);
    let cfg = EdgeConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let platform = Arc::new(Platform::open(dir.path(), cfg).unwrap());
    let running = support::serve(platform, Duration::from_secs(60), 0).await;
    let base = format!("http://{}", running.addr);

    // The shop's callback: the PortOne look-up cannot connect.
    let url = format!("{base}/v1/payments/po_down_1/complete");
    let (status, id, body, text) = post(&url, &[("x-request-id", "e2e-req-12")]).await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(body["error"]["code"], "unavailable", "{text}");
    assert_eq!(body["error"]["message"], UNAVAILABLE_MESSAGE, "{text}");
    assert_eq!(body["error"]["request_id"], "e2e-req-12", "{text}");
    assert_eq!(id.as_deref(), Some("e2e-req-12"));
    for detail in ["127.0.0.1", &port.to_string(), "PortOne API", "error sending request", "connect"] {
        assert!(!text.contains(detail), "the answer shows `{detail}`: {text}");
    }
    let logged = log.text();
    let line = logged.lines().find(|l| l.contains("e2e-req-12") && l.contains("PortOne API")).unwrap_or_else(|| {
        panic!("no log line with the request id and the detail in:\n{logged}");
    });
    assert!(line.contains("unavailable") && line.contains(&port.to_string()), "{line}");

    // Without an id of the caller's: the runtime's own, in the answer and its header alike.
    let (status, id, body, text) = post(&format!("{base}/v1/payments/po_down_2/complete"), &[]).await;
    assert_eq!(status, 503, "{text}");
    let id = id.expect("an x-request-id header");
    assert_eq!(body["error"]["request_id"].as_str(), Some(id.as_str()), "{text}");

    // A provider without its secret keeps its words (they name no internal detail).
    let (status, _, body, text) = post(&format!("{base}/v1/webhooks/stripe"), &[("x-request-id", "e2e-req-13")]).await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(body["error"]["code"], "provider_not_configured");
    assert_eq!(body["error"]["message"], "webhook provider `stripe` has no secret configured");
    assert_eq!(body["error"]["request_id"], "e2e-req-13");

    running.shutdown().await.unwrap();
}
