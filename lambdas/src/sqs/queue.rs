//! [`SqsQueue`]: the queue port on SQS (see the module above for its semantics).

use super::*;

/// How an [`SqsQueue`] uses its queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqsConfig {
    /// Deliveries before a nacked message goes to the dead-letter queue (also the
    /// `maxReceiveCount` of the queues it creates).
    pub max_attempts: u32,
    /// The lease of a received message: sent with every `ReceiveMessage` and set on the
    /// queues it creates (whole seconds, at least 1).
    pub visibility: Duration,
    /// Create a queue (and its dead-letter queue) on first use of an unknown name, instead
    /// of answering [`QueueError::Invalid`]: for tests and stand-ins.
    pub create_missing: bool,
}

/// A queue's URL and its dead-letter queue's.
#[derive(Clone, Debug)]
struct Urls {
    url: String,
    dlq_url: String,
}

/// The SQS adapter of the [`Queue`] port (see the module docs).
pub struct SqsQueue {
    client: Client,
    config: SqsConfig,
    urls: RwLock<HashMap<String, Urls>>,
}

impl SqsQueue {
    /// On the SDK's default configuration chain; `endpoint` for a stand-in. No queue is
    /// known yet: map them with [`SqsQueue::with_queue`] or set `create_missing`.
    pub async fn from_env(endpoint: Option<&str>, config: SqsConfig) -> SqsQueue {
        SqsQueue::new(Client::new(&sdk_config(endpoint).await), config)
    }

    /// On a client of the caller's.
    pub fn new(client: Client, config: SqsConfig) -> SqsQueue {
        SqsQueue { client, config, urls: RwLock::new(HashMap::new()) }
    }

    /// Maps the port queue `name` to the SQS queue at `url` and its dead-letter queue.
    pub fn with_queue(self, name: impl Into<String>, url: impl Into<String>, dlq_url: impl Into<String>) -> Self {
        self.urls
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.into(), Urls { url: url.into(), dlq_url: dlq_url.into() });
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn config(&self) -> &SqsConfig {
        &self.config
    }

    /// The URLs of the port queue `queue` and of its dead-letter queue (creating both first
    /// with `create_missing`).
    pub async fn queue_urls(&self, queue: &str) -> Result<(String, String), QueueError> {
        let urls = self.urls(queue).await?;
        Ok((urls.url, urls.dlq_url))
    }

    async fn urls(&self, queue: &str) -> Result<Urls, QueueError> {
        check_name(queue)?;
        if let Some(urls) = self.urls.read().unwrap_or_else(PoisonError::into_inner).get(queue) {
            return Ok(urls.clone());
        }
        if !self.config.create_missing {
            return Err(QueueError::Invalid(format!("no SQS queue is configured for queue {queue:?}")));
        }
        // Concurrent first uses both create: CreateQueue of an existing queue with the same
        // attributes answers its URL.
        let urls = self.create(queue).await?;
        self.urls.write().unwrap_or_else(PoisonError::into_inner).insert(queue.to_string(), urls.clone());
        Ok(urls)
    }

