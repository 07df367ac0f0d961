//! Never twice: before a sender sends a campaign email to a recipient it claims the pair
//! (campaign, recipient) with a conditional create; only the claiming run may settle it, and
//! only once, to SENT (with the provider's message id), SKIPPED (unsubscribed, suppressed) or
//! FAILED (permanent, with the reason), or UNCERTAIN when the provider's answer may mean
//! "sent" (a timeout after the request went out, an unreadable answer, a 5xx). A claim never
//! settled — the process died between the claim and the provider's answer — counts as
//! uncertain too once its lease has passed. Uncertain recipients are reported, and never sent
//! again unless the marketer asks for it explicitly.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::domain::ids::{CampaignId, UserId};
use crate::email::items::audience::BUCKETS;
use crate::email::items::delivery::{self as item, Status};
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

/// Gives back a claim this run did not send (throttled, provider down); `false` when it is
/// not this run's unsettled claim.
pub async fn release<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    user: &UserId,
    run: &str,
) -> Result<bool, StoreError> {
    let (key, cond) = item::release(campaign, user, run);
    match store.delete(&key, Some(cond)).await {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The recipients whose send may or may not have gone out — claims older than the lease and
/// never settled, and claims settled UNCERTAIN — and those already requeued but not yet
/// claimed again.
pub async fn uncertain<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    now: DateTime<Utc>,
) -> Result<Vec<Uncertain>, StoreError> {
    let mut out = Vec::new();
    for b in 0..BUCKETS {
        for it in query_all(store, item::bucket_query(campaign, b)).await? {
            let due = match item::read(&it) {
                Some((Status::Claimed, Some(at))) => now - at >= LEASE,
                Some((Status::Uncertain | Status::Requeued, _)) => true,
                _ => false,
            };
            {
                if due {
                    let field = |n: &str| it.get(n).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                    let Ok(user) = UserId::parse(field("user_id")) else { continue };
                    out.push(Uncertain { user, run: field(item::RUN), claimed_at: field("claimed_at") });
                }
            }
        }
    }
    Ok(out)
}

/// An unsettled claim past its lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uncertain {
    pub user: UserId,
    pub run: String,
    pub claimed_at: String,
}

/// Requeues an uncertain claim so the recipient can be sent to again (the marketer's explicit
/// `resend --uncertain`); `false` when it changed meanwhile (settled or claimed anew). An
/// already requeued record stays requeued.
pub async fn requeue<S: Store + ?Sized>(store: &S, campaign: &CampaignId, u: &Uncertain) -> Result<bool, StoreError> {
    let (key, updates, cond) = item::requeue(campaign, &u.user, &u.run, &u.claimed_at);
    let cond = crate::ports::store::Cond::Or(vec![cond, crate::ports::store::Cond::eq(item::STATUS, "REQUEUED")]);
    match store.update(&key, &updates, Some(cond)).await {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A campaign's deliveries by state at `now`: `sent`, `skipped`, `failed`, `in_flight`
/// (claimed within the lease), `uncertain` (settled UNCERTAIN, or claimed longer ago and never
/// settled) and `requeued`
/// (uncertain ones the marketer chose to send again, waiting for a sender).
pub async fn counts<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    now: DateTime<Utc>,
) -> Result<BTreeMap<&'static str, u64>, StoreError> {
    let mut out: BTreeMap<&'static str, u64> =
        ["sent", "skipped", "failed", "in_flight", "uncertain", "requeued"].into_iter().map(|k| (k, 0)).collect();
    // The buckets are read in parallel: a status of a million recipients reads them all.
    let pages =
        futures::future::try_join_all((0..BUCKETS).map(|b| query_all(store, item::bucket_query(campaign, b)))).await?;
    for items in pages {
        for it in items {
            let name = match item::read(&it) {
                Some((Status::Sent, _)) => "sent",
                Some((Status::Skipped, _)) => "skipped",
                Some((Status::Failed, _)) => "failed",
                Some((Status::Claimed, Some(at))) if now - at < LEASE => "in_flight",
                Some((Status::Requeued, _)) => "requeued",
                Some((Status::Uncertain, _)) => "uncertain",
                _ => "uncertain",
            };
            *out.entry(name).or_default() += 1;
        }
    }
    Ok(out)
}
