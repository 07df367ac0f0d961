//! The suppression list: `SUPPRESS#<address, lower-case>` / `SUPPRESS`, one item per address
//! that must not receive campaign email again — unsubscribed, bounced or complained. Senders
//! read it right before each send, so an entry takes effect for the next job.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::email::EmailAddress;
use crate::domain::ids::{CampaignId, UserId};
use crate::ports::store::{Item, Key, StoreError};

const KIND: &str = "suppression";

/// Why an address is suppressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Unsubscribed,
    Bounced,
    Complained,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unsubscribed => "unsubscribed",
            Reason::Bounced => "bounced",
            Reason::Complained => "complained",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub reason: Reason,
    pub at: DateTime<Utc>,
    /// The campaign whose email led to it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
}

pub fn key(address: &EmailAddress) -> Key {
    Key::new(format!("SUPPRESS#{}", address.expose().to_ascii_lowercase()), "SUPPRESS")
}

pub fn to_item(address: &EmailAddress, s: &Suppression) -> Result<Item, StoreError> {
    crate::items::to_item(&key(address), KIND, s)
}

pub fn from_item(item: &Item) -> Result<Suppression, StoreError> {
    crate::items::from_item(KIND, item)
}
