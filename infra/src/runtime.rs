//! The local runtime: the whole platform in one process on embedded adapters. The edge's
//! routes are served natively, the Lambda handlers consume the embedded queue in-process,
//! and the schedule is a timer. Shutdown stops accepting requests, lets in-flight work
//! finish, and leaves anything unprocessed in the durable queue for the next start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use promo_edge::adapters::{PAYMENT_EVENTS_QUEUE, QueueHandOff, StoreLedger};
use promo_edge::{Edge, EdgeConfig, EdgeError};
use promo_lambdas::api::{self, Api};
use promo_lambdas::auth::ShopperAuth;
use promo_lambdas::catalog;
use promo_lambdas::claims::Claimer;
use promo_lambdas::handlers;
use promo_lambdas::issuer::Issuer;
use promo_lambdas::sell_out::Republisher;
use promo_shared::idempotency::IdempotencyConfig;
use promo_shared::ports::{Clock, Delivery, IdGen, Queue, backoff};
use promo_shared::store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::embedded::{OsIds, OutboxMailer, QueueConfig, SqliteQueue, SqliteStore, SystemClock};
use crate::portone::PortOneClient;

pub type LocalEdge =
    Edge<StoreLedger<Arc<SqliteStore>>, QueueHandOff<Arc<SqliteQueue>>, PortOneClient, crate::embedded::KeyedLimits>;

/// Every adapter and handler of the local platform, opened on one data directory.
pub struct Platform {
    pub data_dir: PathBuf,
    pub store: Arc<SqliteStore>,
    pub queue: Arc<SqliteQueue>,
    pub mailer: Arc<OutboxMailer>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub edge: LocalEdge,
    pub issuer: Issuer<Arc<SqliteStore>>,
    /// The shoppers' API (claims, wallet); its token secret comes from `config`.
    pub api: Api<Arc<SqliteStore>>,
    /// Max-benefit price reads: settings and the bounded cache of public answers.
    pub prices: crate::config::PriceSettings,
    pub price_cache: Arc<crate::embedded::BoundedPriceCache>,
    /// Products and the price book, kept in memory for a second between store reads.
    pub catalog: Arc<catalog::MemoCatalog<SqliteStore>>,
}

/// Opens the store of a data directory (for CLI commands that need nothing else).
pub fn open_store(data_dir: &Path) -> anyhow::Result<Arc<SqliteStore>> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let path = data_dir.join("store.db");
    Ok(Arc::new(SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?))
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
        let store = open_store(data_dir)?;
        let queue_path = data_dir.join("queue.db");
        let queue = Arc::new(
            SqliteQueue::open(&queue_path, QueueConfig::default())
                .with_context(|| format!("opening {}", queue_path.display()))?,
        );
        let mailer = Arc::new(OutboxMailer::open(&data_dir.join("outbox")).context("opening the outbox")?);
        let lookup = PortOneClient::new(&edge_config.portone_api_base, edge_config.portone_api_secret.clone());
        let limiter = crate::embedded::KeyedLimits::per_minute(
            edge_config.callback_limit_per_client,
            edge_config.callback_limit_per_payment,
        );
        let edge = Edge {
            lookup,
            limiter,
            config: edge_config,
            ledger: StoreLedger { store: store.clone(), config: IdempotencyConfig::default(), ids: ids.clone() },
            handoff: QueueHandOff { queue: queue.clone() },
        };
        let issuer = Issuer::new(store.clone(), clock.clone(), ids.clone());
        let (auth, _) = crate::config::shopper_auth(true)?;
        // A sell-out rebuilds the store's price book, which this runtime serves product pages
        // from (the Lambda also writes the edge's KV).
        let republisher = Arc::new(Republisher::new(store.clone(), clock.clone(), None));
        let claimer = Claimer::new(store.clone(), clock.clone(), ids.clone()).with_sold_out_hook(republisher);
        let api = Api::new(claimer, auth);
        let prices = crate::config::price_settings()?;
        let store_for_catalog = store.clone();
        let price_cache = Arc::new(crate::embedded::BoundedPriceCache::new(prices.cache_entries));
        Ok(Platform {
            data_dir: data_dir.to_path_buf(),
            store,
            queue,
            mailer,
            clock,
            ids,
            edge,
            issuer,
            api,
            prices,
            price_cache,
            catalog: Arc::new(catalog::MemoCatalog::new(store_for_catalog, Duration::from_secs(1))),
        })
    }

    /// Verifies shopper tokens with this secret instead of the configured one.
    pub fn with_shopper_secret(mut self, secret: &str) -> anyhow::Result<Platform> {
        self.api.auth = ShopperAuth::new(secret.as_bytes())?;
        Ok(self)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Period of the schedule timer.
    pub tick: Duration,
    /// Concurrent consumers of the payment event queue (0: accept and queue only).
    pub consumers: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { tick: Duration::from_secs(60), consumers: 2 }
    }
}

