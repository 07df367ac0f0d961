//! The Cloudflare Worker: a thin `#[event(fetch)]` over the same handlers the local runtime
//! serves, with the edge's adapters — a Durable Object per delivery id as the strongly
//! consistent delivery ledger, and a signed `fetch` to the issuer's function URL as hand-off;
//! for product pages, KV (products and the price book) and the Cache API (public answers),
//! with personal (tokened) reads passed to the API Lambda.

use chrono::{DateTime, TimeZone, Utc};
use promo_shared::idempotency::{self, BeginDecision, IdempotencyConfig, Record};
use promo_shared::ids::PaymentId;
use promo_shared::payment::PaymentEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use worker::{
    Context, Date, DurableObject, Env, Headers, Method, ObjectNamespace, Request, RequestInit, Response, Result, State,
    durable_object, event,
};

use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::gateway::{DeliveryLedger, HandOff, LimitScope, PaymentLookup, RateLimiter, Recorded, Taken};
use crate::prices::{self, CachePolicy, CachedPrice, Catalog, PriceCache};
use crate::providers::PortOnePayment;
use crate::{Edge, http};

const DEDUPE_BINDING: &str = "WEBHOOK_DEDUPE";
/// Workers Rate Limiting bindings of client callbacks (`wrangler.toml` `[[ratelimits]]`).
const CLIENT_LIMITER_BINDING: &str = "CALLBACK_CLIENT_LIMITER";
const PAYMENT_LIMITER_BINDING: &str = "CALLBACK_PAYMENT_LIMITER";

fn now() -> DateTime<Utc> {
    let ms = i64::try_from(Date::now().as_millis()).unwrap_or(0);
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn config(env: &Env) -> std::result::Result<EdgeConfig, EdgeError> {
    EdgeConfig::from_lookup(|k| env.var(k).ok().map(|v| v.to_string()))
        .map_err(|e| EdgeError::Internal(format!("misconfigured worker: {e}")))
}

fn to_worker(resp: http::Response) -> Result<Response> {
    let headers = Headers::new();
    for (k, v) in &resp.headers {
        headers.append(k, v)?;
    }
    Ok(Response::from_bytes(resp.body)?.with_status(resp.status).with_headers(headers))
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
    let cfg = match config(&env) {
        Ok(c) => c,
        Err(e) => return to_worker(e.into_response()),
    };
    let headers: Vec<(String, String)> = req.headers().entries().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    let declared = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cfg.max_body_bytes) {
        return to_worker(EdgeError::PayloadTooLarge { limit: cfg.max_body_bytes }.into_response());
    }
    // A body that could not be read is our failure, not the sender's: 503, so it retries.
    let body = match req.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return to_worker(
                EdgeError::Unavailable(format!("the request body could not be read: {e}")).into_response(),
            );
        }
    };
    // Set by Cloudflare for every request it forwards; a client cannot choose it.
    let client = headers.iter().find(|(k, _)| k == "cf-connecting-ip").map(|(_, v)| v.clone());
    let request = http::Request { method: req.method().to_string(), path: req.path(), headers, body, client };
    if let Err(e) = request.check_headers() {
        return to_worker(e.into_response());
    }
    if let Some(product) = prices::product_of(&request.path) {
        let product = product.to_string();
        return to_worker(price_read(&env, &ctx, &request, &product).await.unwrap_or_else(EdgeError::into_response));
    }
    let edge = Edge {
        ledger: DurableObjectLedger { namespace: env.durable_object(DEDUPE_BINDING)? },
        handoff: FetchHandOff { url: cfg.issuer_url.clone(), secret: cfg.issuer_secret.clone() },
        lookup: FetchLookup { base: cfg.portone_api_base.clone(), secret: cfg.portone_api_secret.clone() },
        limiter: BindingLimiter {
            client: env.rate_limiter(CLIENT_LIMITER_BINDING).ok(),
            payment: env.rate_limiter(PAYMENT_LIMITER_BINDING).ok(),
        },
        config: cfg,
    };
    to_worker(edge.handle(request, now()).await)
}

