//! The shoppers' API behind its function URL.

use promo_shared::ports::store::Store;
use promo_shared::serve::api::Api;
use serde_json::{Value, json};
use tracing::Instrument;

use super::EntryError;
use super::event;
use crate::metrics::Counts;

/// The shoppers' API Lambda behind its function URL: the request goes to [`Api`] as it came
/// (method, path, headers, body) and its answer goes back as the function URL response. A
/// body that is not valid base64 is 400 `invalid_body`; anything that is not a function URL
/// request fails the invocation.
pub async fn api<S: Store>(api: &Api<S>, event: Value) -> Result<Value, EntryError> {
    let req = event::function_url(event).inspect_err(|_| {
        tracing::error!("the API function got an event that is not a function URL request");
    })?;
    let body = match event::url_body(req.body, req.is_base64_encoded) {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    let method = req.request_context.http.method.unwrap_or_else(|| "GET".into());
    let path = req.raw_path.or(req.request_context.http.path).unwrap_or_else(|| "/".into());
    let query = req.raw_query_string.clone().unwrap_or_default();
    let mut request = promo_shared::http::Request::new(&method, &path).with_query(&query).body(body);
    request.client = req.request_context.http.source_ip.clone();
    let mut counts = Counts::default();
    let resp = match event::url_headers(&req.headers) {
        Ok(mut headers) => {
            // Called directly (not through the Worker, which sends its id): the invocation's
            // id names the request in the answer of a 5xx and in the log.
            if !headers.iter().any(|(k, _)| k == "x-request-id")
                && let Some(id) = &req.request_context.request_id
            {
                headers.push(("x-request-id".into(), id.clone()));
            }
            request.headers = headers;
            match promo_shared::http::Route::of(&request.method, &request.path) {
                Ok(route) => {
                    let span = tracing::info_span!(
                        "request",
                        request_id = promo_shared::http::request_id(&request).unwrap_or("-")
                    );
                    let resp = api.handle(route, &request).instrument(span).await;
                    count_api(&route, &resp, &mut counts);
                    resp
                }
                Err(e) => e.into_response(),
            }
        }
        Err(e) => e.into_response(),
    };
    counts.emit("api", api.claimer.clock.now());
    let mut headers = serde_json::Map::new();
    for (name, value) in resp.headers {
        headers.insert(name, Value::String(value));
    }
    Ok(json!({
        "statusCode": resp.status,
        "headers": headers,
        "body": String::from_utf8_lossy(&resp.body),
        "isBase64Encoded": false,
    }))
}

/// The API's metrics of one answer.
fn count_api(route: &promo_shared::http::Route<'_>, resp: &promo_shared::http::Response, counts: &mut Counts) {
    if resp.status == 429 {
        counts.add("throttled", 1);
    }
    if !matches!(route, promo_shared::http::Route::Claim { .. }) {
        return;
    }
    let code = resp.json_body().pointer("/error/code").and_then(Value::as_str).map(str::to_string);
    match (resp.status, code.as_deref()) {
        (200..=299, _) => counts.add("claimed", 1),
        (_, Some("sold_out")) => counts.add("sold_out", 1),
        (_, Some("claim_limit_reached")) => counts.add("claim_limit_reached", 1),
        _ => counts.add("claim_rejected", 1),
    }
}
