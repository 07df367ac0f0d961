//! What the provider tells after a send: bounces and complaints. Each adds the address to
//! the suppression list, and a campaign whose bounce rate passes 2 % or complaint rate
//! 0.08 % pauses its own email (measured once it has sent [`MIN_SAMPLE`] messages).

use chrono::{DateTime, Duration, Utc};

use crate::domain::email::EmailAddress;
use crate::domain::ids::CampaignId;
use crate::email::items::send::{self as item, SendState};
use crate::email::items::suppression::{self, Reason, Suppression};
use crate::email::send as email_send;
use crate::ports::clock::Clock;
use crate::ports::store::{Cond, Store, StoreError, TxOp, Update};

/// Bounces above this share of the sends pause the campaign's email (in basis points: 2 %).
pub const MAX_BOUNCE_BP: u64 = 200;
/// Complaints above this share pause it (0.08 % = 8 basis points).
pub const MAX_COMPLAINT_BP: u64 = 8;
/// Sends before the rates are judged (a first bounce is not 100 %).
pub const MIN_SAMPLE: u64 = 500;
/// How long a feedback event's marker is kept (SNS retries for far less).
pub const FEEDBACK_SEEN_DAYS: i64 = 14;

/// A bounce or complaint event, as the feedback Lambda parsed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feedback {
    pub kind: Reason,
    /// Only permanent bounces suppress (a full mailbox is transient).
    pub permanent: bool,
    pub recipients: Vec<EmailAddress>,
    pub campaign: Option<CampaignId>,
    pub at: DateTime<Utc>,
    /// The event's identity (SES's `feedbackId`, else the notification's message id): a
    /// redelivered notification is counted once.
    pub id: Option<String>,
}

/// What recording an event did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    pub suppressed: usize,
    /// Set when this event paused the campaign's email.
    pub paused: Option<String>,
}

pub async fn record<S: Store + ?Sized>(store: &S, clock: &dyn Clock, f: &Feedback) -> Result<Recorded, StoreError> {
    let mut out = Recorded::default();
    if f.kind == Reason::Bounced && !f.permanent {
        return Ok(out);
    }
    for address in &f.recipients {
        let s = Suppression { reason: f.kind, at: f.at, campaign_id: f.campaign.clone(), user_id: None };
        store.put(suppression::to_item(address, &s)?, None).await?;
        out.suppressed += 1;
        tracing::info!(address = %address, reason = f.kind.as_str(), "address suppressed");
    }
    let Some(campaign) = &f.campaign else { return Ok(out) };
    let attr = if f.kind == Reason::Complained { "complained" } else { "bounced" };
    let n = i64::try_from(f.recipients.len()).unwrap_or(i64::MAX);
    let count =
        TxOp::Update { key: item::feedback_key(campaign), updates: vec![Update::Add(attr.into(), n)], cond: None };
    let mut ops = vec![count];
    match &f.id {
        // The event's marker and the count in one transaction: a redelivery finds the marker
        // and counts nothing.
        Some(id) => ops.push(TxOp::Put {
            item: item::feedback_seen(campaign, id, f.at + Duration::days(FEEDBACK_SEEN_DAYS)),
            cond: Some(Cond::NotExists),
        }),
        None => tracing::warn!(campaign = %campaign, "feedback event without an id: counted without de-duplication"),
    }
    match store.transact(ops, None).await {
        Ok(()) => {}
        Err(StoreError::TransactionCancelled { .. }) => {
            tracing::info!(campaign = %campaign, "feedback event seen before: not counted again");
            return Ok(out);
        }
        Err(e) => return Err(e),
    }
    let it = store.get(&item::feedback_key(campaign)).await?.unwrap_or_default();
    let (sent, bounced, complained) = item::read_feedback(&it);
    let why = if sent < MIN_SAMPLE {
        None
    } else if bounced * 10_000 > sent * MAX_BOUNCE_BP {
        Some(format!("bounce rate {} passed 2 % ({bounced} of {sent})", percent(bounced, sent)))
    } else if complained * 10_000 > sent * MAX_COMPLAINT_BP {
        Some(format!("complaint rate {} passed 0.08 % ({complained} of {sent})", percent(complained, sent)))
    } else {
        None
    };
    if let Some(why) = why {
        match email_send::control(store, clock, campaign, SendState::Paused, Some(&why)).await {
            Ok(Some(_)) => {
                tracing::warn!(campaign = %campaign, %why, "campaign email paused itself");
                out.paused = Some(why);
            }
            Ok(None) | Err(email_send::SendError::Cancelled(_) | email_send::SendError::NotTriggered(_)) => {}
            Err(email_send::SendError::Store(e)) => return Err(e),
            Err(e) => tracing::warn!(campaign = %campaign, error = %e, "could not pause"),
        }
    }
    Ok(out)
}

/// `n / of` as a percentage with two decimals, in integers (`"2.35 %"`).
fn percent(n: u64, of: u64) -> String {
    let bp = n.saturating_mul(10_000) / of.max(1);
    format!("{}.{:02} %", bp / 100, bp % 100)
}
