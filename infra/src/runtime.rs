//! The local runtime: the whole platform in one process on embedded adapters. The edge's
//! routes are served natively, the Lambda handlers consume the embedded queue in-process,
//! and the schedule is a timer. Shutdown stops accepting requests, lets in-flight work
//! finish, and leaves anything unprocessed in the durable queue for the next start.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::serve::IncomingStream;
use promo_lambdas::auth::ShopperAuth;
use promo_shared::claims::Claimer;
use promo_shared::claims::sell_out::Republisher;
use promo_shared::config::EdgeConfig;
use promo_shared::email::sender::{self as email_sender, EMAIL_JOBS_QUEUE, Sender, SenderConfig};
use promo_shared::http::ApiError;
use promo_shared::idempotency::IdempotencyConfig;
use promo_shared::payments::gateway::PAYMENT_EVENTS_QUEUE;
use promo_shared::payments::handlers;
use promo_shared::payments::issuer::Issuer;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::ids::IdGen;
use promo_shared::ports::mail::{SendRate, Unlimited};
use promo_shared::ports::queue::{Delivery, Queue};
use promo_shared::ports::store::Store;
use promo_shared::retry::backoff;
use promo_shared::serve::api::Api;
use promo_shared::serve::edge::Edge;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::embedded::ledger::{QueueHandOff, StoreLedger};
use crate::embedded::memo_catalog::MemoCatalog;
use crate::embedded::shopper_api::InProcessApi;
use crate::embedded::{
    BoundedPriceCache, KeyedLimits, OsIds, OutboxMailer, QueueConfig, SqliteQueue, SqliteStore, SystemClock,
};
use crate::http_client::ReqwestClient;
use promo_shared::payments::portone::PortOneApi;

/// Every adapter and handler of the local platform, opened on one data directory.
pub struct Platform {
    pub data_dir: PathBuf,
    pub store: Arc<SqliteStore>,
    pub queue: Arc<SqliteQueue>,
    pub mailer: Arc<OutboxMailer>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    /// The public routes, as the Worker serves them.
    pub edge: Arc<Edge>,
    /// The shoppers' routes, as the API Lambda serves them.
    pub api: Arc<Api<Arc<SqliteStore>>>,
    pub issuer: Issuer<Arc<SqliteStore>>,
    /// Max-benefit price settings, and the bounded cache of public answers.
    pub prices: crate::config::PriceSettings,
    pub price_cache: Arc<BoundedPriceCache>,
    /// Campaign email: the sender Lambda's handler, in process, and its settings.
    pub sender: Arc<Sender>,
    pub email: crate::config::EmailSettings,
}

impl Platform {
    /// One tick of the limited events' scheduler, as the scheduler Lambda runs it.
    pub async fn tick_events(
        &self,
    ) -> Result<promo_shared::events::scheduler::TickReport, promo_shared::events::EventError> {
        use promo_shared::events::scheduler::{Budget, Notices, tick};
        let events = promo_shared::events::Events::new(&*self.store, &*self.clock, &*self.ids);
        let notices = Notices { mailer: &*self.mailer, from: self.email.events_from.clone() };
        tick(&events, Some(&notices), Budget::default()).await
    }
}

/// Opens the store of a data directory (for CLI commands that need nothing else).
pub fn open_store(data_dir: &Path) -> anyhow::Result<Arc<SqliteStore>> {
    open_store_at(data_dir, Arc::new(SystemClock))
}

/// Opens the store of a data directory, reading time from `clock`.
fn open_store_at(data_dir: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<SqliteStore>> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let path = data_dir.join("store.db");
    let store = SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Arc::new(store.with_clock(clock)))
}

impl Platform {
    pub fn open(data_dir: &Path, edge_config: EdgeConfig) -> anyhow::Result<Platform> {
        Self::open_with(data_dir, edge_config, Arc::new(SystemClock), Arc::new(OsIds))
    }

    pub fn open_with(
        data_dir: &Path,
        edge_config: EdgeConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
    ) -> anyhow::Result<Platform> {
        let (auth, _) = crate::config::shopper_auth(true)?;
        Self::assemble(data_dir, edge_config, clock, ids, auth)
    }

    /// Verifies shopper tokens with this secret instead of the configured one.
    pub fn with_shopper_secret(self, secret: &str) -> anyhow::Result<Platform> {
        let config = self.edge.config.clone();
        let (data_dir, clock, ids) = (self.data_dir.clone(), self.clock.clone(), self.ids.clone());
        drop(self);
        Self::assemble(&data_dir, config, clock, ids, ShopperAuth::new(secret.as_bytes())?)
    }

