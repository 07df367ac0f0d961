//! A stand-in of Cloudflare's KV bulk write API (`PUT /client/v4/accounts/{account}/storage/
//! kv/namespaces/{ns}/bulk`) that records every write: `(account/ns, authorization, body)`.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::put;
use serde_json::{Value, json};

/// Every write received: the namespace (`account/ns`), the `Authorization` header and the body.
pub type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// Serves the stand-in on a free loopback port; returns its API base (for `PROMO_CF_API_BASE`)
/// and what it receives.
pub async fn serve() -> (String, Seen) {
    async fn bulk(
        State(seen): State<Seen>,
        Path((account, ns)): Path<(String, String)>,
        headers: HeaderMap,
        body: String,
    ) -> ([(&'static str, &'static str); 1], String) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Ok(mut seen) = seen.lock() {
            seen.push((format!("{account}/{ns}"), auth, body));
        }
        let answer = json!({"success": true, "errors": [], "messages": [], "result": {"successful_key_count": 1}});
        ([("content-type", "application/json")], answer.to_string())
    }
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/client/v4/accounts/{account}/storage/kv/namespaces/{ns}/bulk", put(bulk))
        .with_state(seen.clone());
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("cannot bind the KV stand-in: {e}"),
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/client/v4"), seen)
}
