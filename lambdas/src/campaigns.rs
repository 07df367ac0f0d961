//! Deployed campaigns in the store.

use chrono::{DateTime, Utc};
use promo_shared::campaign::Campaign;
use promo_shared::ids::CampaignId;
use promo_shared::keys;
use promo_shared::store::{Item, Query, Store, StoreError};
use serde_json::Value;

/// Writes (or replaces) a campaign, bumping its version. Returns the new version.
pub async fn deploy<S: Store + ?Sized>(store: &S, campaign: &Campaign, now: DateTime<Utc>) -> Result<i64, StoreError> {
    let key = keys::campaign(&campaign.id);
    let version = store.get(&key).await?.and_then(|i| i.get("version").and_then(Value::as_i64)).unwrap_or(0) + 1;
    let mut item = key.item();
    item.insert("type".into(), "campaign".into());
    item.insert("campaign".into(), serde_json::to_value(campaign).map_err(|e| StoreError::Invalid(e.to_string()))?);
    item.insert("version".into(), version.into());
    item.insert("deployed_at".into(), now.to_rfc3339().into());
    // Optimistic concurrency: two deploys racing cannot both claim the same version.
    let cond = if version == 1 {
        promo_shared::store::Cond::NotExists
    } else {
        promo_shared::store::Cond::eq("version", version - 1)
    };
    store.put(item, Some(cond)).await?;
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

fn parse(item: &Item) -> Result<Campaign, StoreError> {
    let v = item.get("campaign").cloned().unwrap_or(Value::Null);
    serde_json::from_value(v).map_err(|e| StoreError::Invalid(format!("stored campaign is invalid: {e}")))
}