    fn assemble(
        data_dir: &Path,
        config: EdgeConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        auth: ShopperAuth,
    ) -> anyhow::Result<Platform> {
        let store = open_store_at(data_dir, clock.clone())?;
        let queue_path = data_dir.join("queue.db");
        let queue = Arc::new(
            SqliteQueue::open(&queue_path, QueueConfig::default())
                .with_context(|| format!("opening {}", queue_path.display()))?
                .with_clock(clock.clone()),
        );
        let mailer = Arc::new(OutboxMailer::open(&data_dir.join("outbox")).context("opening the outbox")?);
        let issuer = Issuer::new(store.clone(), clock.clone(), ids.clone());
        // A sell-out rebuilds the store's price book, which this runtime serves product pages
        // from (the Lambda also writes the edge's KV).
        let republisher = Arc::new(Republisher::new(store.clone(), clock.clone(), None));
        let claimer = Claimer::new(store.clone(), clock.clone(), ids.clone()).with_sold_out_hook(republisher);
        let email = crate::config::email_settings(true)?;
        let api = Arc::new(Api::new(claimer, auth).with_unsubscribe(email.keys.clone()));
        let prices = crate::config::price_settings()?;
        let price_cache = Arc::new(BoundedPriceCache::new(prices.cache_entries));
        let sender = Arc::new(Sender {
            store: store.clone(),
            mailer: mailer.clone(),
            rate: send_rate(email.rate)?,
            clock: clock.clone(),
            ids: ids.clone(),
            keys: email.keys.clone(),
            config: SenderConfig { unsubscribe_url: email.unsubscribe_url.clone(), ..SenderConfig::default() },
        });
        let edge = Edge {
            ledger: Box::new(StoreLedger {
                store: store.clone(),
                config: IdempotencyConfig::default(),
                ids: ids.clone(),
            }),
            handoff: Box::new(QueueHandOff { queue: queue.clone() }),
            lookup: Box::new(PortOneApi::new(
                &config.portone_api_base,
                config.portone_api_secret.clone(),
                ReqwestClient::new(std::time::Duration::from_secs(10)),
            )),
            limiter: Box::new(KeyedLimits::per_minute(
                config.callback_limit_per_client,
                config.callback_limit_per_payment,
            )),
            catalog: Arc::new(MemoCatalog::new(store.clone(), clock.clone(), Duration::from_secs(1))),
            cache: price_cache.clone(),
            shoppers: Box::new(InProcessApi(api.clone())),
            prices: config.prices,
            config,
        };
        Ok(Platform {
            data_dir: data_dir.to_path_buf(),
            store,
            queue,
            mailer,
            clock,
            ids,
            edge: Arc::new(edge),
            api,
            issuer,
            prices,
            price_cache,
            sender,
            email,
        })
    }
}

/// The account's send rate shared by this process's senders; `None`: no limit.
pub fn send_rate(rate: Option<f64>) -> anyhow::Result<Arc<dyn SendRate>> {
    match rate {
        None => Ok(Arc::new(Unlimited)),
        Some(r) => Ok(Arc::new(promo_lambdas::ses::send_rate::RateWindow::per_second(r)?)),
    }
}

#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Period of the schedule timer.
    pub tick: Duration,
    /// Concurrent consumers of the payment event queue (0: accept and queue only).
    pub consumers: usize,
    /// Concurrent senders of campaign email jobs (0: queue only).
    pub email_consumers: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { tick: Duration::from_secs(60), consumers: 2, email_consumers: 2 }
    }
}

/// A running platform; [`Running::shutdown`] stops it gracefully.
pub struct Running {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    workers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting requests, finishes in-flight requests and messages, and returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for server in self.servers {
            server.await.context("server thread")?.context("server")?;
        }
        for w in self.workers {
            w.await.context("worker task")?;
        }
        Ok(())
    }
}

/// Binds `listen` and starts the HTTP server, the queue consumers and the schedule timer.
///
/// The server runs as nginx does: one thread per core, each with its own single-threaded
/// runtime and its own listening socket on the same address (`SO_REUSEPORT`; the kernel
/// spreads connections over them), so a request is read, answered and written on one
/// thread, without waking another.
pub async fn start(platform: Arc<Platform>, listen: SocketAddr, opts: RunOptions) -> anyhow::Result<Running> {
    start_with(platform, listen, opts, Router::new()).await
}

