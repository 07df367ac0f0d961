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
use crate::email::items::audience::{BUCKETS, bucket};
use crate::email::items::delivery::{self as item, Status};
use crate::email::items::tally;
use crate::ports::store::{Cond, ItemExt, Key, MAX_TX_OPS, Store, StoreError, TxOp, query_all};

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

/// Records (with their tally items) of one bucket per transaction: [`MAX_TX_OPS`] less the
/// bucket's `TALLY` and claim batch.
const TX_RECORDS: usize = MAX_TX_OPS - 2;
/// Transactions tried again when some of their records changed meanwhile (each retry drops
/// them) or another transaction touched the bucket's tallies at once (DynamoDB's conflict).
const TX_ATTEMPTS: usize = 8;

/// Claims one recipient (see [`claim_many`]).
pub async fn claim<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    user: &UserId,
    run: &str,
    now: DateTime<Utc>,
) -> Result<Claim, StoreError> {
    Ok(claim_many(store, campaign, std::slice::from_ref(user), run, now).await?[0])
}

/// Claims recipients for `run` at `now`, each only if nobody did before (or the marketer
/// requeued it), one transaction per bucket that creates the records and adds them to the
/// bucket's claim batch `(run, now)` (see `email::items::tally`). A record another run holds
/// is [`Claim::Taken`] and left out, as with a claim of its own. On an error nothing of the
/// failing bucket is claimed, and what other buckets claimed is given back.
pub async fn claim_many<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    users: &[UserId],
    run: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Claim>, StoreError> {
    let at = item::claimed_at(now);
    let mut out: Vec<Option<Claim>> = vec![None; users.len()];
    for (b, idx) in by_bucket(users) {
        for group in idx.chunks(TX_RECORDS) {
            if let Err(e) = claim_group(store, campaign, b, users, group, run, now, &mut out).await {
                let held: Vec<UserId> = users
                    .iter()
                    .zip(&out)
                    .filter(|(_, c)| **c == Some(Claim::Claimed))
                    .map(|(u, _)| u.clone())
                    .collect();
                let _ = release_many(store, campaign, run, &at, &held).await;
                return Err(e);
            }
        }
    }
    Ok(out.into_iter().map(|c| c.unwrap_or(Claim::Taken(Status::Claimed))).collect())
}

/// The positions of `users` by bucket, each user once (a repeat is left out: its first
/// position claims or settles it).
fn by_bucket(users: &[UserId]) -> BTreeMap<u32, Vec<usize>> {
    let mut m: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, u) in users.iter().enumerate() {
        if seen.insert(u) {
            m.entry(bucket(u)).or_default().push(i);
        }
    }
    m
}

