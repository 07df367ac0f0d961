//! The RabbitMQ adapter of the [`Queue`] port (AMQP 0-9-1 through `lapin` 4), for the
//! campaign email fan-out's durable queue (flow 4).
//!
//! # Topology (declared lazily, once per queue and connection)
//!
//! For a work queue `q`, all on the default exchange `""`, all durable:
//!
//! | queue | arguments | role |
//! | --- | --- | --- |
//! | `q` | `x-dead-letter-exchange: ""`, `x-dead-letter-routing-key: q.dead` | the work queue |
//! | `q.dead` | — | dead letters: rejected messages and those out of attempts |
//! | `q.retry.<B>ms` | `x-dead-letter-exchange: ""`, `x-dead-letter-routing-key: q` | delayed retries |
//!
//! # Guarantees
//!
//! * **Publish** returns only after the broker's publisher confirm: the publish channel is in
//!   confirm mode, messages are persistent (`delivery_mode` 2) on durable queues and
//!   `mandatory`, so a broker `nack` or an unroutable return is an error
//!   ([`QueueError::Unavailable`]). `publish_batch` pipelines its messages and then waits
//!   for every confirm.
//! * **Receive** reads from one consumer per queue and handle, on its own channel with
//!   `basic_qos(prefetch)`: it waits up to `wait` for the first delivery, then takes what
//!   is already buffered, up to `max`. Prefetched messages stay unacked (invisible to other
//!   consumers) until this handle receives them or its connection closes.
//! * **Ack / reject** go by delivery tag: the receipt is `<subscription>:<delivery tag>`,
//!   where the subscription number names the consumer channel the message came on. A
//!   receipt whose channel is gone (reconnect, channel error) is stale: the broker has
//!   already put that message back, so ack/nack/reject of it are no-ops (as a stale lease
//!   in the embedded queue). `reject` is `basic.reject(requeue = false)`, which the
//!   broker dead-letters to `q.dead`.
//! * **A consumer crash** (connection closed with unacked messages) makes the broker
//!   requeue them with the `redelivered` flag.
//!
//! # Attempts and `nack(retry_in)` without plugins
//!
//! The attempt number travels in the message header `promo-attempt` (absent = 1). A
//! delivery's attempt is that header, plus one when the broker flags it `redelivered`
//! (a crashed consumer had it): RabbitMQ's classic queues do not count redeliveries, so a
//! message redelivered after a crash counts as *at least* one more attempt.
//!
//! `nack(d, retry_in)` with `d.attempt < max_attempts` publishes a copy of the body, with
//! `promo-attempt = d.attempt + 1` and the per-message `expiration = retry_in` (ms), to a
//! retry queue, waits for its confirm, then acks the original. When the copy expires the
//! retry queue dead-letters it back to `q` (the broker drops the `expiration` property on
//! dead-lettering). Per-message TTLs only expire at the head of a queue, so one retry queue
//! for all delays would hold a short retry behind a long one; the retry queues are therefore
//! bucketed by powers of two (`B` = `retry_in` rounded up to a power of two, in ms), so a
//! retry waits at least `retry_in` and at most about twice it, with at most ~40 retry
//! queues per work queue. A crash between the copy's confirm and the original's ack
//! delivers the message twice (at-least-once, as everywhere). `nack` on the last attempt
//! (`d.attempt >= max_attempts`) rejects it instead, so it goes to `q.dead`.
//!
//! # Connections
//!
//! One AMQP connection per [`RabbitQueue`] (lapin's auto-recovery is off): when it is
//! found closed (broker restart, network), the next call reconnects and re-declares;
//! errors of the connection or a channel map to [`QueueError::Unavailable`], so callers
//! retry. Dropping the handle closes its connection (as a crashed process would).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer};
use promo_shared::ports::queue::Delivery;
use promo_shared::ports::queue::Queue;
use promo_shared::ports::queue::QueueError;
use tokio::sync::Mutex;

/// The header that carries a message's attempt number (absent on the first attempt).
pub const ATTEMPT_HEADER: &str = "promo-attempt";
/// Longest work-queue name: room is left for the `.retry.<B>ms` / `.dead` suffixes within
/// AMQP's 255-byte short strings.
pub const MAX_QUEUE_NAME: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RabbitConfig {
    /// Deliveries before a nacked message is dead-lettered.
    pub max_attempts: u32,
    /// Unacked messages the broker pushes ahead to one consumer (per queue and handle).
    pub prefetch: u16,
}

