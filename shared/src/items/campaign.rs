//! The campaign item: the validated campaign as deployed, its version and when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::campaign::Campaign;
use crate::domain::ids::CampaignId;
use crate::ports::store::{Cond, Item, Key, Query, StoreError, TxOp};

pub const PARTITION: &str = "CAMPAIGNS";
pub const SK_PREFIX: &str = "CAMPAIGN#";
const KIND: &str = "campaign";

pub fn key(id: &CampaignId) -> Key {
    Key::new(PARTITION, format!("{SK_PREFIX}{id}"))
}

/// Every deployed campaign.
pub fn all() -> Query {
    Query::partition(PARTITION).prefix(SK_PREFIX)
}

/// A deployed campaign and the version its deploy wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    pub campaign: Campaign,
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<DateTime<Utc>>,
}

impl Deployed {
    pub fn to_item(&self) -> Result<Item, StoreError> {
        super::to_item(&key(&self.campaign.id), KIND, self)
    }

    pub fn from_item(item: &Item) -> Result<Deployed, StoreError> {
        super::from_item(KIND, item)
    }

    /// The put of a deploy: it commits only over the version it read (`version - 1`; none
    /// for a first deploy), so two deploys cannot both claim one version.
    pub fn put(&self) -> Result<TxOp, StoreError> {
        let cond = if self.version == 1 { Cond::NotExists } else { Cond::eq("version", self.version - 1) };
        Ok(TxOp::Put { item: self.to_item()?, cond: Some(cond) })
    }
}

/// A check that campaign `id` is still at `version` (the layout read from it still holds).
pub fn still_at(id: &CampaignId, version: i64) -> TxOp {
    TxOp::Check { key: key(id), cond: Cond::eq("version", version) }
}
