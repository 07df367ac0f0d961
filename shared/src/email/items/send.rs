//! A campaign's email send: `EMAILSEND#<campaign>` holds
//!
//! - `STATE`: the send itself — who triggered it, when, against which campaign version, and
//!   whether it is SENDING, PAUSED or CANCELLED (each change a conditional write on the
//!   state it expects);
//! - `BUCKET#<nn>`: the publisher's checkpoint of one audience bucket — the last member it
//!   enqueued (`cursor`), how many recipients it enqueued, whether the bucket is done, and
//!   the publisher holding it (`owner`, `lease_until` in epoch ms);
//! - `FEEDBACK`: bounces and complaints reported by the provider, and the sends they are
//!   measured against (`sent`, added by senders after each job).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ids::CampaignId;
use crate::ports::store::{Cond, Item, ItemExt, Key, Query, StoreError, Update};

const KIND: &str = "email_send";

/// Where a send is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SendState {
    Sending,
    Paused,
    Cancelled,
}

impl SendState {
    pub fn as_str(self) -> &'static str {
        match self {
            SendState::Sending => "SENDING",
            SendState::Paused => "PAUSED",
            SendState::Cancelled => "CANCELLED",
        }
    }
}

/// The `STATE` item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Send {
    pub campaign_id: CampaignId,
    pub state: SendState,
    /// The trigger's id (jobs and logs name it).
    pub run: String,
    pub triggered_at: DateTime<Utc>,
    pub triggered_by: String,
    /// The campaign version whose `[email]` is sent.
    pub version: i64,
    /// The stored template's name at the provider.
    pub template: String,
    /// Why it was last paused or cancelled (an operator, or the bounce/complaint guard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

fn partition(campaign: &CampaignId) -> String {
    format!("EMAILSEND#{campaign}")
}

pub fn state_key(campaign: &CampaignId) -> Key {
    Key::new(partition(campaign), "STATE")
}

pub fn to_item(send: &Send) -> Result<Item, StoreError> {
    crate::items::to_item(&state_key(&send.campaign_id), KIND, send)
}

pub fn from_item(item: &Item) -> Result<Send, StoreError> {
    crate::items::from_item(KIND, item)
}

/// The change of a send's state from `expected` to `to`, with why and when.
pub fn transition(
    campaign: &CampaignId,
    expected: &[SendState],
    to: SendState,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> (Key, Vec<Update>, Cond) {
    let mut updates = vec![Update::set("state", to.as_str()), Update::set("updated_at", now.to_rfc3339())];
    match reason {
        Some(r) => updates.push(Update::set("reason", r)),
        None => updates.push(Update::Remove("reason".into())),
    }
    let cond = Cond::Or(expected.iter().map(|s| Cond::eq("state", s.as_str())).collect());
    (state_key(campaign), updates, cond)
}

/// The publisher's checkpoint of one bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub bucket: u32,
    /// The sort key of the last member enqueued.
    pub cursor: Option<String>,
    pub enqueued: u64,
    pub done: bool,
    /// Until when a publisher holds it (epoch ms; 0 when nobody does).
    pub lease_until: i64,
}

pub fn bucket_key(campaign: &CampaignId, bucket: u32) -> Key {
    Key::new(partition(campaign), format!("BUCKET#{bucket:02}"))
}

/// Everything of a send: the state, the checkpoints and the feedback counts.
pub fn send_query(campaign: &CampaignId) -> Query {
    Query::partition(partition(campaign)).limit(100)
}

pub fn read_checkpoint(item: &Item) -> Option<Checkpoint> {
    let bucket = item.str_attr("sk")?.strip_prefix("BUCKET#")?.parse().ok()?;
    Some(Checkpoint {
        bucket,
        cursor: item.str_attr("cursor").map(str::to_string),
        enqueued: item.i64_attr("enqueued").and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
        done: item.get("done").and_then(serde_json::Value::as_bool).unwrap_or(false),
        lease_until: if item.str_attr("owner").is_some() { item.i64_attr("lease_until").unwrap_or(0) } else { 0 },
    })
}

/// Takes (or renews) the lease of a bucket for `owner` until `until_ms`: only when the bucket
/// is not done and nobody else holds a live lease.
pub fn lease(campaign: &CampaignId, bucket: u32, owner: &str, now_ms: i64, until_ms: i64) -> (Key, Vec<Update>, Cond) {
    let updates = vec![
        Update::set("type", "email_send_bucket"),
        Update::set("owner", owner),
        Update::set("lease_until", until_ms),
    ];
    let cond = Cond::And(vec![
        Cond::Ne("done".into(), true.into()),
        Cond::Or(vec![
            Cond::AttrNotExists("owner".into()),
            Cond::eq("owner", owner),
            Cond::Lt("lease_until".into(), now_ms),
        ]),
    ]);
    (bucket_key(campaign, bucket), updates, cond)
}

/// Records that `owner` enqueued `n` more recipients up to `cursor` (the queue confirmed
/// them): only while it still holds the bucket and nobody moved the cursor meanwhile.
#[allow(clippy::too_many_arguments)] // one checkpoint's fields, each named at the call
pub fn advance(
    campaign: &CampaignId,
    bucket: u32,
    owner: &str,
    from: Option<&str>,
    to: Option<&str>,
    n: u64,
    done: bool,
    until_ms: i64,
) -> (Key, Vec<Update>, Cond) {
    let mut updates = vec![
        Update::Add("enqueued".into(), i64::try_from(n).unwrap_or(i64::MAX)),
        Update::set("lease_until", until_ms),
    ];
    if let Some(to) = to {
        updates.push(Update::set("cursor", to));
    }
    if done {
        updates.push(Update::set("done", true));
        updates.push(Update::Remove("owner".into()));
    }
    let at = match from {
        Some(c) => Cond::eq("cursor", c),
        None => Cond::AttrNotExists("cursor".into()),
    };
    (bucket_key(campaign, bucket), updates, Cond::And(vec![Cond::eq("owner", owner), at]))
}

/// Lets go of a bucket (paused, cancelled): the next publisher takes it at once.
pub fn release(campaign: &CampaignId, bucket: u32, owner: &str) -> (Key, Vec<Update>, Cond) {
    (bucket_key(campaign, bucket), vec![Update::Remove("owner".into())], Cond::eq("owner", owner))
}

pub fn feedback_key(campaign: &CampaignId) -> Key {
    Key::new(partition(campaign), "FEEDBACK")
}

/// The marker of one feedback event (bounce or complaint) counted for `campaign`, kept until
/// `expires` (the table's TTL).
pub fn feedback_seen(campaign: &CampaignId, id: &str, expires: DateTime<Utc>) -> Item {
    let mut item = Key::new(format!("{}#FEEDBACK", partition(campaign)), id).item();
    item.insert("expires_at".into(), expires.timestamp().into());
    item
}

/// The provider's feedback counts: (sent, bounced, complained).
pub fn read_feedback(item: &Item) -> (u64, u64, u64) {
    let n = |a: &str| item.i64_attr(a).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    (n("sent"), n("bounced"), n("complained"))
}
