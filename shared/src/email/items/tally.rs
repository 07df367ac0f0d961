//! A campaign's delivery tallies (issue 29, item 2): what `campaign status` reads instead of
//! every delivery record. They live in the records' own partitions
//! (`EMAILREC#<campaign>#<bucket>`), so their writes spread over the audience's buckets like
//! the records do:
//!
//! - `TALLY`: the bucket's recipients by settled state (`sent`, `skipped`, `failed`,
//!   `uncertain`, `requeued`), and `v`, which every write of the bucket's tallies adds to (a
//!   recount rewrites them only if no write came in between);
//! - `TALLY#<claimed_at>#<run>`: one claim batch — `n` recipients claimed together at
//!   `claimed_at` by `run` and not settled yet; deleted once it is back to 0.
//!
//! Each is written in the same transaction that moves the records it counts (see
//! `email::delivery`), so a crash never makes them disagree.

use chrono::{DateTime, Utc};

use crate::domain::ids::CampaignId;
use crate::email::items::delivery::Status;
use crate::ports::store::{Cond, Item, ItemExt, Key, Query, Update};

/// Unsettled claims of a batch.
pub const N: &str = "n";
/// Writes of a bucket's tallies (a recount's check that nothing moved meanwhile).
pub const V: &str = "v";
/// The settled states the `TALLY` item counts.
pub const SETTLED: [Status; 5] = [Status::Sent, Status::Skipped, Status::Failed, Status::Uncertain, Status::Requeued];

fn partition(campaign: &CampaignId, bucket: u32) -> String {
    format!("EMAILREC#{campaign}#{bucket:02}")
}

/// The bucket's counts by settled state.
pub fn counts_key(campaign: &CampaignId, bucket: u32) -> Key {
    Key::new(partition(campaign, bucket), "TALLY")
}

/// The batch of claims `run` made at `claimed_at` (as the records hold it, RFC 3339).
pub fn batch_key(campaign: &CampaignId, bucket: u32, run: &str, claimed_at: &str) -> Key {
    Key::new(partition(campaign, bucket), format!("TALLY#{claimed_at}#{run}"))
}

/// A bucket's tallies: its `TALLY` item and its open batches.
pub fn bucket_query(campaign: &CampaignId, bucket: u32) -> Query {
    Query::partition(partition(campaign, bucket)).prefix("TALLY")
}

/// The attribute of a settled state in `TALLY` (`None` for CLAIMED, counted by batches).
pub fn attr(status: Status) -> Option<&'static str> {
    match status {
        Status::Claimed => None,
        Status::Sent => Some("sent"),
        Status::Skipped => Some("skipped"),
        Status::Failed => Some("failed"),
        Status::Uncertain => Some("uncertain"),
        Status::Requeued => Some("requeued"),
    }
}

/// The update of `TALLY` by `deltas` (state, change), counted as one write.
pub fn count(deltas: &[(Status, i64)]) -> Vec<Update> {
    let mut updates = vec![Update::set("type", "email_tally"), Update::Add(V.into(), 1)];
    let mut merged: std::collections::BTreeMap<&'static str, i64> = std::collections::BTreeMap::new();
    for (s, d) in deltas {
        if let Some(a) = attr(*s) {
            *merged.entry(a).or_default() += d;
        }
    }
    updates.extend(merged.into_iter().filter(|(_, d)| *d != 0).map(|(a, d)| Update::Add(a.into(), d)));
    updates
}

/// The update of a batch by `delta` claims.
pub fn batch(run: &str, claimed_at: &str, delta: i64) -> Vec<Update> {
    vec![
        Update::set("type", "email_claim_batch"),
        Update::set("run", run),
        Update::set("claimed_at", claimed_at),
        Update::Add(N.into(), delta),
    ]
}

/// The condition under which an emptied batch is deleted.
pub fn empty() -> Cond {
    Cond::Eq(N.into(), 0.into())
}

/// What one tally item says.
pub enum Read {
    Counts(Vec<(&'static str, u64)>, i64),
    Batch { n: u64, claimed_at: Option<DateTime<Utc>> },
}

pub fn read(item: &Item) -> Option<Read> {
    let n = |a: &str| item.i64_attr(a).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    match item.str_attr("sk")? {
        "TALLY" => Some(Read::Counts(
            SETTLED.iter().filter_map(|s| attr(*s)).map(|a| (a, n(a))).collect(),
            item.i64_attr(V).unwrap_or(0),
        )),
        sk if sk.starts_with("TALLY#") => {
            Some(Read::Batch { n: n(N), claimed_at: item.str_attr("claimed_at").and_then(|t| t.parse().ok()) })
        }
        _ => None,
    }
}
