//! The single-table layout: every key the platform writes, in one place.
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! | --- | --- | --- | --- |
//! | campaign | `CAMPAIGNS` | `CAMPAIGN#<campaign>` | |
//! | claim stock shard | `CAMPAIGN#<campaign>#STOCK#<shard>` | `STOCK` | |
//! | reward rule stock shard | `CAMPAIGN#<campaign>#REWARD#<rule>#STOCK#<shard>` | `STOCK` | |
//! | claim campaign sold out (price book republished once) | `CAMPAIGN#<campaign>#SOLDOUT` | `SOLDOUT` | |
//! | a shopper's claims of a campaign | `USER#<user>` | `CLAIMS#<campaign>` | |
//! | wallet coupon | `USER#<user>` | `COUPON#<code>` | |
//! | coupon code (uniqueness) | `CODE#<code>` | `CODE` | |
//! | payment reward marker | `PAYMENT#<payment>` | `REWARD#<campaign>#<rule>` | |
//! | payment state (cancelled/refunded) | `PAYMENT#<payment>` | `STATE` | |
//! | idempotency record | `IDEMP#<key>` | `IDEMP` | |
//! | transaction client token (DynamoDB adapter) | `TXTOKEN#<token>` | `TXTOKEN` | |

use crate::domain::coupon::CouponCode;
use crate::domain::ids::CampaignId;
use crate::domain::ids::PaymentId;
use crate::domain::ids::RuleId;
use crate::domain::ids::UserId;
use crate::ports::store::Key;

pub const CAMPAIGNS_PK: &str = "CAMPAIGNS";
pub const CAMPAIGN_SK_PREFIX: &str = "CAMPAIGN#";
pub const COUPON_SK_PREFIX: &str = "COUPON#";

pub fn campaign(id: &CampaignId) -> Key {
    Key::new(CAMPAIGNS_PK, format!("{CAMPAIGN_SK_PREFIX}{id}"))
}

/// One shard of a campaign's claim stock. Every shard is its own partition key, so DynamoDB
/// can place shards on different partitions: the point of sharding a hot counter.
pub fn stock_shard(id: &CampaignId, shard: u16) -> Key {
    Key::new(format!("CAMPAIGN#{id}#STOCK#{shard:04}"), "STOCK")
}

/// One shard of a reward rule's stock (a rule with a `stock`), a partition of its own as a
/// claim stock shard is.
pub fn reward_stock_shard(id: &CampaignId, rule: &RuleId, shard: u16) -> Key {
    Key::new(format!("CAMPAIGN#{id}#REWARD#{rule}#STOCK#{shard:04}"), "STOCK")
}

/// Marks a claim campaign whose stock is all taken, so that one claimer (of however many
/// find it empty at once) republishes the price book without its coupon.
pub fn sold_out(id: &CampaignId) -> Key {
    Key::new(format!("CAMPAIGN#{id}#SOLDOUT"), "SOLDOUT")
}

/// How many coupons a shopper has claimed from a campaign. It lives in the shopper's own
/// partition (beside the wallet), so claims of many shoppers spread over many partitions.
pub fn claim_counter(user: &UserId, campaign: &CampaignId) -> Key {
    Key::new(wallet_partition(user), format!("{CLAIMS_SK_PREFIX}{campaign}"))
}

pub const CLAIMS_SK_PREFIX: &str = "CLAIMS#";

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

pub const REWARD_SK_PREFIX: &str = "REWARD#";

pub fn payment_state(payment: &PaymentId) -> Key {
    Key::new(payment_partition(payment), "STATE")
}

pub fn payment_reward(payment: &PaymentId, campaign: &CampaignId, rule: &RuleId) -> Key {
    Key::new(payment_partition(payment), format!("{REWARD_SK_PREFIX}{campaign}#{rule}"))
}

pub const PRODUCTS_PK: &str = "PRODUCTS";
pub const PRODUCT_SK_PREFIX: &str = "PRODUCT#";

/// A catalog product, as published for price reads. One partition holds them all so they
/// can be listed for export to the edge's KV (reads at the edge come from KV).
pub fn product(id: &str) -> Key {
    Key::new(PRODUCTS_PK, format!("{PRODUCT_SK_PREFIX}{id}"))
}

/// The price book: the public offers of the deployed campaigns (rebuilt on every deploy).
pub fn price_book() -> Key {
    Key::new("PRICEBOOK", "CURRENT")
}

pub const MILEAGE_SK: &str = "MILEAGE";

/// A shopper's mileage balance.
pub fn mileage(user: &UserId) -> Key {
    Key::new(wallet_partition(user), MILEAGE_SK)
}