impl Default for RabbitConfig {
    fn default() -> Self {
        RabbitConfig { max_attempts: 5, prefetch: 50 }
    }
}

/// A handle to RabbitMQ implementing the [`Queue`] port; see the module doc.
pub struct RabbitQueue {
    url: String,
    config: RabbitConfig,
    idle_expiry: Option<Duration>,
    link: Mutex<Link>,
    subscriptions: Mutex<HashMap<String, Arc<Subscription>>>,
}

/// The connection and what is tied to it.
#[derive(Default)]
struct Link {
    conn: Option<Arc<Connection>>,
    /// Bumped on every (re)connect: subscriptions of older epochs are dead.
    epoch: u64,
    /// The confirm-mode channel used for publishing and declaring.
    publisher: Option<Channel>,
    /// Queues declared on this connection.
    declared: HashSet<String>,
}

/// One consumer (on its own channel) of one queue.
struct Subscription {
    id: u64,
    epoch: u64,
    channel: Channel,
    consumer: Mutex<Consumer>,
}

impl std::fmt::Debug for RabbitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitQueue").field("config", &self.config).finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

fn short(s: &str) -> Result<ShortString, QueueError> {
    ShortString::try_new(s).map_err(|e| QueueError::Invalid(e.to_string()))
}

fn check_name(queue: &str) -> Result<(), QueueError> {
    if queue.is_empty() {
        return Err(QueueError::Invalid("queue name is empty".into()));
    }
    if queue.len() > MAX_QUEUE_NAME {
        return Err(QueueError::Invalid(format!("queue name is longer than {MAX_QUEUE_NAME} bytes")));
    }
    if queue.starts_with("amq.") {
        return Err(QueueError::Invalid("queue names starting with \"amq.\" are reserved".into()));
    }
    Ok(())
}

/// The dead-letter queue of a work queue.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dead")
}

/// The retry queue holding a work queue's messages nacked with this `retry_in`.
pub fn retry_queue(queue: &str, retry_in: Duration) -> String {
    format!("{queue}.retry.{}ms", retry_bucket_ms(retry_in))
}

/// `retry_in` in ms rounded up to a power of two (at least 1 ms, at most 2^40 ms ≈ 35 years).
fn retry_bucket_ms(retry_in: Duration) -> u64 {
    let ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX).clamp(1, 1 << 40);
    ms.next_power_of_two()
}

fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1)
}

fn header_u32(v: &AMQPValue) -> Option<u32> {
    match v {
        AMQPValue::ShortShortUInt(n) => Some(u32::from(*n)),
        AMQPValue::ShortUInt(n) => Some(u32::from(*n)),
        AMQPValue::LongUInt(n) => Some(*n),
        AMQPValue::ShortShortInt(n) => u32::try_from(*n).ok(),
        AMQPValue::ShortInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
        _ => None,
    }
}

/// The attempt of a delivery: the attempt header (1 when absent), plus one when the broker
/// redelivers it after a consumer died holding it.
fn attempt_of(d: &AmqpDelivery) -> u32 {
    let header = d
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPT_HEADER))
        .and_then(header_u32)
        .unwrap_or(1)
        .max(1);
    header.saturating_add(u32::from(d.redelivered))
}

fn parse_receipt(d: &Delivery) -> Result<(u64, u64), QueueError> {
    let bad = || QueueError::Invalid(format!("not a RabbitMQ receipt: {:?}", d.receipt));
    let (sub, tag) = d.receipt.split_once(':').ok_or_else(bad)?;
    Ok((sub.parse().map_err(|_| bad())?, tag.parse().map_err(|_| bad())?))
}

/// Subscription ids are unique in the process, so a receipt never matches another
/// handle's channel by accident.
fn next_subscription_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn persistent(attempt: u32) -> BasicProperties {
    let props = BasicProperties::default().with_delivery_mode(2).with_content_type("application/octet-stream".into());
    if attempt > 1 {
        let mut headers = FieldTable::default();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(attempt));
        props.with_headers(headers)
    } else {
        props
    }
}