/// [`start`], with `extra`'s routes served before the platform's (`promoctl dev`'s stand-ins
/// and demo shop).
pub async fn start_with(
    platform: Arc<Platform>,
    listen: SocketAddr,
    opts: RunOptions,
    extra: Router,
) -> anyhow::Result<Running> {
    let first = reuse_port_listener(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = first.local_addr()?;
    // Without SO_REUSEPORT (not unix) one socket, one thread.
    let threads =
        if cfg!(unix) { std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) } else { 1 };
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(reuse_port_listener(addr).with_context(|| format!("cannot listen on {addr}"))?);
    }
    let (stop, stopped) = watch::channel(false);

    let app = extra.merge(Router::new().fallback(serve).with_state(platform.clone()));
    let mut servers = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let (app, platform, mut on_stop) = (app.clone(), platform.clone(), stopped.clone());
        servers.push(tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                // Each connection: a ready price answered ahead of the router, the rest routed.
                let connections = tower::service_fn(move |stream: IncomingStream<'_, tokio::net::TcpListener>| {
                    let conn = ReadyFirst { app: app.clone(), platform: platform.clone(), peer: *stream.remote_addr() };
                    std::future::ready(Ok::<_, Infallible>(conn))
                });
                axum::serve(listener, connections)
                    .with_graceful_shutdown(async move {
                        let _ = on_stop.wait_for(|s| *s).await;
                    })
                    .await
            })
        }));
    }

    let mut workers = Vec::new();
    for n in 0..opts.consumers {
        workers.push(tokio::spawn(consume_payment_events(platform.clone(), stopped.clone(), n)));
    }
    for n in 0..opts.email_consumers {
        workers.push(tokio::spawn(consume_email_jobs(platform.clone(), stopped.clone(), n)));
    }
    workers.push(tokio::spawn(schedule(platform.clone(), stopped.clone(), opts.tick)));
    tracing::info!(%addr, data_dir = %platform.data_dir.display(), "platform running");
    Ok(Running { addr, stop, servers, workers })
}

/// A non-blocking listener on `addr` that other sockets may share (`SO_REUSEPORT`).
fn reuse_port_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}

/// The same thin converter as the Worker's entry: the request into the core's, served by the
/// edge application (which passes the shoppers' routes to the API in process), the answer
/// back; a stale price answer is recomputed in the background.
async fn serve(
    State(platform): State<Arc<Platform>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let (mut parts, body) = req.into_parts();
    let limit = platform.edge.config.max_body_bytes;
    // One id per request, as the Worker takes Cloudflare's ray id: the caller's, else a new
    // one. An answer that fails before the request is whole names it too.
    if !parts.headers.contains_key("x-request-id")
        && let Ok(id) = HeaderValue::from_str(new_request_id(&mut uuid::Uuid::encode_buffer()))
    {
        parts.headers.insert("x-request-id", id);
    }
    let request_id =
        parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or_default();
    let resp = match received(&parts, body, limit, peer).await {
        Err(e) => e.respond(Some(request_id.as_str()).filter(|id| promo_shared::http::plausible_request_id(id))),
        Ok(req) => {
            let served = platform.edge.respond(&req, platform.clock.now()).await;
            if let Some(line) = &served.webhook {
                tracing::info!(target: "promo::metrics", "{line}");
            }
            if let Some(product) = served.refresh {
                let platform = platform.clone();
                tokio::spawn(async move { platform.edge.refresh(&product, platform.clock.now()).await });
            }
            served.response
        }
    };
    tracing::info!(
        method = %parts.method, path = %logged_path(parts.uri.path()), status = resp.status,
        micros = started.elapsed().as_micros() as u64, "request"
    );
    to_axum(resp)
}

/// One connection's service: a fresh public price read answered from the cache's ready entry
/// before any routing ([`ready_price`]), everything else through the router (with the peer's
/// address, as `into_make_service_with_connect_info` gives it).
#[derive(Clone)]
struct ReadyFirst {
    app: Router,
    platform: Arc<Platform>,
    peer: SocketAddr,
}

impl tower::Service<axum::extract::Request> for ReadyFirst {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::extract::Request) -> Self::Future {
        let (platform, mut app, peer) = (self.platform.clone(), self.app.clone(), self.peer);
        Box::pin(async move {
            let started = std::time::Instant::now();
            let (parts, body) = req.into_parts();
            if let Some(resp) = ready_price(&platform, &parts).await {
                tracing::info!(
                    method = %parts.method, path = %parts.uri.path(), status = resp.status().as_u16(),
                    micros = started.elapsed().as_micros() as u64, "request"
                );
                return Ok(resp);
            }
            let mut req = axum::extract::Request::from_parts(parts, body);
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            tower::Service::call(&mut app, req).await
        })
    }
}