    /// Creates `<queue>-dead`, then `<queue>` redriving to it.
    async fn create(&self, queue: &str) -> Result<Urls, QueueError> {
        let dead = format!("{queue}-dead");
        let dlq_url = self
            .client
            .create_queue()
            .queue_name(&dead)
            .attributes(QueueAttributeName::MessageRetentionPeriod, DEAD_LETTER_RETENTION_SECONDS)
            .send()
            .await
            .map_err(|e| sdk_error("CreateQueue", &dead, e))?
            .queue_url
            .ok_or_else(|| QueueError::Unavailable(format!("SQS CreateQueue of {dead:?} answered no URL")))?;
        let dlq_arn = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error("GetQueueAttributes", &dead, e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| QueueError::Unavailable(format!("SQS GetQueueAttributes of {dead:?} answered no ARN")))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": self.config.max_attempts.clamp(1, 1000),
        });
        let visibility = ceil_seconds(self.config.visibility).clamp(1, MAX_VISIBILITY_SECONDS);
        let url = self
            .client
            .create_queue()
            .queue_name(queue)
            .attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string())
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(|e| sdk_error("CreateQueue", queue, e))?
            .queue_url
            .ok_or_else(|| QueueError::Unavailable(format!("SQS CreateQueue of {queue:?} answered no URL")))?;
        tracing::info!(queue, %url, %dlq_url, "created an SQS queue and its dead-letter queue");
        Ok(Urls { url, dlq_url })
    }

    /// The visibility timeout of a receive, in whole seconds.
    fn visibility_seconds(&self) -> i32 {
        seconds_i32(ceil_seconds(self.config.visibility).clamp(1, MAX_VISIBILITY_SECONDS))
    }

    /// Sends one message to `url` (the queue `queue` or its dead-letter queue).
    async fn send(
        &self,
        queue: &str,
        url: &str,
        body: &[u8],
        reason: Option<&str>,
        delay_seconds: u64,
    ) -> Result<(), QueueError> {
        let encoded = encode_body(body);
        let mut request = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(encoded.text)
            .set_message_attributes(message_attributes(encoded.encoding, reason)?);
        if delay_seconds > 0 {
            request = request.delay_seconds(seconds_i32(delay_seconds.min(MAX_DELAY_SECONDS)));
        }
        request.send().await.map_err(|e| sdk_error("SendMessage", queue, e))?;
        Ok(())
    }

    async fn delete(&self, queue: &str, url: &str, delivery: &Delivery) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(&delivery.receipt)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteMessage", queue, e))?;
        Ok(())
    }

    /// Sends the body to the dead-letter queue, then deletes the original.
    async fn dead_letter(&self, queue: &str, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let urls = self.urls(queue).await?;
        tracing::info!(queue, attempt = delivery.attempt, reason, "dead-lettering a message");
        self.send(queue, &urls.dlq_url, &delivery.body, Some(reason), 0).await?;
        self.delete(queue, &urls.url, delivery).await
    }
}

/// A delivery of an SQS message; `None` for one without a receipt handle.
fn delivery_of(queue: &str, m: Message) -> Option<Delivery> {
    let receipt = m.receipt_handle?;
    let attempt = m
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let encoding = m.message_attributes.as_ref().and_then(|a| a.get(ENCODING_ATTRIBUTE)).and_then(|a| a.string_value());
    let text = m.body.unwrap_or_default();
    let body = match decode_body(&text, encoding) {
        Ok(body) => body,
        Err(e) => {
            // Not sent by this adapter: its consumer sees the text as is (and rejects it).
            tracing::warn!(queue, message_id = ?m.message_id, error = %e, "undecodable SQS body: delivered as is");
            text.into_bytes()
        }
    };
    Some(Delivery { receipt, body, attempt })
}

/// Groups `bodies` into `SendMessageBatch` requests: up to [`BATCH_MAX`] entries and about
/// [`BATCH_MAX_BYTES`] each (a larger single message goes alone, and SQS judges it).
pub(super) fn batch_groups(bodies: &[Vec<u8>]) -> Result<Vec<Vec<SendMessageBatchRequestEntry>>, QueueError> {
    let mut groups = Vec::new();
    let mut group: Vec<SendMessageBatchRequestEntry> = Vec::new();
    let mut bytes = 0;
    for (i, body) in bodies.iter().enumerate() {
        let encoded = encode_body(body);
        let size = encoded.text.len() + 64;
        if group.len() == BATCH_MAX || (!group.is_empty() && bytes + size > BATCH_MAX_BYTES) {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += size;
        group.push(
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(encoded.text)
                .set_message_attributes(message_attributes(encoded.encoding, None)?)
                .build()
                .map_err(|e| QueueError::Invalid(format!("SendMessageBatch entry: {e}")))?,
        );
    }
    if !group.is_empty() {
        groups.push(group);
    }
    Ok(groups)
}

/// Sends one group; the entries SQS failed (not through the sender's fault) are resent once.
async fn send_group(
    client: Client,
    queue: String,
    url: String,
    mut entries: Vec<SendMessageBatchRequestEntry>,
) -> Result<(), QueueError> {
    for round in 0..2 {
        let sent = client
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries.clone()))
            .send()
            .await
            .map_err(|e| sdk_error("SendMessageBatch", &queue, e))?;
        let Some(first) = sent.failed.first() else {
            return Ok(());
        };
        let describe = || {
            format!(
                "SQS SendMessageBatch on queue {queue:?}: {} of {} messages failed, e.g. {}: {}",
                sent.failed.len(),
                entries.len(),
                first.code,
                first.message.as_deref().unwrap_or("")
            )
        };
        if let Some(fault) = sent.failed.iter().find(|f| f.sender_fault) {
            // A retry cannot fix what SQS refused.
            return Err(QueueError::Invalid(format!(
                "{} (refused: {}: {})",
                describe(),
                fault.code,
                fault.message.as_deref().unwrap_or("")
            )));
        }
        if round == 1 {
            return Err(QueueError::Unavailable(describe()));
        }
        let failed: HashSet<&str> = sent.failed.iter().map(|f| f.id.as_str()).collect();
        tracing::warn!(queue, failed = failed.len(), "SQS SendMessageBatch failed entries: resending them");
        entries.retain(|e| failed.contains(e.id()));
    }
    Ok(())
}

