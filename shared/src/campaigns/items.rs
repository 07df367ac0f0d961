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

/// A deployed campaign, the version its last change wrote, who made it and when, and the
/// operator's pause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    pub campaign: Campaign,
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_by: Option<String>,
    /// Set while an operator holds the campaign paused; a deploy keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Paused>,
}

/// Who paused a campaign, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    pub at: DateTime<Utc>,
    pub by: String,
}

impl Deployed {
    pub fn to_item(&self) -> Result<Item, StoreError> {
        crate::items::to_item(&key(&self.campaign.id), KIND, self)
    }

    /// The deployed campaign, its `paused` flag set from the stored pause.
    pub fn from_item(item: &Item) -> Result<Deployed, StoreError> {
        let mut d: Deployed = crate::items::from_item(KIND, item)?;
        d.campaign = d.campaign.with_paused(d.paused.is_some());
        Ok(d)
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

/// One line of a campaign's history: every change (deploy, pause, resume, end) writes one, in
/// the change's own transaction, keyed by the version it made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub campaign: CampaignId,
    pub version: i64,
    pub action: ChangeAction,
    pub at: DateTime<Utc>,
    pub by: String,
    /// What a deploy changed, one line per difference (empty for other actions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// The campaign as a deploy wrote it, so it can be deployed again (`campaign rollback`);
    /// none for other actions and for history written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<Campaign>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Deploy,
    Pause,
    Resume,
    End,
}

const CHANGE_KIND: &str = "campaign_change";
const HISTORY_PREFIX: &str = "CAMPAIGN_HISTORY#";

pub fn change_key(id: &CampaignId, version: i64) -> Key {
    Key::new(format!("{HISTORY_PREFIX}{id}"), format!("V#{version:010}"))
}

/// A campaign's history, oldest first.
pub fn history(id: &CampaignId) -> Query {
    Query::partition(format!("{HISTORY_PREFIX}{id}")).prefix("V#")
}

impl Change {
    pub fn put(&self) -> Result<TxOp, StoreError> {
        let item = crate::items::to_item(&change_key(&self.campaign, self.version), CHANGE_KIND, self)?;
        Ok(TxOp::Put { item, cond: Some(Cond::NotExists) })
    }

    pub fn from_item(item: &Item) -> Result<Change, StoreError> {
        crate::items::from_item(CHANGE_KIND, item)
    }
}