/// A running platform; [`Running::shutdown`] stops it gracefully.
pub struct Running {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting requests, finishes in-flight requests and messages, and returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.server.await.context("server task")?.context("server")?;
        for w in self.workers {
            w.await.context("worker task")?;
        }
        Ok(())
    }
}

/// Binds `listen` and starts the HTTP server, the queue consumers and the schedule timer.
pub async fn start(platform: Arc<Platform>, listen: SocketAddr, opts: RunOptions) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);

    let app = Router::new().fallback(edge_route).with_state(platform.clone());
    let mut on_stop = stopped.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = on_stop.wait_for(|s| *s).await;
            })
            .await
    });

    let mut workers = Vec::new();
    for n in 0..opts.consumers {
        workers.push(tokio::spawn(consume_payment_events(platform.clone(), stopped.clone(), n)));
    }
    workers.push(tokio::spawn(schedule(platform.clone(), stopped.clone(), opts.tick)));
    tracing::info!(%addr, data_dir = %platform.data_dir.display(), "platform running");
    Ok(Running { addr, stop, server, workers })
}

/// Serves the shoppers' API routes through its handlers and every other path through the
/// edge's router (the same code the Worker runs).
async fn edge_route(
    State(platform): State<Arc<Platform>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let limit = platform.edge.config.max_body_bytes;
    let resp = match received(parts.clone(), body, limit, peer).await {
        Err(e) => e.into_response(),
        Ok(req) => {
            if let Some(product) = promo_edge::prices::product_of(&req.path) {
                let product = product.to_string();
                price_read(&platform, &req, &product).await
            } else if api::handles(&req.path) {
                platform.api.handle(&req).await
            } else {
                platform.edge.handle(req, platform.clock.now()).await
            }
        }
    };
    tracing::info!(
        method = %parts.method, path = %parts.uri.path(), status = resp.status,
        micros = started.elapsed().as_micros() as u64, "request"
    );
    to_axum(resp)
}

/// The runtime-neutral request of what axum received: a header value that is not valid is a
/// 400 (never dropped), a body over the limit a 413, one that could not be read a 503.
async fn received(
    parts: axum::http::request::Parts,
    body: Body,
    limit: usize,
    peer: SocketAddr,
) -> Result<promo_edge::Request, EdgeError> {
    let mut headers = Vec::with_capacity(parts.headers.len());
    for (k, v) in &parts.headers {
        let v = v.to_str().map_err(|_| promo_edge::http::invalid_header(k.as_str()))?;
        headers.push((k.as_str().to_string(), v.to_string()));
    }
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) if is_over_limit(&e) => return Err(EdgeError::PayloadTooLarge { limit }),
        Err(e) => Err(e),
    };
    promo_edge::Request::received(parts.method.as_str(), parts.uri.path(), headers, body, Some(peer.ip().to_string()))
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

/// `GET /v1/products/{id}/max-benefit-price` ([`promo_edge::prices`]): public answers from
/// the bounded in-process cache, personal ones (a valid bearer token) computed every time.
async fn price_read(platform: &Arc<Platform>, req: &promo_edge::Request, product: &str) -> promo_edge::Response {
    let read = async {
        if req.method != "GET" && req.method != "HEAD" {
            return Err(EdgeError::MethodNotAllowed { method: req.method.clone(), allow: "GET" });
        }
        let now = platform.clock.now();
        let personal = if req.header_values("authorization").next().is_some() {
            let user = platform.api.shopper(req)?;
            Some(catalog::personal(&*platform.store, &user).await.map_err(|e| EdgeError::Unavailable(e.to_string()))?)
        } else {
            None
        };
        let source = &*platform.catalog;
        let policy = platform.prices.policy;
        let read =
            promo_edge::prices::read(source, &*platform.price_cache, req, product, personal.as_ref(), now, policy)
                .await?;
        if read.revalidate.is_some() {
            let (platform, product) = (platform.clone(), product.to_string());
            tokio::spawn(async move {
                let now = platform.clock.now();
                promo_edge::prices::refresh(&*platform.catalog, &*platform.price_cache, &product, now, policy).await;
            });
        }
        Ok(read.response)
    };
    read.await.unwrap_or_else(EdgeError::into_response)
}

fn to_axum(resp: promo_edge::Response) -> axum::response::Response {
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

/// The schedule (EventBridge every minute, in production): TTL sweeps, and the scheduled
/// transitions as they are added.
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
    }
}