async fn wait_confirm(confirm: lapin::PublisherConfirm) -> Result<(), QueueError> {
    match confirm.await.map_err(unavailable)? {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(ret)) => Err(QueueError::Unavailable(format!(
            "message returned by the broker: {} {}",
            ret.reply_code, ret.reply_text
        ))),
        Confirmation::Nack(_) => Err(QueueError::Unavailable("the broker nacked the message".into())),
        Confirmation::NotRequested => Err(QueueError::Unavailable("publisher confirms are not enabled".into())),
    }
}

impl RabbitQueue {
    /// Connects to `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`; `amqps://` for TLS).
    pub async fn connect(url: &str, config: RabbitConfig) -> Result<RabbitQueue, QueueError> {
        if config.max_attempts == 0 || config.prefetch == 0 {
            return Err(QueueError::Invalid("max_attempts and prefetch must be at least 1".into()));
        }
        let q = RabbitQueue {
            url: url.to_string(),
            config,
            idle_expiry: None,
            link: Mutex::new(Link::default()),
            subscriptions: Mutex::new(HashMap::new()),
        };
        q.link.lock().await.connection(&q.url).await?;
        Ok(q)
    }

    /// Declares every queue this handle creates with `x-expires`, so the broker deletes it
    /// (messages included) once unused for that long. For tests and throwaway
    /// environments only; it must be set the same way by every handle.
    pub fn with_idle_queue_expiry(mut self, after: Duration) -> RabbitQueue {
        self.idle_expiry = Some(after);
        self
    }

    pub fn config(&self) -> RabbitConfig {
        self.config
    }

    /// Closes the connection (unacked messages go back to their queues).
    pub async fn close(&self) {
        self.subscriptions.lock().await.clear();
        let mut link = self.link.lock().await;
        link.publisher = None;
        if let Some(conn) = link.conn.take()
            && conn.status().connected()
        {
            let _ = conn.close(200, "bye".into()).await;
        }
    }

    /// Messages ready in a queue (not counting those delivered and unacked).
    pub async fn depth(&self, queue: &str) -> Result<u32, QueueError> {
        check_name(queue)?;
        let (_, conn, _) = self.prepare(queue, None).await?;
        // A passive declare on a channel of its own: an error closes only that channel.
        let ch = conn.create_channel().await.map_err(unavailable)?;
        let q = ch
            .queue_declare(short(queue)?, QueueDeclareOptions::durable().passive(), FieldTable::default())
            .await
            .map_err(unavailable)?;
        let _ = ch.close(200, "OK".into()).await;
        Ok(q.message_count())
    }

    /// Dead letters waiting in a queue's `q.dead`.
    pub async fn dead_letter_depth(&self, queue: &str) -> Result<u32, QueueError> {
        check_name(queue)?;
        self.prepare(queue, None).await?;
        self.depth_of_declared(&dead_letter_queue(queue)).await
    }

    async fn depth_of_declared(&self, name: &str) -> Result<u32, QueueError> {
        let (_, conn, _) = self.connected().await?;
        let ch = conn.create_channel().await.map_err(unavailable)?;
        let q = ch
            .queue_declare(short(name)?, QueueDeclareOptions::durable().passive(), FieldTable::default())
            .await
            .map_err(unavailable)?;
        let _ = ch.close(200, "OK".into()).await;
        Ok(q.message_count())
    }

    /// Moves every dead letter of a queue back to it as a first attempt; returns how many.
    /// Each is republished (confirmed) before it is acked off `q.dead`.
    pub async fn replay_dead_letters(&self, queue: &str) -> Result<usize, QueueError> {
        check_name(queue)?;
        let (publisher, conn, _) = self.prepare(queue, None).await?;
        let ch = conn.create_channel().await.map_err(unavailable)?;
        let dead = short(&dead_letter_queue(queue))?;
        let mut n = 0;
        while let Some(msg) =
            ch.basic_get(dead.clone(), BasicGetOptions { no_ack: false }).await.map_err(unavailable)?
        {
            let confirm = publisher
                .basic_publish(
                    "".into(),
                    short(queue)?,
                    BasicPublishOptions { mandatory: true, immediate: false },
                    &msg.delivery.data,
                    persistent(1),
                )
                .await
                .map_err(unavailable)?;
            wait_confirm(confirm).await?;
            ch.basic_ack(msg.delivery.delivery_tag, BasicAckOptions::default()).await.map_err(unavailable)?;
            n += 1;
        }
        let _ = ch.close(200, "OK".into()).await;
        Ok(n)
    }

