//! Payment reward markers: one per (payment, campaign, rule) that issued a coupon, put under
//! "must not exist" — the exactly-once condition of rewards. A marker names the coupon it
//! issued, what a partial refund judges the reward by, and for a limited rule the stock
//! shard its unit came from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::coupon::CouponCode;
use crate::domain::ids::{CampaignId, PaymentId, RuleId, UserId};
use crate::ports::store::{Item, ItemExt, Key, Query, StoreError};

pub const SK_PREFIX: &str = "REWARD#";
const KIND: &str = "payment_reward";

pub fn partition(payment: &PaymentId) -> String {
    format!("PAYMENT#{payment}")
}

pub fn key(payment: &PaymentId, campaign: &CampaignId, rule: &RuleId) -> Key {
    Key::new(partition(payment), format!("{SK_PREFIX}{campaign}#{rule}"))
}

/// Every reward marker of a payment.
pub fn of_payment(payment: &PaymentId) -> Query {
    Query::partition(partition(payment)).prefix(SK_PREFIX)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardMarker {
    pub campaign_id: CampaignId,
    pub rule_id: RuleId,
    pub code: CouponCode,
    pub user_id: UserId,
    pub issued_at: DateTime<Utc>,
    /// The rule's `min_payment` when it was issued (absent on markers written before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_payment: Option<i64>,
    /// The stock shard its unit came from (limited rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_shard: Option<u16>,
}

impl RewardMarker {
    pub fn to_item(&self, payment: &PaymentId) -> Result<Item, StoreError> {
        crate::items::to_item(&key(payment, &self.campaign_id, &self.rule_id), KIND, self)
    }

    /// The coupon a marker read back names (all a replay needs of it).
    pub fn code_of(item: &Item) -> Result<CouponCode, StoreError> {
        let code = item.str_attr("code").ok_or_else(|| StoreError::Invalid("a reward marker without `code`".into()))?;
        CouponCode::parse(code).map_err(|e| StoreError::Invalid(format!("a reward marker's code: {e}")))
    }

    /// A marker read back; one written before markers named their campaign and rule takes
    /// them from its sort key (`REWARD#<campaign>#<rule>`; ids never contain `#`).
    pub fn from_item(item: &Item) -> Result<RewardMarker, StoreError> {
        let mut item = item.clone();
        if !item.contains_key("campaign_id")
            && let Some((c, r)) = item
                .str_attr("sk")
                .and_then(|sk| sk.strip_prefix(SK_PREFIX)?.split_once('#'))
                .map(|(c, r)| (c.to_string(), r.to_string()))
        {
            item.insert("campaign_id".into(), c.into());
            item.insert("rule_id".into(), r.into());
        }
        crate::items::from_item(KIND, &item)
    }
}
