//! One campaign email's delivery to one recipient: `EMAILREC#<campaign>#<bucket>` /
//! `U#<user_id>`, in the recipient's audience bucket (so a campaign's records spread like its
//! audience). The item exists from the moment a sender claims the recipient, before any send,
//! and moves once to its outcome; see `email::delivery`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ids::{CampaignId, UserId};
use crate::email::items::audience::bucket;
use crate::ports::store::{Cond, Item, ItemExt, Key, Query, Update};

pub const STATUS: &str = "status";
pub const RUN: &str = "run";
pub const CLAIMED_AT: &str = "claimed_at";

/// Where a recipient's email is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// A sender claimed it and has not said how the send went.
    Claimed,
    Sent,
    Skipped,
    Failed,
    /// The provider's answer to the send was ambiguous (a timeout after the request went out,
    /// an unreadable answer, a 5xx): it may have been mailed. Reported with the claims never
    /// settled, and sent again only when the marketer asks (`resend --uncertain`).
    Uncertain,
    /// An uncertain claim the marketer chose to send again (`resend --uncertain`): it may be
    /// claimed anew.
    Requeued,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Claimed => "CLAIMED",
            Status::Sent => "SENT",
            Status::Skipped => "SKIPPED",
            Status::Failed => "FAILED",
            Status::Uncertain => "UNCERTAIN",
            Status::Requeued => "REQUEUED",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Claimed, Status::Sent, Status::Skipped, Status::Failed, Status::Uncertain, Status::Requeued]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// A claim time as records and claim batches hold it.
pub fn claimed_at(now: DateTime<Utc>) -> String {
    now.to_rfc3339()
}

fn partition(campaign: &CampaignId, user: &UserId) -> String {
    format!("EMAILREC#{campaign}#{:02}", bucket(user))
}

pub fn key(campaign: &CampaignId, user: &UserId) -> Key {
    Key::new(partition(campaign, user), format!("U#{user}"))
}

/// A campaign's records in one audience bucket.
pub fn bucket_query(campaign: &CampaignId, bucket: u32) -> Query {
    Query::partition(format!("EMAILREC#{campaign}#{bucket:02}")).prefix("U#")
}

/// The claim: the item is created CLAIMED by `run`, only if there is none (or the marketer
/// requeued it). The claim time is stored as [`claimed_at`] gives it.
pub fn claim(campaign: &CampaignId, user: &UserId, run: &str, now: DateTime<Utc>) -> (Key, Vec<Update>, Cond) {
    let updates = vec![
        Update::set("type", "email_delivery"),
        Update::set(STATUS, Status::Claimed.as_str()),
        Update::set(RUN, run),
        Update::set(CLAIMED_AT, claimed_at(now)),
        Update::set("campaign_id", campaign.as_str()),
        Update::set("user_id", user.as_str()),
    ];
    let cond = Cond::Or(vec![Cond::NotExists, Cond::eq(STATUS, Status::Requeued.as_str())]);
    (key(campaign, user), updates, cond)
}

/// The outcome of a claimed send, by the run that claimed it (at `claimed_at`), once.
#[allow(clippy::too_many_arguments)] // one record's fields, each named at the call
pub fn settle(
    campaign: &CampaignId,
    user: &UserId,
    run: &str,
    claimed_at: &str,
    status: Status,
    detail: &str,
    now: DateTime<Utc>,
) -> (Key, Vec<Update>, Cond) {
    let updates = vec![
        Update::set(STATUS, status.as_str()),
        Update::set("detail", detail),
        Update::set("settled_at", now.to_rfc3339()),
    ];
    (key(campaign, user), updates, owned(run, claimed_at))
}

/// Gives a claim back unsent (the provider throttled or was down): only the claiming run,
/// only while nothing was settled, so the recipient can be claimed again.
pub fn release(campaign: &CampaignId, user: &UserId, run: &str, claimed_at: &str) -> (Key, Cond) {
    (key(campaign, user), owned(run, claimed_at))
}

/// Still the unsettled claim `run` made at `claimed_at` (the claim batch its tally counts).
fn owned(run: &str, claimed_at: &str) -> Cond {
    Cond::And(vec![Cond::eq(STATUS, Status::Claimed.as_str()), Cond::eq(RUN, run), Cond::eq(CLAIMED_AT, claimed_at)])
}

/// An uncertain claim given up for a new attempt: only while it is still the same unsettled
/// claim, or the same claim settled UNCERTAIN (an ambiguous answer). The record stays (REQUEUED) until a sender claims it again, so a recipient is never
/// both unrecorded and unqueued.
pub fn requeue(campaign: &CampaignId, user: &UserId, run: &str, claimed_at: &str) -> (Key, Vec<Update>, Cond) {
    let cond = Cond::And(vec![
        Cond::Or(vec![Cond::eq(STATUS, Status::Claimed.as_str()), Cond::eq(STATUS, Status::Uncertain.as_str())]),
        Cond::eq(RUN, run),
        Cond::eq("claimed_at", claimed_at),
    ]);
    (key(campaign, user), vec![Update::set(STATUS, Status::Requeued.as_str())], cond)
}

/// The status and claim time of a record.
pub fn read(item: &Item) -> Option<(Status, Option<DateTime<Utc>>)> {
    let status = Status::parse(item.str_attr(STATUS)?)?;
    let at = item.str_attr("claimed_at").and_then(|t| t.parse().ok());
    Some((status, at))
}