    async fn connected(&self) -> Result<(Channel, Arc<Connection>, u64), QueueError> {
        let mut link = self.link.lock().await;
        let conn = link.connection(&self.url).await?;
        let publisher = link.publisher().await?;
        Ok((publisher, conn, link.epoch))
    }

    /// Connects if needed and declares `queue`'s topology (and a retry bucket) once per
    /// connection; returns the publish channel, the connection and its epoch.
    async fn prepare(
        &self,
        queue: &str,
        retry_in: Option<Duration>,
    ) -> Result<(Channel, Arc<Connection>, u64), QueueError> {
        let mut link = self.link.lock().await;
        let conn = link.connection(&self.url).await?;
        let publisher = link.publisher().await?;
        let result = async {
            if !link.declared.contains(queue) {
                self.declare_work_queue(&publisher, queue).await?;
                link.declared.insert(queue.to_string());
            }
            if let Some(retry_in) = retry_in {
                let name = retry_queue(queue, retry_in);
                if !link.declared.contains(&name) {
                    self.declare_retry_queue(&publisher, queue, &name, retry_in).await?;
                    link.declared.insert(name);
                }
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            // A failed declare (e.g. a queue declared elsewhere with other arguments)
            // closes the channel: start from a new one next time.
            link.publisher = None;
        }
        result.map(|()| (publisher, conn, link.epoch))
    }

    fn expiry_args(&self, args: &mut FieldTable, at_least: Duration) {
        if let Some(after) = self.idle_expiry {
            args.insert("x-expires".into(), AMQPValue::LongInt(millis_i32(after.max(at_least))));
        }
    }

    async fn declare_work_queue(&self, ch: &Channel, queue: &str) -> Result<(), QueueError> {
        let dead = dead_letter_queue(queue);
        let mut dead_args = FieldTable::default();
        self.expiry_args(&mut dead_args, Duration::ZERO);
        ch.queue_declare(short(&dead)?, QueueDeclareOptions::durable(), dead_args).await.map_err(unavailable)?;
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(dead.as_str().into()));
        self.expiry_args(&mut args, Duration::ZERO);
        ch.queue_declare(short(queue)?, QueueDeclareOptions::durable(), args).await.map_err(unavailable)?;
        Ok(())
    }

