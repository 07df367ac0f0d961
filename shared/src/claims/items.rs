//! A shopper's claim counter of a campaign: how many coupons they have claimed from it, in
//! their own partition (beside their wallet), so claims of many shoppers spread.

use chrono::{DateTime, Utc};

use crate::domain::ids::{CampaignId, UserId};
use crate::ports::store::{Cond, Item, ItemExt, Key, Update};

pub const SK_PREFIX: &str = "CLAIMS#";
pub const COUNT: &str = "count";

pub fn key(user: &UserId, campaign: &CampaignId) -> Key {
    Key::new(crate::wallet::items::partition(user), format!("{SK_PREFIX}{campaign}"))
}

/// The count of a counter item (0 without one).
pub fn count_of(item: Option<&Item>) -> i64 {
    item.and_then(|i| i.i64_attr(COUNT)).unwrap_or(0)
}

/// One more claim, and its condition: the count is still `expected` (absent for a first
/// claim) and under `limit`.
pub fn one_more(
    campaign: &CampaignId,
    user: &UserId,
    expected: i64,
    limit: i64,
    now: DateTime<Utc>,
) -> (Vec<Update>, Cond) {
    let updates = vec![
        Update::Add(COUNT.into(), 1),
        Update::set("type", "claims"),
        Update::set("campaign_id", campaign.as_str()),
        Update::set("user_id", user.as_str()),
        Update::set("updated_at", now.to_rfc3339()),
    ];
    let seen = if expected == 0 { Cond::AttrNotExists(COUNT.into()) } else { Cond::eq(COUNT, expected) };
    let cond = Cond::And(vec![seen, Cond::Or(vec![Cond::AttrNotExists(COUNT.into()), Cond::Lt(COUNT.into(), limit)])]);
    (updates, cond)
}
