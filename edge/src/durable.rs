//! The delivery ledger at the edge: one Durable Object per delivery key (`id_from_name`), a
//! single-threaded, strongly consistent record run by [`crate::ledger::apply`]; an alarm
//! deletes it once it expires.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use promo_shared::app::idempotency::IdempotencyConfig;
use promo_shared::http::ApiError;
use promo_shared::items::idempotency::Record;
use promo_shared::ports::ledger::{DeliveryLedger, Recorded, Taken};
use serde_json::Value;
use worker::{
    DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response, Result, State, durable_object,
};

use crate::entry::now;
use crate::ledger::{LedgerCommand, LedgerReply, Write, apply};

/// The Worker's side: sends a command to the delivery's object.
pub struct DurableObjectLedger {
    pub namespace: ObjectNamespace,
}

impl DurableObjectLedger {
    async fn call(&self, key: &str, cmd: &LedgerCommand) -> std::result::Result<LedgerReply, ApiError> {
        let unavailable = |e: worker::Error| ApiError::Unavailable(format!("delivery ledger: {e}"));
        let stub = self.namespace.id_from_name(key).and_then(|id| id.get_stub()).map_err(unavailable)?;
        let body = serde_json::to_string(cmd).map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let req = Request::new_with_init("https://ledger/", &init).map_err(unavailable)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(unavailable)?;
        resp.json().await.map_err(unavailable)
    }
}

#[async_trait(?Send)]
impl DeliveryLedger for DurableObjectLedger {
    async fn begin(&self, key: &str, payload_hash: &str, now: DateTime<Utc>) -> std::result::Result<Taken, ApiError> {
        match self
            .call(key, &LedgerCommand::Begin { hash: payload_hash.into(), now_ms: now.timestamp_millis() })
            .await?
        {
            LedgerReply::Started { lease } => Ok(Taken::Run { lease }),
            LedgerReply::Completed { answer } => Ok(Taken::Replay(answer)),
            LedgerReply::Conflict => {
                Err(ApiError::Conflict("this delivery id was already used with a different body".into()))
            }
            LedgerReply::InProgress | LedgerReply::Done | LedgerReply::LeaseLost => {
                Err(ApiError::InProgress(key.into()))
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
    ) -> std::result::Result<Recorded, ApiError> {
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

    async fn release(&self, key: &str, lease: &str) -> std::result::Result<(), ApiError> {
        self.call(key, &LedgerCommand::Release { lease: lease.into() }).await.map(|_| ())
    }
}

/// A new lease token: unique per run of a delivery (the time, and randomness against two
/// takes in the same millisecond — which the object's single thread already excludes).
#[allow(clippy::float_arithmetic)] // scales JS's uniform draw in [0, 1) to an integer in [0, 2^53)
fn new_lease(now: DateTime<Utc>) -> String {
    let r = (worker::js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
    format!("{:x}-{r:x}", now.timestamp_millis())
}

/// The object: one per delivery key.
#[durable_object]
pub struct WebhookDedupe {
    state: State,
}

impl DurableObject for WebhookDedupe {
    fn new(state: State, _env: Env) -> Self {
        WebhookDedupe { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let cmd: LedgerCommand = req.json().await?;
        // A record of an older layout does not parse: it is treated as absent (at most a
        // replay answered afresh, which the issuer dedupes).
        let current: Option<Record> = storage.get("record").await.ok().flatten();
        let (reply, write) = apply(cmd, current.as_ref(), new_lease(now()), &IdempotencyConfig::default());
        match write {
            Write::Keep => {}
            Write::Put(record) => {
                storage.put("record", &record).await?;
                storage.set_alarm(record.expires_at.saturating_mul(1000)).await?;
            }
            Write::Delete => storage.delete_all().await?,
        }
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        // A record completed again since the alarm was set moved it; only an expired one goes.
        let current: Option<Record> = self.state.storage().get("record").await.ok().flatten();
        match current {
            Some(r) if r.expires_at > now().timestamp() => {
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