    async fn declare_retry_queue(
        &self,
        ch: &Channel,
        queue: &str,
        name: &str,
        retry_in: Duration,
    ) -> Result<(), QueueError> {
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(queue.into()));
        // An idle retry queue must outlive the messages it holds.
        let bucket = Duration::from_millis(retry_bucket_ms(retry_in));
        self.expiry_args(&mut args, bucket.saturating_mul(2).saturating_add(Duration::from_secs(60)));
        ch.queue_declare(short(name)?, QueueDeclareOptions::durable(), args).await.map_err(unavailable)?;
        Ok(())
    }

    /// The live consumer of `queue` on this handle, started (qos, consume) when needed.
    async fn subscription(&self, queue: &str) -> Result<Arc<Subscription>, QueueError> {
        let (_, conn, epoch) = self.prepare(queue, None).await?;
        let mut subs = self.subscriptions.lock().await;
        if let Some(sub) = subs.get(queue)
            && sub.epoch == epoch
            && sub.channel.status().connected()
        {
            return Ok(sub.clone());
        }
        let channel = conn.create_channel().await.map_err(unavailable)?;
        channel.basic_qos(self.config.prefetch, BasicQosOptions { global: false }).await.map_err(unavailable)?;
        let consumer = channel
            .basic_consume(short(queue)?, "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .map_err(unavailable)?;
        let sub = Arc::new(Subscription { id: next_subscription_id(), epoch, channel, consumer: Mutex::new(consumer) });
        subs.insert(queue.to_string(), sub.clone());
        Ok(sub)
    }

    async fn drop_subscription(&self, queue: &str, id: u64) {
        let mut subs = self.subscriptions.lock().await;
        if subs.get(queue).is_some_and(|s| s.id == id) {
            subs.remove(queue);
        }
    }

    /// The subscription a receipt came from, or `None` when it is stale (its channel is
    /// gone and the broker has put the message back).
    async fn owner(&self, queue: &str, delivery: &Delivery) -> Result<Option<(Arc<Subscription>, u64)>, QueueError> {
        let (id, tag) = parse_receipt(delivery)?;
        let sub = self.subscriptions.lock().await.get(queue).cloned();
        match sub {
            Some(sub) if sub.id == id && sub.channel.status().connected() => Ok(Some((sub, tag))),
            _ => {
                tracing::warn!(queue, receipt = %delivery.receipt, "stale receipt: the message was already put back");
                Ok(None)
            }
        }
    }

    async fn publish_with(&self, queue: &str, bodies: &[Vec<u8>]) -> Result<(), QueueError> {
        check_name(queue)?;
        if bodies.is_empty() {
            return Ok(());
        }
        let (publisher, _, _) = self.prepare(queue, None).await?;
        let routing_key = short(queue)?;
        // Pipelined: send a window of messages, then wait for all their confirms.
        for window in bodies.chunks(1000) {
            let mut confirms = Vec::with_capacity(window.len());
            for body in window {
                let confirm = publisher
                    .basic_publish(
                        "".into(),
                        routing_key.clone(),
                        BasicPublishOptions { mandatory: true, immediate: false },
                        body,
                        persistent(1),
                    )
                    .await
                    .map_err(unavailable)?;
                confirms.push(confirm);
            }
            let mut first_error = None;
            for confirm in confirms {
                if let Err(e) = wait_confirm(confirm).await {
                    first_error.get_or_insert(e);
                }
            }
            if let Some(e) = first_error {
                // The queue may have been deleted under us: declare it again next time.
                self.link.lock().await.declared.remove(queue);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Publishes the delivery's copy to the retry queue of `retry_in` (it comes back to
    /// `queue` when its TTL expires) as attempt `next_attempt`, confirmed, then acks it.
    async fn retry_later(
        &self,
        queue: &str,
        delivery: &Delivery,
        retry_in: Duration,
        next_attempt: u32,
    ) -> Result<(), QueueError> {
        let Some((sub, tag)) = self.owner(queue, delivery).await? else {
            return Ok(());
        };
        let (publisher, _, _) = self.prepare(queue, Some(retry_in)).await?;
        let expiration = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX).min(1 << 40);
        let props = persistent(next_attempt).with_expiration(expiration.to_string().into());
        let confirm = publisher
            .basic_publish(
                "".into(),
                short(&retry_queue(queue, retry_in))?,
                BasicPublishOptions { mandatory: true, immediate: false },
                &delivery.body,
                props,
            )
            .await
            .map_err(unavailable)?;
        if let Err(e) = wait_confirm(confirm).await {
            self.link.lock().await.declared.remove(&retry_queue(queue, retry_in));
            return Err(e);
        }
        sub.channel.basic_ack(tag, BasicAckOptions::default()).await.map_err(unavailable)
    }

    async fn reject_to_dead_letters(&self, queue: &str, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let Some((sub, tag)) = self.owner(queue, delivery).await? else {
            return Ok(());
        };
        tracing::info!(queue, attempt = delivery.attempt, reason, "dead-lettering a message");
        sub.channel.basic_reject(tag, BasicRejectOptions { requeue: false }).await.map_err(unavailable)
    }
}

impl Link {
    async fn connection(&mut self, url: &str) -> Result<Arc<Connection>, QueueError> {
        if let Some(conn) = &self.conn
            && conn.status().connected()
        {
            return Ok(conn.clone());
        }
        let props = ConnectionProperties::default().with_connection_name("promo-queue".into());
        let conn = Arc::new(Connection::connect(url, props).await.map_err(unavailable)?);
        self.conn = Some(conn.clone());
        self.epoch += 1;
        self.publisher = None;
        self.declared.clear();
        Ok(conn)
    }

    async fn publisher(&mut self) -> Result<Channel, QueueError> {
        if let Some(ch) = &self.publisher
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let conn = self.conn.as_ref().ok_or_else(|| QueueError::Unavailable("not connected".into()))?;
        let ch = conn.create_channel().await.map_err(unavailable)?;
        ch.confirm_select(ConfirmSelectOptions::default()).await.map_err(unavailable)?;
        self.publisher = Some(ch.clone());
        Ok(ch)
    }
}

impl Drop for RabbitQueue {
    fn drop(&mut self) {
        self.subscriptions.get_mut().clear();
        let link = self.link.get_mut();
        link.publisher = None;
        if let Some(conn) = link.conn.take()
            && conn.status().connected()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = conn.close(200, "bye".into()).await;
            });
        }
    }
}

