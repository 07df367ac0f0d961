//! The Worker's entry: converts the request into the core's, serves it with the core's edge
//! application over the Cloudflare adapters, converts the answer back. A stale price answer
//! is recomputed after the response (`waitUntil`).

use std::rc::Rc;
use std::sync::Arc;

use futures::StreamExt;
use promo_shared::config::EdgeConfig;
use promo_shared::http::{self, ApiError};
use promo_shared::payments::portone::PortOneApi;
use promo_shared::serve::edge::Edge;
use worker::{Context, Env, Headers, Request, Response, Result, event};

use crate::cache::EdgeCache;
use crate::clock::now;
use crate::config::{self, CLIENT_LIMITER_BINDING, DEDUPE_BINDING, PAYMENT_LIMITER_BINDING};
use crate::durable::DurableObjectLedger;
use crate::fetch::{FetchClient, FetchHandOff, FetchShopperApi};
use crate::kv::KvCatalog;
use crate::outbox::{OutboxHandOff, Pending};
use crate::rate_limit::BindingLimiter;

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
    // The core's warnings and errors (the detail behind a 5xx answer) reach Workers Logs.
    crate::log::init();
    let mut headers: Vec<(String, String)> =
        req.headers().entries().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    // One id per request, carried into the Lambdas' logs: Cloudflare's ray id unless the
    // caller sent its own.
    if !headers.iter().any(|(k, _)| k == "x-request-id")
        && let Some(ray) = headers.iter().find(|(k, _)| k == "cf-ray").map(|(_, v)| v.clone())
    {
        headers.push(("x-request-id".into(), ray));
    }
    // Answers before the request is whole name it too.
    let request_id = http::request_id_in(&headers).map(str::to_string);
    let fail = |e: ApiError| to_worker(e.respond(request_id.as_deref()));
    let cfg = match config::read(|k| env.var(k).ok().map(|v| v.to_string())) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let declared = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cfg.max_body_bytes) {
        return fail(ApiError::PayloadTooLarge { limit: cfg.max_body_bytes });
    }
    // Set by Cloudflare for every request it forwards; a client cannot choose it.
    let client = headers.iter().find(|(k, _)| k == "cf-connecting-ip").map(|(_, v)| v.clone());
    let body = match read_body(&mut req, cfg.max_body_bytes).await {
        Ok(body) => Ok(body),
        Err(BodyError::TooLarge) => return fail(ApiError::PayloadTooLarge { limit: cfg.max_body_bytes }),
        Err(BodyError::Read(e)) => Err(e),
    };
    let query = req.url().ok().and_then(|u| u.query().map(str::to_string)).unwrap_or_default();
    let request = match http::Request::received(req.method().as_ref(), &req.path(), headers, body, client) {
        Ok(r) => r.with_query(&query),
        Err(e) => return fail(e),
    };
    let pending = Rc::new(Pending::default());
    let edge = match edge(&env, cfg, &pending) {
        Ok(e) => e,
        Err(e) => return fail(ApiError::Internal(format!("misconfigured worker: {e}"))),
    };
    let mut served = edge.respond(&request, now()).await;
    if let Some(stored) = pending.replayed.borrow_mut().take() {
        as_replay(&mut served, &stored);
    }
    if let Some(line) = &served.webhook {
        // Workers Logs (observability in wrangler.toml) count webhooks by outcome and reason.
        worker::console_log!("{line}");
    }
    if let Some(product) = served.refresh {
        ctx.wait_until(async move { edge.refresh(&product, now()).await });
    }
    to_worker(served.response)
}

/// Why a body was not read.
enum BodyError {
    /// Past the limit: reading stopped there.
    TooLarge,
    /// The stream failed.
    Read(worker::Error),
}

/// The request's body, read as a stream and bounded on every route: past `limit` bytes the
/// reading stops (413), whatever the request declared (a chunked upload declares nothing, so
/// the `content-length` check alone does not bound it).
async fn read_body(req: &mut Request, limit: usize) -> std::result::Result<Vec<u8>, BodyError> {
    // No body at all (a GET): nothing to read.
    let Ok(stream) = req.stream() else { return Ok(Vec::new()) };
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Read)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A webhook whose one round trip (`crate::outbox`) found it delivered before: the core
/// built its answer afresh, so it is given as the stored answer, marked
/// `Idempotent-Replayed: true` (as the core's replay of a begin is), and logged as one.
fn as_replay(served: &mut promo_shared::serve::edge::Served, stored: &serde_json::Value) {
    let status = stored.get("status").and_then(serde_json::Value::as_u64).and_then(|s| u16::try_from(s).ok());
    let (Some(status), Some(body)) = (status, stored.get("body")) else { return };
    let fresh = std::mem::replace(&mut served.response, http::Response::json(status, body));
    let replay = &mut served.response;
    replay.headers.extend(fresh.headers.into_iter().filter(|(k, _)| k != "content-type"));
    replay.headers.push(("idempotent-replayed".into(), "true".into()));
    if let Some(line) = served.webhook.as_mut() {
        // As `promo_shared::serve::edge::webhook_line` says of a replayed answer.
        line["outcome"] = "replayed".into();
    }
}

/// The edge application over this request's bindings. With a payment queue, the hand-off
/// goes through the delivery object's outbox (`crate::outbox`), sharing `pending` with the
/// ledger.
fn edge(env: &Env, cfg: EdgeConfig, pending: &Rc<Pending>) -> Result<Edge> {
    let queued = cfg.payment_queue.is_some();
    Ok(Edge {
        ledger: Box::new(DurableObjectLedger {
            namespace: env.durable_object(DEDUPE_BINDING)?,
            outbox: queued.then(|| pending.clone()),
        }),
        handoff: if queued {
            Box::new(OutboxHandOff { pending: pending.clone() })
        } else {
            Box::new(FetchHandOff { url: cfg.issuer_url.clone(), secret: cfg.issuer_secret.clone() })
        },
        lookup: Box::new(PortOneApi::new(&cfg.portone_api_base, cfg.portone_api_secret.clone(), FetchClient)),
        limiter: Box::new(BindingLimiter {
            client: env.rate_limiter(CLIENT_LIMITER_BINDING).ok(),
            payment: env.rate_limiter(PAYMENT_LIMITER_BINDING).ok(),
        }),
        catalog: Arc::new(KvCatalog::new(env).map_err(|e| worker::Error::RustError(e.to_string()))?),
        cache: Arc::new(EdgeCache),
        shoppers: Box::new(FetchShopperApi { api_url: cfg.api_url.clone() }),
        prices: cfg.prices,
        config: cfg,
    })
}

fn to_worker(resp: http::Response) -> Result<Response> {
    let headers = Headers::new();
    for (k, v) in &resp.headers {
        headers.append(k, v)?;
    }
    Ok(Response::from_bytes(resp.body)?.with_status(resp.status).with_headers(headers))
}