/// A fresh public price answer written from the cache's ready entry (stored bytes and header
/// values, nothing recomputed or copied), for a request the edge says may be answered so
/// ([`Edge::plain_public_price`]): the same answer `Edge::respond` gives a `HIT`, headers
/// and their order included. Anything else (`None`) takes the whole pipeline.
async fn ready_price(platform: &Platform, parts: &axum::http::request::Parts) -> Option<axum::response::Response> {
    use promo_shared::pricing::prices::{self, Freshness};
    // The request's few headers, looked at by name (no hashing).
    let has = |name: &str| parts.headers.keys().any(|k| k.as_str() == name);
    let product = Edge::plain_public_price(parts.method.as_str(), parts.uri.path(), parts.uri.query(), has)?;
    // A header value that is not valid is the pipeline's 400.
    if parts.headers.values().any(|v| v.to_str().is_err()) {
        return None;
    }
    let key = platform.edge.public_price_key(product).await?;
    let entry = platform.price_cache.ready(&key)?;
    let now_s = platform.clock.now().timestamp();
    if prices::freshness(&entry.price, now_s) != Freshness::Fresh {
        return None;
    }
    let mut out = axum::response::Response::new(Body::from(entry.body.clone()));
    *out.headers_mut() = entry.hit_headers(now_s)?;
    // The caller's id when it is plausible (none when it is not), else a new one.
    let x_request_id = HeaderName::from_static("x-request-id");
    match parts.headers.iter().find(|(k, _)| **k == x_request_id) {
        Some((_, id)) if id.to_str().is_ok_and(promo_shared::http::plausible_request_id) => {
            out.headers_mut().append(x_request_id, id.clone());
        }
        Some(_) => {}
        None => {
            let id = HeaderValue::from_str(new_request_id(&mut uuid::Uuid::encode_buffer())).ok()?;
            out.headers_mut().append(x_request_id, id);
        }
    }
    Some(out)
}

/// A new request id, as the Worker takes Cloudflare's ray id: a UUIDv7 (the time in
/// milliseconds, then random bits) written into `buf`. The random bits come from a generator
/// of the thread, seeded once from the OS, not from a system call per request (an id is no
/// secret; it only has to be unique in the logs).
fn new_request_id(buf: &mut [u8; uuid::fmt::Urn::LENGTH]) -> &str {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default()));
    }
    // splitmix64
    let next = || {
        STATE.with(|s| {
            let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            s.set(x);
            let z = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    };
    let (a, b) = (next().to_le_bytes(), next().to_le_bytes());
    let random = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1]];
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid().hyphenated().encode_lower(buf)
}

/// A request's path as the logs show it: a shopper's id (`/v1/users/{id}/…`) masked.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    let Some(rest) = path.strip_prefix("/v1/users/") else { return path.into() };
    let (user, tail) = rest.split_once('/').map_or((rest, None), |(u, t)| (u, Some(t)));
    let user = promo_shared::domain::ids::UserId::parse(user).map_or_else(|_| "***".to_string(), |u| u.masked());
    match tail {
        Some(tail) => format!("/v1/users/{user}/{tail}").into(),
        None => format!("/v1/users/{user}").into(),
    }
}

/// The runtime-neutral request of what axum received: a header value that is not valid is a
/// 400 (never dropped), a body over the limit a 413, one that could not be read a 503.
async fn received(
    parts: &axum::http::request::Parts,
    body: Body,
    limit: usize,
    peer: SocketAddr,
) -> Result<promo_shared::http::Request, ApiError> {
    let mut headers = Vec::with_capacity(parts.headers.len());
    for (k, v) in &parts.headers {
        let v = v.to_str().map_err(|_| promo_shared::http::invalid_header(k.as_str()))?;
        headers.push((k.as_str().to_string(), v.to_string()));
    }
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) if is_over_limit(&e) => return Err(ApiError::PayloadTooLarge { limit }),
        Err(e) => Err(e),
    };
    promo_shared::http::Request::received(
        parts.method.as_str(),
        parts.uri.path(),
        headers,
        body,
        Some(peer.ip().to_string()),
    )
    .map(|r| r.with_query(parts.uri.query().unwrap_or("")))
}

fn is_over_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn to_axum(resp: promo_shared::http::Response) -> axum::response::Response {
    let mut out = axum::response::Response::new(Body::from(resp.body));
    *out.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in resp.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            out.headers_mut().append(k, v);
        }
    }
    out
}

