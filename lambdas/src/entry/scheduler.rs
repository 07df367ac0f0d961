//! The events' scheduler, run by EventBridge every minute.

use promo_shared::ports::store::Store;
use serde_json::{Value, json};

use super::EntryError;

/// The events' scheduler (EventBridge, every minute): ticks until nothing due is left or
/// `deadline` (the invocation's remaining time less a margin) is reached — the rest stays in
/// the due index for the next run, never cut by a timeout midway. The payload is ignored:
/// a run does what is due at its own clock.
pub async fn scheduler<S: Store + ?Sized>(
    events: &promo_shared::events::Events<'_, S>,
    notices: Option<&promo_shared::events::scheduler::Notices<'_>>,
    deadline: chrono::DateTime<chrono::Utc>,
) -> Result<Value, EntryError> {
    use promo_shared::events::scheduler::{Budget, TickReport, tick};
    let mut total = TickReport::default();
    let mut ticks = 0;
    loop {
        let budget = Budget { items: 5_000, deadline: Some(deadline) };
        let r = tick(events, notices, budget).await.map_err(|e| EntryError::Transient(e.to_string()))?;
        ticks += 1;
        total.merge(&r);
        total.due_left = r.due_left;
        // A notice that failed waits for the next run; so does what the deadline left.
        if !r.due_left || r.settled == 0 || events.clock.now() >= deadline {
            break;
        }
    }
    tracing::info!(ticks, report = ?total, "scheduler run");
    let mut out = serde_json::to_value(&total).unwrap_or(Value::Null);
    out["ticks"] = json!(ticks);
    Ok(out)
}