#[async_trait]
impl Queue for SqsQueue {
    async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), QueueError> {
        let urls = self.urls(queue).await?;
        self.send(queue, &urls.url, body, None, 0).await
    }

    async fn publish_batch(&self, queue: &str, bodies: &[Vec<u8>]) -> Result<(), QueueError> {
        check_name(queue)?;
        if bodies.is_empty() {
            return Ok(());
        }
        let urls = self.urls(queue).await?;
        let mut groups = batch_groups(bodies)?.into_iter();
        // Dropping the set (on an error) aborts the requests still in flight.
        let mut running = JoinSet::new();
        loop {
            while running.len() < BATCH_CONCURRENCY {
                let Some(group) = groups.next() else { break };
                running.spawn(send_group(self.client.clone(), queue.to_string(), urls.url.clone(), group));
            }
            match running.join_next().await {
                None => return Ok(()),
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => return Err(QueueError::Unavailable(format!("SQS SendMessageBatch task: {e}"))),
            }
        }
    }

    async fn receive(&self, queue: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        check_name(queue)?;
        if max == 0 {
            return Ok(vec![]);
        }
        let urls = self.urls(queue).await?;
        let max = i32::try_from(max.min(BATCH_MAX)).unwrap_or(1);
        // `None`: a wait too long for the clock, i.e. forever.
        let deadline = Instant::now().checked_add(wait);
        loop {
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
            let got = self
                .client
                .receive_message()
                .queue_url(&urls.url)
                .max_number_of_messages(max)
                .wait_time_seconds(seconds_i32(ceil_seconds(left).min(MAX_WAIT_SECONDS)))
                .visibility_timeout(self.visibility_seconds())
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| sdk_error("ReceiveMessage", queue, e))?;
            let deliveries: Vec<Delivery> =
                got.messages.unwrap_or_default().into_iter().filter_map(|m| delivery_of(queue, m)).collect();
            if !deliveries.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(deliveries);
            }
        }
    }

    async fn ack(&self, queue: &str, delivery: &Delivery) -> Result<(), QueueError> {
        let urls = self.urls(queue).await?;
        self.delete(queue, &urls.url, delivery).await
    }

    async fn nack(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        if delivery.attempt >= self.config.max_attempts {
            let reason = format!("failed {} deliveries", delivery.attempt);
            return self.dead_letter(queue, delivery, &reason).await;
        }
        let urls = self.urls(queue).await?;
        let result = self
            .client
            .change_message_visibility()
            .queue_url(&urls.url)
            .receipt_handle(&delivery.receipt)
            .visibility_timeout(seconds_i32(ceil_seconds(retry_in).min(MAX_VISIBILITY_SECONDS)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Its lease ran out: it is visible again already, which is what a nack asks.
            Err(e) if code_of(&e).is_some_and(|c| NOT_INFLIGHT_CODES.contains(&c)) => {
                tracing::warn!(queue, "nack of a message no longer in flight: it is back already");
                Ok(())
            }
            Err(e) => Err(sdk_error("ChangeMessageVisibility", queue, e)),
        }
    }

    async fn reject(&self, queue: &str, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        self.dead_letter(queue, delivery, reason).await
    }

    async fn defer(&self, queue: &str, delivery: &Delivery, retry_in: Duration) -> Result<(), QueueError> {
        let urls = self.urls(queue).await?;
        self.send(queue, &urls.url, &delivery.body, None, ceil_seconds(retry_in)).await?;
        self.delete(queue, &urls.url, delivery).await
    }
}
