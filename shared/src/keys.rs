//! The single-table layout: every key the platform writes, in one place.
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! | --- | --- | --- | --- |
//! | campaign | `CAMPAIGNS` | `CAMPAIGN#<campaign>` | |
//! | claim stock shard | `CAMPAIGN#<campaign>` | `STOCK#<shard>` | |
//! | wallet coupon | `USER#<user>` | `COUPON#<code>` | `PAYMENT#<payment>` / `COUPON#<code>` (rewards) |
//! | coupon code (uniqueness) | `CODE#<code>` | `CODE` | |
//! | payment reward marker | `PAYMENT#<payment>` | `REWARD#<campaign>#<rule>` | |
//! | idempotency record | `IDEMP#<key>` | `IDEMP` | |
//! | transaction client token (DynamoDB adapter) | `TXTOKEN#<token>` | `TXTOKEN` | |

use crate::coupon::CouponCode;
use crate::ids::{CampaignId, PaymentId, RuleId, UserId};
use crate::store::Key;

pub const CAMPAIGNS_PK: &str = "CAMPAIGNS";
pub const CAMPAIGN_SK_PREFIX: &str = "CAMPAIGN#";
pub const COUPON_SK_PREFIX: &str = "COUPON#";

pub fn campaign(id: &CampaignId) -> Key {
    Key::new(CAMPAIGNS_PK, format!("{CAMPAIGN_SK_PREFIX}{id}"))
}

pub fn stock_shard(id: &CampaignId, shard: u16) -> Key {
    Key::new(format!("CAMPAIGN#{id}"), format!("STOCK#{shard:04}"))
}

pub fn wallet_partition(user: &UserId) -> String {
    format!("USER#{user}")
}

pub fn wallet_coupon(user: &UserId, code: &CouponCode) -> Key {
    Key::new(wallet_partition(user), format!("{COUPON_SK_PREFIX}{code}"))
}

pub fn coupon_code(code: &CouponCode) -> Key {
    Key::new(format!("CODE#{code}"), "CODE")
}

pub fn payment_partition(payment: &PaymentId) -> String {
    format!("PAYMENT#{payment}")
}

pub fn payment_reward(payment: &PaymentId, campaign: &CampaignId, rule: &RuleId) -> Key {
    Key::new(payment_partition(payment), format!("REWARD#{campaign}#{rule}"))
}
