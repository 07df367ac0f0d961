//! The local runtime bounds every route's body, however it is sent: a chunked upload declares
//! no length, and is refused with 413 once past the limit, as the Worker refuses it
//! (issue 25, item 13).

use crate::support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `bytes` of body to `path` chunked (no content-length) and returns the status and
/// the body of the answer.
async fn chunked(addr: std::net::SocketAddr, path: &str, bytes: usize) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         authorization: Bearer t\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 16 * 1024];
    let mut sent = 0;
    while sent < bytes {
        let n = chunk.len().min(bytes - sent);
        let mut out = format!("{n:x}\r\n").into_bytes();
        out.extend_from_slice(&chunk[..n]);
        out.extend_from_slice(b"\r\n");
        // The server may answer and close before it has read everything: what it answered counts.
        if stream.write_all(&out).await.is_err() {
            break;
        }
        sent += n;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no answer: {text}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // The answer may itself be chunked: its JSON is the first line that parses.
    let json = body.lines().find_map(|l| serde_json::from_str(l).ok()).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_body_past_the_limit_is_413_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::shoppers_platform(dir.path(), std::sync::Arc::new(promoctl::embedded::SystemClock));
    let limit = platform.edge.config.max_body_bytes;
    let running = support::serve(platform, Duration::from_secs(60), 0).await;
    for path in ["/v1/quotes", "/v1/campaigns/bf/claims", "/v1/payments/po_1/complete", "/v1/webhooks/standard"] {
        let (status, body) = chunked(running.addr, path, limit * 3).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["error"]["code"], "payload_too_large", "{path}");
    }
    // Under the limit, a chunked body is read whole (here: a quote that is not JSON).
    let (status, body) = chunked(running.addr, "/v1/quotes", 100).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_body")));
    running.shutdown().await.unwrap();
}