#[async_trait]
impl Queue for RabbitQueue {
    async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), QueueError> {
        self.publish_with(queue, &[body.to_vec()]).await
    }

    async fn publish_batch(&self, queue: &str, bodies: &[Vec<u8>]) -> Result<(), QueueError> {
        self.publish_with(queue, bodies).await
    }

    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        check_name(queue)?;
        if max == 0 {
            return Ok(vec![]);
        }
        let sub = self.subscription(queue).await?;
        let mut consumer = sub.consumer.lock().await;
        let first = match tokio::time::timeout(wait, consumer.next()).await {
            Err(_) => return Ok(vec![]),
            Ok(Some(Ok(d))) => d,
            Ok(Some(Err(e))) => {
                drop(consumer);
                self.drop_subscription(queue, sub.id).await;
                return Err(unavailable(e));
            }
            Ok(None) => {
                drop(consumer);
                self.drop_subscription(queue, sub.id).await;
                return Err(QueueError::Unavailable(format!("the consumer of {queue} was cancelled")));
            }
        };
        let mut out = Vec::with_capacity(max.min(usize::from(self.config.prefetch)));
        let mut next = Some(first);
        while let Some(d) = next.take() {
            out.push(Delivery {
                receipt: format!("{}:{}", sub.id, d.delivery_tag),
                attempt: attempt_of(&d),
                body: d.data,
            });
            if out.len() < max
                && let Some(Some(Ok(d))) = consumer.next().now_or_never()
            {
                next = Some(d);
            }
        }
        Ok(out)
    }

    async fn ack(&self, queue: &str, delivery: &Delivery) -> Result<(), QueueError> {
        let Some((sub, tag)) = self.owner(queue, delivery).await? else {
            return Ok(());
        };
        sub.channel.basic_ack(tag, BasicAckOptions::default()).await.map_err(unavailable)
    }

    async fn nack(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        if delivery.attempt >= self.config.max_attempts {
            let reason = format!("failed {} deliveries", delivery.attempt);
            return self.reject_to_dead_letters(queue, delivery, &reason).await;
        }
        self.retry_later(queue, delivery, retry_in, delivery.attempt.saturating_add(1)).await
    }

    /// Through the same delayed retry queue as a nack, keeping the attempt it had.
    async fn defer(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        self.retry_later(queue, delivery, retry_in, delivery.attempt.max(1)).await
    }

    async fn reject(&self, queue: &str, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        self.reject_to_dead_letters(queue, delivery, reason).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_buckets_are_powers_of_two_at_least_the_delay() {
        assert_eq!(retry_bucket_ms(Duration::ZERO), 1);
        assert_eq!(retry_bucket_ms(Duration::from_millis(1000)), 1024);
        assert_eq!(retry_bucket_ms(Duration::from_millis(1024)), 1024);
        assert_eq!(retry_bucket_ms(Duration::from_millis(1025)), 2048);
        assert_eq!(retry_bucket_ms(Duration::from_secs(u64::MAX)), 1 << 40);
        assert_eq!(retry_queue("q", Duration::from_secs(3)), "q.retry.4096ms");
        assert_eq!(dead_letter_queue("q"), "q.dead");
    }

    #[test]
    fn queue_names_are_checked() {
        assert!(check_name("emails").is_ok());
        assert!(matches!(check_name(""), Err(QueueError::Invalid(_))));
        assert!(matches!(check_name("amq.x"), Err(QueueError::Invalid(_))));
        assert!(matches!(check_name(&"x".repeat(MAX_QUEUE_NAME + 1)), Err(QueueError::Invalid(_))));
    }

    #[test]
    fn receipts_parse() {
        let d = Delivery { receipt: "7:42".into(), body: vec![], attempt: 1 };
        assert_eq!(parse_receipt(&d), Ok((7, 42)));
        let bad = Delivery { receipt: "7-42".into(), ..d };
        assert!(matches!(parse_receipt(&bad), Err(QueueError::Invalid(_))));
    }
}
