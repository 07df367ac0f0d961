//! A send's counts from its tallies (issue 29, item 2): `campaign status` and `trigger`'s
//! progress read each bucket's `TALLY` item and open claim batches (`email::items::tally`)
//! — 32 small queries, whatever the audience — instead of every delivery record. The tallies
//! move in the same transactions as the records (`email::delivery`), so they are exact at
//! every moment; [`recount`] rebuilds them from the records (sends triggered before they
//! existed, or a repair).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::domain::ids::CampaignId;
use crate::email::delivery::LEASE;
use crate::email::items::audience::BUCKETS;
use crate::email::items::delivery::{self as record, Status};
use crate::email::items::send as send_item;
use crate::email::items::tally::{self as item, Read};
use crate::ports::store::{Cond, ItemExt, Key, MAX_TX_OPS, Store, StoreError, TxOp, Update, query_all};

/// The attribute of the send's `STATE` item that says its tallies are kept (set at the
/// trigger, or by a recount): without it, status counts the records.
pub const TALLIED: &str = "tallied";

/// The names [`crate::email::delivery::counts`] gives, all present.
fn zero() -> BTreeMap<&'static str, u64> {
    ["sent", "skipped", "failed", "in_flight", "uncertain", "requeued"].into_iter().map(|k| (k, 0)).collect()
}

/// A campaign's deliveries by state at `now`, from its tallies: the same names and meaning
/// as [`crate::email::delivery::counts`] (a claim batch's claims are in flight within the
/// lease, uncertain after it).
pub async fn counts<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    now: DateTime<Utc>,
) -> Result<BTreeMap<&'static str, u64>, StoreError> {
    let mut out = zero();
    let buckets =
        futures::future::try_join_all((0..BUCKETS).map(|b| query_all(store, item::bucket_query(campaign, b)))).await?;
    for it in buckets.iter().flatten() {
        match item::read(it) {
            Some(Read::Counts(counts, _)) => {
                for (name, n) in counts {
                    *out.entry(name).or_default() += n;
                }
            }
            Some(Read::Batch { n, claimed_at }) => {
                let name = match claimed_at {
                    Some(at) if now - at < LEASE => "in_flight",
                    _ => "uncertain",
                };
                *out.entry(name).or_default() += n;
            }
            None => {}
        }
    }
    Ok(out)
}

/// Whether the send's tallies are kept (its `STATE` item says so).
pub fn kept(state: &crate::ports::store::Item) -> bool {
    state.get(TALLIED).and_then(serde_json::Value::as_bool).unwrap_or(false)
}

/// Rewrites a campaign's tallies from its delivery records, bucket by bucket: each bucket's
/// new tallies are written only if no claim or settle touched them while its records were
/// read (else it is read again, a few times); then the send is marked tallied. Returns the
/// counts at `now`.
pub async fn recount<S: Store + ?Sized>(
    store: &S,
    campaign: &CampaignId,
    now: DateTime<Utc>,
) -> Result<BTreeMap<&'static str, u64>, StoreError> {
    for b in 0..BUCKETS {
        recount_bucket(store, campaign, b).await?;
    }
    let state = send_item::state_key(campaign);
    match store.update(&state, &[Update::set(TALLIED, true)], Some(Cond::Exists)).await {
        Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(e),
    }
    counts(store, campaign, now).await
}

async fn recount_bucket<S: Store + ?Sized>(store: &S, campaign: &CampaignId, b: u32) -> Result<(), StoreError> {
    for _ in 0..8 {
        let tallies = query_all(store, item::bucket_query(campaign, b)).await?;
        let mut v = None;
        let mut stale: BTreeSet<String> = BTreeSet::new();
        for it in &tallies {
            match item::read(it) {
                Some(Read::Counts(_, version)) => v = Some(version),
                Some(Read::Batch { .. }) => {
                    stale.extend(it.str_attr("sk").map(str::to_string));
                }
                None => {}
            }
        }
        let mut settled: BTreeMap<&'static str, i64> = BTreeMap::new();
        // (run, claimed_at) → unsettled claims
        let mut batches: BTreeMap<(String, String), i64> = BTreeMap::new();
        for it in query_all(store, record::bucket_query(campaign, b)).await? {
            match record::read(&it).map(|(s, _)| s) {
                Some(Status::Claimed) => {
                    let f = |a: &str| it.str_attr(a).unwrap_or_default().to_string();
                    *batches.entry((f(record::RUN), f(record::CLAIMED_AT))).or_default() += 1;
                }
                Some(s) => *settled.entry(item::attr(s).unwrap_or("uncertain")).or_default() += 1,
                None => *settled.entry("uncertain").or_default() += 1,
            }
        }
        let counts_key = item::counts_key(campaign, b);
        let mut counts = counts_key.item();
        counts.insert("type".into(), "email_tally".into());
        for a in item::SETTLED.iter().filter_map(|s| item::attr(*s)) {
            counts.insert(a.into(), settled.get(a).copied().unwrap_or(0).into());
        }
        counts.insert(item::V.into(), (v.unwrap_or(0) + 1).into());
        let cond = match v {
            Some(v) => Cond::eq(item::V, v),
            None => Cond::NotExists,
        };
        let mut ops = vec![TxOp::Put { item: counts, cond: Some(cond) }];
        for ((run, at), n) in &batches {
            let key: Key = item::batch_key(campaign, b, run, at);
            stale.remove(&key.sk);
            let updates = item::batch(run, at, 0);
            let mut batch = Update::apply_all(&key, None, &updates)?;
            batch.insert(item::N.into(), (*n).into());
            ops.push(TxOp::Put { item: batch, cond: None });
        }
        for sk in stale {
            ops.push(TxOp::Delete { key: Key::new(counts_key.pk.clone(), sk), cond: None });
        }
        if ops.len() > MAX_TX_OPS {
            return Err(StoreError::Invalid(format!(
                "bucket {b} of `{campaign}` holds {} open claim batches: more than one recount writes at once",
                ops.len() - 1
            )));
        }
        match store.transact(ops, None).await {
            Ok(()) => return Ok(()),
            // A claim or settle came in between: read again.
            Err(StoreError::TransactionCancelled { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable(format!("bucket {b} of `{campaign}` kept changing while it was recounted")))
}
