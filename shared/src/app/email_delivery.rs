//! Never twice: before a sender sends a campaign email to a recipient it claims the pair
//! (campaign, recipient) with a conditional create; only the claiming run may settle it, and
//! only once, to SENT (with the provider's message id), SKIPPED (unsubscribed, suppressed) or
//! FAILED (permanent, with the reason). A claim never settled — the process died between the
//! claim and the provider's answer — is UNCERTAIN once its lease has passed: reported, and
//! never sent again unless the marketer asks for it explicitly.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::domain::ids::{CampaignId, UserId};
use crate::items::audience::BUCKETS;
use crate::items::email_delivery::{self as item, Status};
use crate::ports::store::{Store, StoreError, query_all};

/// How long a claim may stay unsettled before it counts as UNCERTAIN: longer than any send.
pub const LEASE: Duration = Duration::minutes(5);

/// What claiming a recipient gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This run owns the send.
    Claimed,
    /// Someone claimed it before: do not send.
    Taken(Status),
}

pub async fn claim<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    user: &UserId,
    run: &str,
    now: DateTime<Utc>,
) -> Result<Claim, StoreError> {
    let (key, updates, cond) = item::claim(campaign, user, run, now);
    match store.update(&key, &updates, Some(cond)).await {
        Ok(_) => Ok(Claim::Claimed),
        Err(StoreError::ConditionFailed { found }) => {
            let status = found.as_ref().and_then(item::read).map_or(Status::Claimed, |(s, _)| s);
            Ok(Claim::Taken(status))
        }
        Err(e) => Err(e),
    }
}

/// Records how a claimed send went; `false` when this run does not own the claim (nothing
/// written).
pub async fn settle<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    user: &UserId,
    run: &str,
    status: Status,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (key, updates, cond) = item::settle(campaign, user, run, status, detail, now);
    match store.update(&key, &updates, Some(cond)).await {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A campaign's deliveries by state at `now`: `sent`, `skipped`, `failed`, `in_flight`
/// (claimed within the lease) and `uncertain` (claimed longer ago, never settled).
pub async fn counts<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    now: DateTime<Utc>,
) -> Result<BTreeMap<&'static str, u64>, StoreError> {
    let mut out: BTreeMap<&'static str, u64> =
        ["sent", "skipped", "failed", "in_flight", "uncertain"].into_iter().map(|k| (k, 0)).collect();
    for b in 0..BUCKETS {
        for it in query_all(store, item::bucket_query(campaign, b)).await? {
            let name = match item::read(&it) {
                Some((Status::Sent, _)) => "sent",
                Some((Status::Skipped, _)) => "skipped",
                Some((Status::Failed, _)) => "failed",
                Some((Status::Claimed, Some(at))) if now - at < LEASE => "in_flight",
                _ => "uncertain",
            };
            *out.entry(name).or_default() += 1;
        }
    }
    Ok(out)
}