/// The coupon issuer Lambda, in process: payment events from the queue.
async fn consume_payment_events(platform: Arc<Platform>, stopped: watch::Receiver<bool>, n: usize) {
    let queue = &platform.queue;
    while !*stopped.borrow() {
        // A short wait, not a select on `stopped`: cancelling a receive would strand the
        // messages it leased until their lease expires.
        let batch = match queue.receive(PAYMENT_EVENTS_QUEUE, 64, Duration::from_millis(500)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(consumer = n, error = %e, "receiving payment events failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // The batch's messages are handled concurrently: their store writes share commits.
        futures::future::join_all(
            batch
                .into_iter()
                .map(|delivery| settle_payment_event(&platform.issuer, &**queue, &*platform.ids, delivery, n)),
        )
        .await;
    }
}

/// The sender Lambda, in process: campaign email jobs from the queue, a few at once (each
/// is one bulk call; the rate is shared).
async fn consume_email_jobs(platform: Arc<Platform>, stopped: watch::Receiver<bool>, n: usize) {
    consume_email(&*platform.queue, EMAIL_JOBS_QUEUE, &platform.sender, stopped, n).await;
}

/// Consumes campaign email jobs from `queue`'s `name` with `sender` until `stopped`: a clean
/// stop finishes the jobs in hand (none is left UNCERTAIN).
pub async fn consume_email(queue: &dyn Queue, name: &str, sender: &Sender, stopped: watch::Receiver<bool>, n: usize) {
    while !*stopped.borrow() {
        let batch = match queue.receive(name, 4, Duration::from_millis(500)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(consumer = n, error = %e, "receiving email jobs failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        futures::future::join_all(batch.into_iter().map(|delivery| async move {
            let outcome = sender.handle(&delivery.body).await;
            if let Err(e) = email_sender::settle_delivery(queue, name, &delivery, &outcome).await {
                tracing::error!(consumer = n, error = %e, "settling an email job failed");
            }
        }))
        .await;
    }
}

/// Handles one payment event from the queue and settles its delivery: acked when handled,
/// given back after a jittered, growing delay on a retryable error (the queue dead-letters
/// it once out of attempts), dead-lettered at once when it can never succeed. `ids` draws
/// the jitter; `consumer` names the consumer in the logs.
pub async fn settle_payment_event<S: Store>(
    issuer: &Issuer<S>,
    queue: &dyn Queue,
    ids: &dyn IdGen,
    delivery: Delivery,
    consumer: usize,
) {
    let outcome = handlers::payment_event(issuer, &delivery.body).await;
    let settled = match outcome {
        Ok(outcome) => {
            tracing::debug!(
                consumer,
                rewards = outcome.rewards.len(),
                revocations = outcome.revocations.len(),
                "payment event handled"
            );
            queue.ack(PAYMENT_EVENTS_QUEUE, &delivery).await
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(consumer, attempt = delivery.attempt, error = %e, "payment event will be retried");
            queue.nack(PAYMENT_EVENTS_QUEUE, &delivery, redelivery_delay(delivery.attempt, ids.random_u64())).await
        }
        Err(e) => {
            tracing::error!(consumer, error = %e, "payment event dead-lettered");
            queue.reject(PAYMENT_EVENTS_QUEUE, &delivery, &e.to_string()).await
        }
    };
    if let Err(e) = settled {
        // The lease expires and the message comes back: nothing is lost.
        tracing::error!(consumer, error = %e, "settling a payment event failed");
    }
}

/// How long a payment event that failed retryably waits before its next delivery: full
/// jitter under a ceiling of 200 ms doubled per attempt, capped at a minute.
pub fn redelivery_delay(attempt: u32, random: u64) -> Duration {
    backoff(attempt, Duration::from_millis(200), Duration::from_secs(60), random)
}

/// The schedule (EventBridge every minute, in production): TTL sweeps, and the limited
/// events' tick (the scheduler Lambda's handler), its notices into the outbox.
async fn schedule(platform: Arc<Platform>, mut stopped: watch::Receiver<bool>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.changed() => return,
        }
        let now = platform.clock.now();
        match platform.store.purge_expired(now.timestamp()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired items deleted"),
            Err(e) => tracing::error!(error = %e, "TTL sweep failed"),
        }
        match platform.tick_events().await {
            Ok(r) if r.settled > 0 => tracing::info!(report = ?r, "events tick"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "events tick failed"),
        }
    }
}
