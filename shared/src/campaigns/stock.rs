//! Stock shards: a claim campaign's stock, or a limited reward rule's, split over counter
//! items that each live in a partition of their own (so a hot stock spreads its writes).
//!
//! A shard holds `remaining` and `initial` (the units ever allotted to it, net of the units a
//! deploy moved: `initial − remaining` is what it issued); a claim shard also carries the
//! deployed campaign's window (`open_from`, `open_until`, epoch seconds) and the version of
//! the deploy that set it, so a claim's own condition refuses a campaign a redeploy ended.

use chrono::{DateTime, Utc};

use crate::domain::ids::{CampaignId, RuleId};
use crate::ports::store::{Cond, Item, ItemExt, Key, Update};

pub const REMAINING: &str = "remaining";
pub const INITIAL: &str = "initial";
pub const OPEN_FROM: &str = "open_from";
pub const OPEN_UNTIL: &str = "open_until";
pub const WINDOW_VERSION: &str = "window_version";
const KIND: &str = "stock_shard";

/// One shard of a campaign's claim stock.
pub fn claim_key(campaign: &CampaignId, shard: u16) -> Key {
    Key::new(format!("CAMPAIGN#{campaign}#STOCK#{shard:04}"), "STOCK")
}

/// One shard of a reward rule's stock.
pub fn reward_key(campaign: &CampaignId, rule: &RuleId, shard: u16) -> Key {
    Key::new(format!("CAMPAIGN#{campaign}#REWARD#{rule}#STOCK#{shard:04}"), "STOCK")
}

/// A shard as read (an absent shard reads as empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StockShard {
    pub remaining: i64,
    pub initial: i64,
    /// `(open_from, open_until)` of a claim shard.
    pub window: Option<(i64, i64)>,
}

impl StockShard {
    pub fn from_item(item: Option<&Item>) -> StockShard {
        let Some(i) = item else { return StockShard::default() };
        let remaining = i.i64_attr(REMAINING).unwrap_or(0);
        StockShard {
            remaining,
            initial: i.i64_attr(INITIAL).unwrap_or(remaining),
            window: i.i64_attr(OPEN_FROM).zip(i.i64_attr(OPEN_UNTIL)),
        }
    }

    /// Why a claim shard that refused a claim at `now` is closed, if its window is why:
    /// `Some(true)` before it opens, `Some(false)` after it closed.
    pub fn closed_at(item: Option<&Item>, now: DateTime<Utc>) -> Option<bool> {
        let (from, until) = StockShard::from_item(item).window?;
        let now = now.timestamp();
        if now < from {
            Some(true)
        } else if now >= until {
            Some(false)
        } else {
            None
        }
    }
}

/// The updates of a deploy's change to a shard: `delta` units more (or fewer) left and
/// allotted, the shard's campaign, and for a claim shard the window of deploy `version`.
pub fn change(campaign: &CampaignId, delta: i64, window: Option<(i64, i64, i64)>) -> Vec<Update> {
    let mut updates = vec![
        Update::set("type", KIND),
        Update::set("campaign_id", campaign.as_str()),
        Update::Add(REMAINING.into(), delta),
        Update::Add(INITIAL.into(), delta),
    ];
    if let Some((from, until, version)) = window {
        updates.extend([
            Update::set(OPEN_FROM, from),
            Update::set(OPEN_UNTIL, until),
            Update::set(WINDOW_VERSION, version),
        ]);
    }
    updates
}

/// Taking one unit.
pub fn take_one() -> Vec<Update> {
    vec![Update::Add(REMAINING.into(), -1)]
}

/// Giving one unit back.
pub fn give_back_one() -> Vec<Update> {
    vec![Update::Add(REMAINING.into(), 1)]
}

/// A unit is left.
pub fn has_stock() -> Cond {
    Cond::Gt(REMAINING.into(), 0)
}

/// At least `n` units are left.
pub fn at_least(n: i64) -> Cond {
    Cond::Ge(REMAINING.into(), n)
}

/// Exactly `n` units are left (an absent shard has 0).
pub fn exactly(n: i64) -> Cond {
    if n == 0 {
        Cond::Or(vec![Cond::AttrNotExists(REMAINING.into()), Cond::eq(REMAINING, 0)])
    } else {
        Cond::eq(REMAINING, n)
    }
}

/// The condition a claim puts on the shard it takes a unit from: a unit left, and the
/// campaign active at `now` as last deployed (shards deployed before windows existed only
/// check the stock).
pub fn claimable_at(now: DateTime<Utc>) -> Cond {
    let now = now.timestamp();
    Cond::And(vec![
        has_stock(),
        Cond::Or(vec![
            Cond::AttrNotExists(OPEN_UNTIL.into()),
            Cond::And(vec![Cond::Le(OPEN_FROM.into(), now), Cond::Gt(OPEN_UNTIL.into(), now)]),
        ]),
    ])
}