#[allow(clippy::too_many_arguments)]
async fn claim_group<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    b: u32,
    users: &[UserId],
    group: &[usize],
    run: &str,
    now: DateTime<Utc>,
    out: &mut [Option<Claim>],
) -> Result<(), StoreError> {
    let at = item::claimed_at(now);
    // (index, whether the record is a REQUEUED one the claim takes over)
    let mut todo: Vec<(usize, bool)> = group.iter().map(|&i| (i, false)).collect();
    for _ in 0..TX_ATTEMPTS {
        if todo.is_empty() {
            return Ok(());
        }
        let requeued = todo.iter().filter(|(_, r)| *r).count() as i64;
        let mut ops = vec![
            TxOp::Update {
                key: tally::batch_key(campaign, b, run, &at),
                updates: tally::batch(run, &at, todo.len() as i64),
                cond: None,
            },
            TxOp::Update {
                key: tally::counts_key(campaign, b),
                updates: tally::count(&[(Status::Requeued, -requeued)]),
                cond: None,
            },
        ];
        for &(i, requeued) in &todo {
            let (key, updates, _) = item::claim(campaign, &users[i], run, now);
            let cond = if requeued { Cond::eq(item::STATUS, Status::Requeued.as_str()) } else { Cond::NotExists };
            ops.push(TxOp::Update { key, updates, cond: Some(cond) });
        }
        match store.transact(ops, None).await {
            Ok(()) => {
                for (i, _) in todo {
                    out[i] = Some(Claim::Claimed);
                }
                return Ok(());
            }
            Err(e @ StoreError::TransactionCancelled { .. }) => {
                let mut next = Vec::new();
                for (k, (i, requeued)) in todo.into_iter().enumerate() {
                    if !e.failed_at(k + 2) {
                        next.push((i, requeued));
                        continue;
                    }
                    match e.found_at(k + 2) {
                        None => next.push((i, false)),
                        Some(found) => match item::read(found) {
                            Some((Status::Requeued, _)) => next.push((i, true)),
                            Some((s, _)) => out[i] = Some(Claim::Taken(s)),
                            None => out[i] = Some(Claim::Taken(Status::Claimed)),
                        },
                    }
                }
                todo = next;
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable("claims kept conflicting".into()))
}

/// Records how a claimed send went; `false` when this run does not own the claim (nothing
/// written). Reads the record for its claim batch: the sender settles with
/// [`settle_many`], which knows it.
pub async fn settle<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    user: &UserId,
    run: &str,
    status: Status,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(at) = own_claim(store, campaign, user, run).await? else { return Ok(false) };
    Ok(settle_many(store, campaign, run, &at, &[(user.clone(), status, detail.to_string())], now).await?[0])
}

/// The claim time of `run`'s unsettled claim of `user`, if it holds one.
async fn own_claim<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    user: &UserId,
    run: &str,
) -> Result<Option<String>, StoreError> {
    let Some(it) = store.get(&item::key(campaign, user)).await? else { return Ok(None) };
    if it.str_attr(item::STATUS) != Some(Status::Claimed.as_str()) || it.str_attr(item::RUN) != Some(run) {
        return Ok(None);
    }
    Ok(it.str_attr(item::CLAIMED_AT).map(str::to_string))
}

/// Records how the sends of `run`'s claims made at `claimed_at` ([`item::claimed_at`]) went,
/// one transaction per bucket that settles the records, counts them in the bucket's `TALLY`
/// and takes them out of their claim batch; per recipient, `false` when this run does not own
/// the claim (nothing written for it).
pub async fn settle_many<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    run: &str,
    claimed_at: &str,
    settles: &[(UserId, Status, String)],
    now: DateTime<Utc>,
) -> Result<Vec<bool>, StoreError> {
    if let Some((_, s, _)) = settles.iter().find(|(_, s, _)| tally::attr(*s).is_none() || *s == Status::Requeued) {
        return Err(StoreError::Invalid(format!(
            "a claim is settled SENT, SKIPPED, FAILED or UNCERTAIN, not {}",
            s.as_str()
        )));
    }
    let users: Vec<UserId> = settles.iter().map(|(u, _, _)| u.clone()).collect();
    let op = |i: usize| {
        let (u, status, detail) = &settles[i];
        let (key, updates, cond) = item::settle(campaign, u, run, claimed_at, *status, detail, now);
        (TxOp::Update { key, updates, cond: Some(cond) }, *status)
    };
    move_claims(store, campaign, run, claimed_at, &users, op).await
}

/// Gives back claims this run did not send (throttled, provider down): see [`release_many`].
pub async fn release<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    user: &UserId,
    run: &str,
) -> Result<bool, StoreError> {
    let Some(at) = own_claim(store, campaign, user, run).await? else { return Ok(false) };
    Ok(release_many(store, campaign, run, &at, std::slice::from_ref(user)).await?[0])
}

/// Gives back `run`'s claims made at `claimed_at` that it did not send: the records go, and
/// their claim batch shrinks, in one transaction per bucket; per recipient, `false` when it
/// is not this run's unsettled claim.
pub async fn release_many<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    run: &str,
    claimed_at: &str,
    users: &[UserId],
) -> Result<Vec<bool>, StoreError> {
    let op = |i: usize| {
        let (key, cond) = item::release(campaign, &users[i], run, claimed_at);
        (TxOp::Delete { key, cond: Some(cond) }, Status::Claimed)
    };
    move_claims(store, campaign, run, claimed_at, users, op).await
}

