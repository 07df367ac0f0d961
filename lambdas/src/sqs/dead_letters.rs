//! Dead letters for operators: list a dead-letter queue without consuming it, and replay its
//! messages to their source queue.

use super::*;

#[derive(Debug, Error)]
pub enum SqsError {
    #[error("SQS {op}: {message}")]
    Call { op: &'static str, message: String },
    #[error("SQS {op}: {failed} of the batch failed: {first}")]
    Partial { op: &'static str, failed: usize, first: String },
}

fn call(op: &'static str) -> impl Fn(aws_sdk_sqs::Error) -> SqsError {
    move |e| SqsError::Call { op, message: DisplayErrorContext(e).to_string() }
}

/// A dead letter as listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    pub id: String,
    pub receives: u32,
    /// The body as SQS holds it (base64 for a binary one: see the module docs).
    pub body: String,
    /// Why it was dead-lettered ([`REASON_ATTRIBUTE`]), when [`SqsQueue`] moved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A dead-letter queue and the queue its messages came from.
pub struct DeadLetters {
    client: Client,
    dlq_url: String,
    source_url: String,
}

/// How long a listed message stays invisible: listing must see each message once, and the
/// messages must come back soon for the consumers of a replay.
const LIST_VISIBILITY_SECONDS: i32 = 20;

impl DeadLetters {
    /// The queues on the SDK's default configuration chain; `endpoint_url` for a stand-in.
    pub async fn from_env(dlq_url: String, source_url: String, endpoint_url: Option<&str>) -> DeadLetters {
        DeadLetters { client: Client::new(&sdk_config(endpoint_url).await), dlq_url, source_url }
    }

    /// Up to `max` messages of the dead-letter queue, each once (they become visible again
    /// after a few seconds: listing consumes nothing).
    pub async fn list(&self, max: usize) -> Result<Vec<DeadLetter>, SqsError> {
        let mut seen = BTreeMap::new();
        while seen.len() < max {
            let got = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(LIST_VISIBILITY_SECONDS)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names(REASON_ATTRIBUTE)
                .send()
                .await
                .map_err(|e| call("ReceiveMessage")(e.into()))?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let id = m.message_id.clone().unwrap_or_default();
                let receives = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let reason = m
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get(REASON_ATTRIBUTE))
                    .and_then(|a| a.string_value())
                    .map(str::to_string);
                seen.entry(id.clone()).or_insert(DeadLetter { id, receives, body: m.body.unwrap_or_default(), reason });
            }
        }
        Ok(seen.into_values().take(max).collect())
    }

    /// Moves every message back to the source queue; returns how many. A message keeps its
    /// message attributes (its body's encoding), but not its dead-lettering reason.
    pub async fn replay(&self) -> Result<usize, SqsError> {
        let mut moved = 0;
        loop {
            let got = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| call("ReceiveMessage")(e.into()))?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(moved);
            }
            let mut sends = Vec::with_capacity(messages.len());
            let mut deletes = Vec::with_capacity(messages.len());
            for (i, m) in messages.iter().enumerate() {
                let id = format!("m{i}");
                let attributes = m.message_attributes.clone().map(|mut a| {
                    a.remove(REASON_ATTRIBUTE);
                    a
                });
                sends.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(&id)
                        .message_body(m.body.clone().unwrap_or_default())
                        .set_message_attributes(attributes.filter(|a| !a.is_empty()))
                        .build()
                        .map_err(|e| SqsError::Call { op: "SendMessageBatch", message: e.to_string() })?,
                );
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(&id)
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .build()
                        .map_err(|e| SqsError::Call { op: "DeleteMessageBatch", message: e.to_string() })?,
                );
            }
            let sent = self
                .client
                .send_message_batch()
                .queue_url(&self.source_url)
                .set_entries(Some(sends))
                .send()
                .await
                .map_err(|e| call("SendMessageBatch")(e.into()))?;
            if let Some(first) = sent.failed.first() {
                // Nothing is deleted: the whole batch is tried again later (a duplicate at most).
                return Err(SqsError::Partial {
                    op: "SendMessageBatch",
                    failed: sent.failed.len(),
                    first: first.message.clone().unwrap_or_default(),
                });
            }
            let deleted = self
                .client
                .delete_message_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(deletes))
                .send()
                .await
                .map_err(|e| call("DeleteMessageBatch")(e.into()))?;
            moved += messages.len() - deleted.failed.len();
        }
    }
}