/// A command to a delivery's Durable Object.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum LedgerCommand {
    Begin { hash: String, now_ms: i64 },
    Complete { lease: String, answer: Value, now_ms: i64, keep_ms: i64 },
    Release { lease: String },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum LedgerReply {
    Started { lease: String },
    Completed { answer: Value },
    Conflict,
    InProgress,
    Done,
    LeaseLost,
}

struct DurableObjectLedger {
    namespace: ObjectNamespace,
}

impl DurableObjectLedger {
    async fn call(&self, key: &str, cmd: &LedgerCommand) -> std::result::Result<LedgerReply, EdgeError> {
        let unavailable = |e: worker::Error| EdgeError::Unavailable(format!("delivery ledger: {e}"));
        let stub = self.namespace.id_from_name(key).and_then(|id| id.get_stub()).map_err(unavailable)?;
        let body = serde_json::to_string(cmd).map_err(|e| EdgeError::Internal(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let req = Request::new_with_init("https://ledger/", &init).map_err(unavailable)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(unavailable)?;
        resp.json().await.map_err(unavailable)
    }
}

#[async_trait::async_trait(?Send)]
impl DeliveryLedger for DurableObjectLedger {
    async fn begin(&self, key: &str, payload_hash: &str, now: DateTime<Utc>) -> std::result::Result<Taken, EdgeError> {
        match self
            .call(key, &LedgerCommand::Begin { hash: payload_hash.into(), now_ms: now.timestamp_millis() })
            .await?
        {
            LedgerReply::Started { lease } => Ok(Taken::Run { lease }),
            LedgerReply::Completed { answer } => Ok(Taken::Replay(answer)),
            LedgerReply::Conflict => {
                Err(EdgeError::Conflict("this delivery id was already used with a different body".into()))
            }
            LedgerReply::InProgress | LedgerReply::Done | LedgerReply::LeaseLost => {
                Err(EdgeError::InProgress(key.into()))
            }
        }
    }

    async fn complete(
        &self,
        key: &str,
        lease: &str,
        answer: &Value,
        now: DateTime<Utc>,
        keep: chrono::Duration,
    ) -> std::result::Result<Recorded, EdgeError> {
        let cmd = LedgerCommand::Complete {
            lease: lease.into(),
            answer: answer.clone(),
            now_ms: now.timestamp_millis(),
            keep_ms: keep.num_milliseconds(),
        };
        match self.call(key, &cmd).await? {
            LedgerReply::LeaseLost => Ok(Recorded::LeaseLost),
            _ => Ok(Recorded::Yes),
        }
    }

    async fn release(&self, key: &str, lease: &str) -> std::result::Result<(), EdgeError> {
        self.call(key, &LedgerCommand::Release { lease: lease.into() }).await.map(|_| ())
    }
}

/// A new lease token: unique per run of a delivery (the time, and randomness against two
/// takes in the same millisecond — which the ledger's single thread already excludes).
fn new_lease(now_ms: i64) -> String {
    let r = (worker::js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
    format!("{now_ms:x}-{r:x}")
}

/// One instance per delivery key (`id_from_name`): a single-threaded, strongly consistent
/// idempotency record, run by the rules of `promo_shared::idempotency` (the same decisions
/// the store's records make by condition); an alarm deletes it when it expires.
#[durable_object]
pub struct WebhookDedupe {
    state: State,
}

fn ms_to_utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl DurableObject for WebhookDedupe {
    fn new(state: State, _env: Env) -> Self {
        WebhookDedupe { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let cfg = IdempotencyConfig::default();
        let storage = self.state.storage();
        let cmd: LedgerCommand = req.json().await?;
        // Records of an older layout do not parse: they are treated as absent (at most a
        // replay answered afresh, which the issuer dedupes).
        let current: Option<Record> = storage.get("record").await.ok().flatten();
        let reply = match cmd {
            LedgerCommand::Begin { hash, now_ms } => {
                let lease = new_lease(now_ms);
                match idempotency::decide_begin(current.as_ref(), &hash, &lease, ms_to_utc(now_ms), &cfg) {
                    BeginDecision::Take(record) => {
                        storage.put("record", &record).await?;
                        storage.set_alarm(record.expires_at.saturating_mul(1000)).await?;
                        LedgerReply::Started { lease }
                    }
                    BeginDecision::Replay(answer) => LedgerReply::Completed { answer },
                    BeginDecision::Conflict => LedgerReply::Conflict,
                    BeginDecision::InProgress => LedgerReply::InProgress,
                }
            }
            LedgerCommand::Complete { lease, answer, now_ms, keep_ms } => {
                let keep = chrono::Duration::milliseconds(keep_ms);
                match idempotency::decide_complete(current.as_ref(), &lease, &answer, ms_to_utc(now_ms), keep) {
                    Some(record) => {
                        storage.put("record", &record).await?;
                        storage.set_alarm(record.expires_at.saturating_mul(1000)).await?;
                        LedgerReply::Done
                    }
                    None => LedgerReply::LeaseLost,
                }
            }
            LedgerCommand::Release { lease } => {
                if idempotency::decide_release(current.as_ref(), &lease) {
                    storage.delete_all().await?;
                    LedgerReply::Done
                } else {
                    LedgerReply::LeaseLost
                }
            }
        };
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        // A record completed again since the alarm was set moved it; only an expired one goes.
        let now = now();
        let current: Option<Record> = self.state.storage().get("record").await.ok().flatten();
        match current {
            Some(r) if r.expires_at > now.timestamp() => {
                self.state.storage().set_alarm(r.expires_at.saturating_mul(1000)).await?;
                Response::ok("kept")
            }
            _ => {
                self.state.storage().delete_all().await?;
                Response::ok("expired")
            }
        }
    }
}

/// Rate limits through the Workers Rate Limiting bindings; a binding that is not configured
/// limits nothing.
struct BindingLimiter {
    client: Option<worker::RateLimiter>,
    payment: Option<worker::RateLimiter>,
}

#[async_trait::async_trait(?Send)]
impl RateLimiter for BindingLimiter {
    async fn allow(&self, scope: LimitScope, key: &str) -> bool {
        let binding = match scope {
            LimitScope::CallbackClient => &self.client,
            LimitScope::CallbackPayment => &self.payment,
        };
        match binding {
            // The binding failing is not the caller's fault: let the request through.
            Some(b) => b.limit(key.to_string()).await.map(|o| o.success).unwrap_or(true),
            None => true,
        }
    }
}

/// Hands a verified event to the issuer's function URL, signed with Standard Webhooks so
/// the issuer verifies it like any other webhook.
struct FetchHandOff {
    url: Option<String>,
    secret: Option<crate::webhook::standard::Secret>,
}

#[async_trait::async_trait(?Send)]
impl HandOff for FetchHandOff {
    async fn hand_off(&self, event: &PaymentEvent) -> std::result::Result<(), EdgeError> {
        let (Some(url), Some(secret)) = (&self.url, &self.secret) else {
            return Err(EdgeError::Unavailable("the issuer hand-off is not configured".into()));
        };
        let body = event.to_json();
        let id = format!("payment:{}:{}", event.payment_id, json!(event.kind).as_str().unwrap_or("event"));
        let ts = now().timestamp();
        let headers = Headers::new();
        let unavailable = |e: worker::Error| EdgeError::Unavailable(format!("hand-off: {e}"));
        headers.set("content-type", "application/json").map_err(unavailable)?;
        headers.set("webhook-id", &id).map_err(unavailable)?;
        headers.set("webhook-timestamp", &ts.to_string()).map_err(unavailable)?;
        headers.set("webhook-signature", &secret.sign(&id, ts, &body)).map_err(unavailable)?;
        let mut init = RequestInit::new();
        let body = String::from_utf8(body).map_err(|e| EdgeError::Internal(e.to_string()))?;
        init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
        let req = Request::new_with_init(url, &init).map_err(unavailable)?;
        let resp = worker::Fetch::Request(req).send().await.map_err(unavailable)?;
        if (200..300).contains(&resp.status_code()) {
            Ok(())
        } else {
            Err(EdgeError::Unavailable(format!("issuer answered {}", resp.status_code())))
        }
    }
}

/// PortOne V2 payment look-ups over `fetch`.
struct FetchLookup {
    base: String,
    secret: Option<promo_shared::secret::SecretString>,
}

#[async_trait::async_trait(?Send)]
impl PaymentLookup for FetchLookup {
    async fn portone_payment(&self, payment_id: &PaymentId) -> std::result::Result<Option<PortOnePayment>, EdgeError> {
        let Some(secret) = &self.secret else {
            return Err(EdgeError::Unavailable(
                "PortOne look-ups are not configured (PROMO_PORTONE_API_SECRET)".into(),
            ));
        };
        let unavailable = |e: worker::Error| EdgeError::Unavailable(format!("PortOne API: {e}"));
        let headers = Headers::new();
        headers.set("authorization", &format!("PortOne {}", secret.expose())).map_err(unavailable)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get).with_headers(headers);
        let url = format!("{}/payments/{}", self.base, http::encode_path_segment(payment_id.as_str()));
        let req = Request::new_with_init(&url, &init).map_err(unavailable)?;
        let mut resp = worker::Fetch::Request(req).send().await.map_err(unavailable)?;
        match resp.status_code() {
            404 => Ok(None),
            200..=299 => resp.json::<PortOnePayment>().await.map(Some).map_err(unavailable),
            s => Err(EdgeError::Unavailable(format!("PortOne API answered {s}"))),
        }
    }
}

const KV_BINDING: &str = "PROMO_KV";
/// Cache API keys live under this made-up origin: never fetched, only a cache namespace.
const PRICE_CACHE_ORIGIN: &str = "https://price-cache.promo.internal";

fn price_policy(env: &Env) -> CachePolicy {
    let seconds = |name: &str, default: i64| {
        env.var(name).ok().and_then(|v| v.to_string().trim().parse::<i64>().ok()).filter(|n| *n >= 0).unwrap_or(default)
    };
    CachePolicy {
        ttl: chrono::Duration::seconds(seconds("PROMO_PRICE_CACHE_TTL_SECONDS", 60).max(1)),
        stale: chrono::Duration::seconds(seconds("PROMO_PRICE_CACHE_STALE_SECONDS", 300)),
    }
}

/// A product page's price: public reads from the Cache API (recomputed from KV on a miss,
/// revalidated after the response when stale); tokened reads passed to the API Lambda
/// (`PROMO_API_URL`), which knows the shopper's coupons and mileage, and never cached.
async fn price_read(
    env: &Env,
    ctx: &Context,
    req: &http::Request,
    product: &str,
) -> std::result::Result<http::Response, EdgeError> {
    if req.method != "GET" && req.method != "HEAD" {
        return Err(EdgeError::MethodNotAllowed { method: req.method.clone(), allow: "GET" });
    }
    if let Some(auth) = req.header_values("authorization").next() {
        return personal_read(env, req, auth).await;
    }
    let catalog = KvCatalog::new(env)?;
    let policy = price_policy(env);
    let read = prices::read(&catalog, &EdgeCache, req, product, None, now(), policy).await?;
    if read.revalidate.is_some() {
        let (env, product) = (env.clone(), product.to_string());
        ctx.wait_until(async move {
            if let Ok(catalog) = KvCatalog::new(&env) {
                prices::refresh(&catalog, &EdgeCache, &product, now(), policy).await;
            }
        });
    }
    Ok(read.response)
}

async fn personal_read(env: &Env, req: &http::Request, auth: &str) -> std::result::Result<http::Response, EdgeError> {
    let base = env.var("PROMO_API_URL").map(|v| v.to_string()).unwrap_or_default();
    if base.is_empty() {
        return Err(EdgeError::Unavailable("personal prices need PROMO_API_URL (the API Lambda)".into()));
    }
    let unavailable = |e: worker::Error| EdgeError::Unavailable(format!("API: {e}"));
    let headers = Headers::new();
    headers.set("authorization", auth).map_err(unavailable)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let url = format!("{}{}", base.trim_end_matches('/'), req.path);
    let upstream = Request::new_with_init(&url, &init).map_err(unavailable)?;
    let mut resp = worker::Fetch::Request(upstream).send().await.map_err(unavailable)?;
    let status = resp.status_code();
    let body = resp.bytes().await.map_err(unavailable)?;
    let mut out = http::Response { status, headers: vec![], body };
    for (k, v) in resp.headers().entries() {
        let k = k.to_ascii_lowercase();
        if k == "content-type" || k == "etag" || k == "www-authenticate" {
            out.headers.push((k, v));
        }
    }
    // Whatever the upstream said: a personal answer is never stored by a shared cache.
    out.headers.push(("cache-control".into(), "private, no-store".into()));
    Ok(out)
}

/// Products (`product:<id>`) and the price book (`price-book`) in KV, as JSON.
struct KvCatalog {
    kv: worker::kv::KvStore,
}

impl KvCatalog {
    fn new(env: &Env) -> std::result::Result<KvCatalog, EdgeError> {
        Ok(KvCatalog { kv: env.kv(KV_BINDING).map_err(|e| EdgeError::Internal(format!("KV binding: {e}")))? })
    }
}

#[async_trait::async_trait(?Send)]
impl Catalog for KvCatalog {
    async fn product(
        &self,
        id: &str,
    ) -> std::result::Result<Option<promo_shared::price_book::CatalogProduct>, EdgeError> {
        self.kv
            .get(&format!("product:{id}"))
            .json()
            .await
            .map_err(|e| EdgeError::Unavailable(format!("KV product {id}: {e}")))
    }

    async fn price_book(&self) -> std::result::Result<std::sync::Arc<promo_shared::price_book::PriceBook>, EdgeError> {
        let book = self
            .kv
            .get(promo_shared::price_book::PRICE_BOOK_KV_KEY)
            .json()
            .await
            .map_err(|e| EdgeError::Unavailable(format!("KV price book: {e}")))?;
        Ok(std::sync::Arc::new(
            book.unwrap_or(promo_shared::price_book::PriceBook { rounding_unit: 1, ..Default::default() }),
        ))
    }
}

/// Public answers in the Cache API, each kept until its `stale_until`.
struct EdgeCache;

#[async_trait::async_trait(?Send)]
impl PriceCache for EdgeCache {
    async fn get(&self, key: &str) -> Option<CachedPrice> {
        let mut resp = worker::Cache::default().get(format!("{PRICE_CACHE_ORIGIN}/{key}"), true).await.ok()??;
        resp.json::<CachedPrice>().await.ok()
    }

    async fn put(&self, key: &str, entry: CachedPrice) {
        let keep = entry.stale_until - now().timestamp();
        if keep <= 0 {
            return;
        }
        let Ok(resp) = Response::from_json(&entry) else { return };
        let headers = Headers::new();
        if headers.set("content-type", "application/json").is_err()
            || headers.set("cache-control", &format!("public, max-age={keep}")).is_err()
        {
            return;
        }
        let _ = worker::Cache::default().put(format!("{PRICE_CACHE_ORIGIN}/{key}"), resp.with_headers(headers)).await;
    }
}
