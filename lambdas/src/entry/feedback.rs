//! The feedback Lambda: SES bounce and complaint events through SNS.

use promo_shared::ports::store::Store;
use serde_json::{Value, json};

use super::EntryError;

/// The feedback Lambda: SES bounce and complaint events through SNS. Each suppresses its
/// addresses and may pause its campaign's email; a record that is not an SES event is
/// logged and skipped (SNS retries a failed invocation, a malformed record never succeeds);
/// a store failure fails the invocation so SNS delivers it again.
pub async fn feedback<S: Store + ?Sized>(
    store: &S,
    clock: &dyn promo_shared::ports::clock::Clock,
    event: Value,
) -> Result<Value, EntryError> {
    let records = event.get("Records").and_then(Value::as_array).ok_or(EntryError::Unrecognised)?;
    let (mut suppressed, mut paused) = (0, Vec::new());
    for r in records {
        let Some(message) = r.pointer("/Sns/Message").and_then(Value::as_str) else {
            tracing::error!("an SNS record without a message: skipped");
            continue;
        };
        match crate::ses::events::parse(message, clock.now()) {
            Ok(Some(mut f)) => {
                // Without SES's feedback id, the notification's own id: SNS keeps it on redelivery.
                if f.id.is_none() {
                    f.id = r.pointer("/Sns/MessageId").and_then(Value::as_str).map(str::to_string);
                }
                let done = promo_shared::email::feedback::record(store, clock, &f)
                    .await
                    .map_err(|e| EntryError::Transient(e.to_string()))?;
                suppressed += done.suppressed;
                paused.extend(done.paused);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "not an SES event: skipped"),
        }
    }
    Ok(json!({"suppressed": suppressed, "paused": paused}))
}
