//! The sold-out marker of a claim campaign: elects one publisher of the price book without
//! the campaign's coupon among every instance that finds the stock all taken.

use chrono::{DateTime, Utc};

use crate::domain::ids::CampaignId;
use crate::ports::store::{Cond, Item, ItemExt, Key, Update};

pub const MARKED_AT: &str = "marked_at";
pub const PUBLISHED_AT: &str = "published_at";

pub fn key(campaign: &CampaignId) -> Key {
    Key::new(format!("CAMPAIGN#{campaign}#SOLDOUT"), "SOLDOUT")
}

/// A new marker, placed at `now` (epoch ms: the publisher's lease starts).
pub fn item(campaign: &CampaignId, now: DateTime<Utc>) -> Item {
    let mut item = key(campaign).item();
    item.insert("type".into(), "sold_out".into());
    item.insert("campaign_id".into(), campaign.as_str().into());
    item.insert(MARKED_AT.into(), now.timestamp_millis().into());
    item
}

/// A marker as found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoldOut {
    /// Epoch ms the current publisher took it.
    pub marked_at: i64,
    pub published: bool,
}

impl SoldOut {
    pub fn from_item(item: &Item) -> SoldOut {
        SoldOut { marked_at: item.i64_attr(MARKED_AT).unwrap_or(0), published: item.contains_key(PUBLISHED_AT) }
    }
}

/// Taking over a marker whose publisher left it unpublished: only over the `marked_at` seen.
pub fn take_over(seen: i64, now: DateTime<Utc>) -> (Vec<Update>, Cond) {
    (vec![Update::set(MARKED_AT, now.timestamp_millis())], Cond::eq(MARKED_AT, seen))
}

/// Stamping a marker published.
pub fn published(now: DateTime<Utc>) -> Vec<Update> {
    vec![Update::set(PUBLISHED_AT, now.to_rfc3339())]
}