/// Moves claims of one batch out of it (settled to the status `op` gives, or released when it
/// gives CLAIMED), bucket by bucket, each in one transaction with the bucket's tallies; a
/// record whose condition fails is left out and the rest tried again. An emptied batch is
/// deleted afterwards (only if still 0: a leftover 0 counts nothing).
async fn move_claims<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    run: &str,
    claimed_at: &str,
    users: &[UserId],
    op: impl Fn(usize) -> (TxOp, Status),
) -> Result<Vec<bool>, StoreError> {
    let mut out = vec![false; users.len()];
    for (b, idx) in by_bucket(users) {
        for group in idx.chunks(TX_RECORDS) {
            let mut todo: Vec<usize> = group.to_vec();
            let mut attempts = 0;
            while !todo.is_empty() {
                attempts += 1;
                if attempts > TX_ATTEMPTS {
                    return Err(StoreError::Unavailable("settles kept conflicting".into()));
                }
                let moves: Vec<(TxOp, Status)> = todo.iter().map(|&i| op(i)).collect();
                let deltas: Vec<(Status, i64)> = moves.iter().map(|(_, s)| (*s, 1)).collect();
                let mut ops = vec![
                    TxOp::Update {
                        key: tally::batch_key(campaign, b, run, claimed_at),
                        updates: tally::batch(run, claimed_at, -(todo.len() as i64)),
                        cond: None,
                    },
                    TxOp::Update { key: tally::counts_key(campaign, b), updates: tally::count(&deltas), cond: None },
                ];
                ops.extend(moves.into_iter().map(|(o, _)| o));
                match store.transact(ops, None).await {
                    Ok(()) => {
                        for &i in &todo {
                            out[i] = true;
                        }
                        todo.clear();
                    }
                    Err(e @ StoreError::TransactionCancelled { .. }) => {
                        todo =
                            todo.into_iter().enumerate().filter(|(k, _)| !e.failed_at(k + 2)).map(|(_, i)| i).collect();
                    }
                    Err(e) => return Err(e),
                }
            }
            forget_if_empty(store, &tally::batch_key(campaign, b, run, claimed_at)).await;
        }
    }
    Ok(out)
}

/// Deletes a claim batch back to 0 (a failed attempt only leaves a 0 that counts nothing).
async fn forget_if_empty<S: Store + ?Sized>(store: &S, key: &Key) {
    match store.delete(key, Some(tally::empty())).await {
        Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => tracing::warn!(error = %e, "could not delete an emptied claim batch"),
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
/// already requeued record stays requeued. The record moves with its tallies: out of its
/// claim batch (a claim never settled) or out of `uncertain`, into `requeued`.
pub async fn requeue<S: Store + ?Sized>(store: &S, campaign: &CampaignId, u: &Uncertain) -> Result<bool, StoreError> {
    let b = bucket(&u.user);
    for _ in 0..TX_ATTEMPTS {
        let Some(found) = store.get(&item::key(campaign, &u.user)).await? else { return Ok(false) };
        let status = match item::read(&found) {
            Some((Status::Requeued, _)) => return Ok(true),
            Some((s @ (Status::Claimed | Status::Uncertain), _)) => s,
            _ => return Ok(false),
        };
        let (key, updates, cond) = item::requeue(campaign, &u.user, &u.run, &u.claimed_at);
        let cond = Cond::And(vec![cond, Cond::eq(item::STATUS, status.as_str())]);
        let mut ops = vec![TxOp::Update { key, updates, cond: Some(cond) }];
        let counts = if status == Status::Claimed {
            ops.push(TxOp::Update {
                key: tally::batch_key(campaign, b, &u.run, &u.claimed_at),
                updates: tally::batch(&u.run, &u.claimed_at, -1),
                cond: None,
            });
            tally::count(&[(Status::Requeued, 1)])
        } else {
            tally::count(&[(Status::Requeued, 1), (Status::Uncertain, -1)])
        };
        ops.push(TxOp::Update { key: tally::counts_key(campaign, b), updates: counts, cond: None });
        match store.transact(ops, None).await {
            Ok(()) => {
                if status == Status::Claimed {
                    forget_if_empty(store, &tally::batch_key(campaign, b, &u.run, &u.claimed_at)).await;
                }
                return Ok(true);
            }
            // Changed since it was read: look again.
            Err(StoreError::TransactionCancelled { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
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
