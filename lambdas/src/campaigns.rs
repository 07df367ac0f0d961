//! Deployed campaigns in the store.

use chrono::{DateTime, Utc};
use promo_shared::campaign::{Campaign, RewardRule};
use promo_shared::ids::CampaignId;
use promo_shared::keys;
use promo_shared::store::{Cond, Item, ItemExt, Key, Query, Store, StoreError, Update};
use serde_json::Value;

/// Writes (or replaces) a campaign, bumping its version. Returns the new version.
///
/// The stock of its `claim` rule and of every reward rule with a `stock` is written first as
/// shards (see [`stock_shares`]), each put only if absent, so a redeploy never resets the
/// stock that claims or rewards have taken. Changing `stock` or `shards` of a deployed rule is
/// not supported yet: a redeploy keeps the shards it finds (and adds missing ones).
///
/// The claim shards carry the campaign's window (see [`claimable_at`]). A redeploy moves it
/// on the shards that exist only once its campaign item is written, and only forward in
/// versions: a deploy that lost the version race changes nothing, and of two that both
/// committed the later one's window stays.
pub async fn deploy<S: Store + ?Sized>(store: &S, campaign: &Campaign, now: DateTime<Utc>) -> Result<i64, StoreError> {
    let key = keys::campaign(&campaign.id);
    let version = store.get(&key).await?.and_then(|i| i.get("version").and_then(Value::as_i64)).unwrap_or(0) + 1;
    let window = Window { from: campaign.starts_at.timestamp(), until: campaign.ends_at.timestamp(), version };
    // Shards before the campaign: a campaign that claims or payments can see always has its stock.
    let mut moved = Vec::new();
    if let Some(claim) = &campaign.claim {
        moved = create_stock(store, campaign, claim.stock, &claim_shards(campaign), Some(window)).await?;
    }
    for rule in &campaign.rewards {
        if let Some(stock) = rule.stock {
            create_stock(store, campaign, stock, &reward_shards(campaign, rule), None).await?;
        }
    }
    let mut item = key.item();
    item.insert("type".into(), "campaign".into());
    item.insert("campaign".into(), serde_json::to_value(campaign).map_err(|e| StoreError::Invalid(e.to_string()))?);
    item.insert("version".into(), version.into());
    item.insert("deployed_at".into(), now.to_rfc3339().into());
    // Optimistic concurrency: two deploys racing cannot both claim the same version.
    let cond = if version == 1 { Cond::NotExists } else { Cond::eq("version", version - 1) };
    store.put(item, Some(cond)).await?;
    for shard in moved {
        let updates = [
            Update::set(OPEN_FROM, window.from),
            Update::set(OPEN_UNTIL, window.until),
            Update::set(WINDOW_VERSION, window.version),
        ];
        let newer =
            Cond::Or(vec![Cond::AttrNotExists(WINDOW_VERSION.into()), Cond::Lt(WINDOW_VERSION.into(), window.version)]);
        match store.update(&shard, &updates, Some(Cond::And(vec![Cond::Exists, newer]))).await {
            // Refused: a later deploy already moved it.
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(version)
}

pub async fn get<S: Store + ?Sized>(store: &S, id: &CampaignId) -> Result<Option<Campaign>, StoreError> {
    store.get(&keys::campaign(id)).await?.map(|i| parse(&i)).transpose()
}

/// Every deployed campaign.
pub async fn list<S: Store + ?Sized>(store: &S) -> Result<Vec<Campaign>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page =
            store.query(&Query::partition(keys::CAMPAIGNS_PK).prefix(keys::CAMPAIGN_SK_PREFIX).after(after)).await?;
        for item in &page.items {
            out.push(parse(item)?);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// The keys of a campaign's claim stock shards (none without a `claim` rule).
pub fn claim_shards(campaign: &Campaign) -> Vec<Key> {
    let shards = campaign.claim.as_ref().map_or(0, |c| c.shards);
    (0..shards).map(|n| keys::stock_shard(&campaign.id, n)).collect()
}

/// The keys of a reward rule's stock shards (none for an unlimited rule).
pub fn reward_shards(campaign: &Campaign, rule: &RewardRule) -> Vec<Key> {
    let shards = if rule.stock.is_some() { rule.shards } else { 0 };
    (0..shards).map(|n| keys::reward_stock_shard(&campaign.id, &rule.id, n)).collect()
}

/// What each stock shard has left (an absent shard counts 0), read strongly consistent.
pub async fn remaining<S: Store + ?Sized>(store: &S, shards: &[Key]) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::with_capacity(shards.len());
    for shard in shards {
        out.push(store.get(shard).await?.and_then(|i| i.i64_attr("remaining")).unwrap_or(0));
    }
    Ok(out)
}

/// A claim campaign's window on its stock shards, from the deploy of `version`.
#[derive(Clone, Copy)]
struct Window {
    from: i64,
    until: i64,
    version: i64,
}

/// Puts the shards of one stock (`keys`, one per shard), each only if absent, with the
/// `window` when given; returns the shards that already existed (their window is the
/// caller's to move).
async fn create_stock<S: Store + ?Sized>(
    store: &S,
    campaign: &Campaign,
    stock: u32,
    keys: &[Key],
    window: Option<Window>,
) -> Result<Vec<Key>, StoreError> {
    let shards = u16::try_from(keys.len()).map_err(|_| StoreError::Invalid("too many shards".into()))?;
    let mut existing = Vec::new();
    for (key, share) in keys.iter().zip(stock_shares(stock, shards)) {
        let mut item = key.item();
        item.insert("type".into(), "stock_shard".into());
        item.insert("campaign_id".into(), campaign.id.as_str().into());
        item.insert("initial".into(), share.into());
        item.insert("remaining".into(), share.into());
        if let Some(w) = window {
            item.insert(OPEN_FROM.into(), w.from.into());
            item.insert(OPEN_UNTIL.into(), w.until.into());
            item.insert(WINDOW_VERSION.into(), w.version.into());
        }
        match store.put(item, Some(Cond::NotExists)).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => existing.push(key.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok(existing)
}

/// A claim stock shard's window (epoch seconds): claims take from it only while
/// `open_from <= now < open_until`, the deployed campaign's `starts_at`/`ends_at`.
pub const OPEN_FROM: &str = "open_from";
pub const OPEN_UNTIL: &str = "open_until";
/// The campaign version whose deploy last set a shard's window.
const WINDOW_VERSION: &str = "window_version";

/// The condition a claim puts on the stock shard it takes a unit from: stock left, and the
/// campaign active at `now` as last deployed (shards deployed before windows existed only
/// check the stock).
pub fn claimable_at(now: DateTime<Utc>) -> Cond {
    let now = now.timestamp();
    Cond::And(vec![
        Cond::Gt("remaining".into(), 0),
        Cond::Or(vec![
            Cond::AttrNotExists(OPEN_UNTIL.into()),
            Cond::And(vec![Cond::Le(OPEN_FROM.into(), now), Cond::Gt(OPEN_UNTIL.into(), now)]),
        ]),
    ])
}

/// The stock of each shard: `stock / shards`, the remainder spread one by one over the
/// first shards (stock 10 over 4 shards: 3, 3, 2, 2).
pub fn stock_shares(stock: u32, shards: u16) -> Vec<i64> {
    let shards = u32::from(shards.max(1));
    (0..shards).map(|i| i64::from(stock / shards + u32::from(i < stock % shards))).collect()
}

fn parse(item: &Item) -> Result<Campaign, StoreError> {
    let v = item.get("campaign").cloned().unwrap_or(Value::Null);
    serde_json::from_value(v).map_err(|e| StoreError::Invalid(format!("stored campaign is invalid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::stock_shares;

    #[test]
    fn stock_is_spread_over_the_shards_with_the_remainder_first() {
        assert_eq!(stock_shares(10, 4), [3, 3, 2, 2]);
        assert_eq!(stock_shares(100, 4), [25; 4]);
        assert_eq!(stock_shares(7, 1), [7]);
        assert_eq!(stock_shares(1000, 7).iter().sum::<i64>(), 1000);
    }
}
