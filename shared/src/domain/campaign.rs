//! Campaigns: what a marketer describes in a campaign file and deploys.

use std::collections::BTreeSet;
use std::ops::Deref;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::coupon::CouponTemplate;
use crate::domain::error::ValidationError;
use crate::domain::ids::CampaignId;
use crate::domain::ids::CouponTemplateId;
use crate::domain::ids::RuleId;
use crate::domain::money::Amount;
use crate::domain::money::Currency;
use crate::domain::payment::PaymentEvent;
use crate::domain::payment::PaymentKind;

/// Where a campaign is in its life at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    /// Deployed, before `starts_at`.
    Scheduled,
    /// `starts_at <= now < ends_at`.
    Active,
    /// At or after `ends_at`.
    Ended,
    /// Within its window, but paused by an operator (`promoctl campaign pause`): no claims,
    /// no rewards and no promotion in the price book until it is resumed.
    Paused,
}

/// "Pay at least `min_payment` and get one `coupon`": at most once per payment and rule.
///
/// With a `stock`, only that many payments get the coupon ("the first 1,000 orders"): each
/// issuance takes one unit, and a cancelled or refunded payment whose coupon is still unused
/// gives its unit back. Without one, every qualifying payment gets it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardRule {
    pub id: RuleId,
    pub coupon: CouponTemplateId,
    #[serde(default)]
    pub min_payment: Amount,
    /// Coupons this rule issues in total; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<u32>,
    /// Stock counter items the stock is split over (hot-key relief, as for claims); 1 = no split.
    #[serde(default = "one_u16", skip_serializing_if = "is_one_u16")]
    pub shards: u16,
}

/// First-come-first-served claims of one coupon template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    pub coupon: CouponTemplateId,
    /// Coupons in total, over all shoppers.
    pub stock: u32,
    /// Coupons per shopper.
    #[serde(default = "one")]
    pub per_user_limit: u32,
    /// Stock counter items the total is split over (hot-key relief); 1 = no split.
    #[serde(default = "one_u16")]
    pub shards: u16,
}

/// A card (or other payment method) promotion the campaign advertises: a discount on the
/// amount actually paid with `method`, at least `min_payment`. It prices max-benefit reads and
/// quotes; the payment provider applies it at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentPromotionRule {
    pub id: RuleId,
    /// The payment method, e.g. `card:x`.
    pub method: String,
    pub discount: crate::domain::coupon::Discount,
    #[serde(default)]
    pub min_payment: Amount,
    /// Default: the campaign's window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
}

fn one() -> u32 {
    1
}

fn one_u16() -> u16 {
    1
}

fn is_one_u16(n: &u16) -> bool {
    *n == 1
}

/// Stock shards a campaign may have in all (its claim and its limited reward rules): a deploy
/// changes its stocks in one transaction, and DynamoDB's hold 100 items (the campaign, a
/// sold-out marker and the shards). 96 shards take about 48,000 claims a second.
pub const MAX_STOCK_SHARDS: u16 = 96;

/// Checks a stock split over `shards` items: `field` names the rule in the errors.
fn check_stock(field: &str, stock: u32, shards: u16, errors: &mut Vec<ValidationError>) {
    if stock == 0 {
        errors.push(ValidationError::new(format!("{field}.stock"), "must be at least 1"));
    }
    if shards == 0 || shards > MAX_STOCK_SHARDS || u32::from(shards) > stock.max(1) {
        errors.push(ValidationError::new(
            format!("{field}.shards"),
            format!("{shards} is not within 1..=min({MAX_STOCK_SHARDS}, stock)"),
        ));
    }
}

/// A campaign as written in a campaign file: every field parsed, cross-field rules not yet checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub id: CampaignId,
    pub name: String,
    pub currency: Currency,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub coupons: Vec<CouponTemplate>,
    #[serde(default)]
    pub rewards: Vec<RewardRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<ClaimRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_promotions: Vec<PaymentPromotionRule>,
    /// The campaign's email to its audience (`promoctl campaign trigger`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<crate::domain::email::EmailSpec>,
    /// Limited events sold under the campaign (`[[events]]`), each with its own window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<crate::domain::limited_event::EventSpec>,
}

/// A campaign whose every rule has been checked. Construct with [`Campaign::new`].
///
/// Besides its spec (what the file says), a deployed campaign carries one operational flag,
/// `paused`, that operators set and that never comes from a file: it is stored beside the
/// campaign (`campaigns::items::Deployed`) and not serialized with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CampaignSpec", into = "CampaignSpec")]
pub struct Campaign {
    spec: CampaignSpec,
    paused: bool,
}

/// All the problems of a campaign file, so a marketer can fix them in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid campaign: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct CampaignErrors(pub Vec<ValidationError>);

impl Campaign {
    pub fn new(spec: CampaignSpec) -> Result<Campaign, CampaignErrors> {
        let mut errors = Vec::new();
        if spec.name.trim().is_empty() {
            errors.push(ValidationError::new("name", "must not be empty"));
        }
        if spec.starts_at >= spec.ends_at {
            errors.push(ValidationError::new(
                "ends_at",
                format!("{} is not after starts_at {}", spec.ends_at.to_rfc3339(), spec.starts_at.to_rfc3339()),
            ));
        }
        let mut coupon_ids = BTreeSet::new();
        for (i, c) in spec.coupons.iter().enumerate() {
            if !coupon_ids.insert(c.id.clone()) {
                errors.push(ValidationError::new(format!("coupons[{i}].id"), format!("`{}` is defined twice", c.id)));
            }
            if let Err(e) = c.validate() {
                errors.push(e.within(format!("coupons[{i}]")));
            }
        }
        let mut rule_ids = BTreeSet::new();
        for (i, r) in spec.rewards.iter().enumerate() {
            if !rule_ids.insert(r.id.clone()) {
                errors.push(ValidationError::new(format!("rewards[{i}].id"), format!("`{}` is defined twice", r.id)));
            }
            if !coupon_ids.contains(&r.coupon) {
                errors.push(ValidationError::new(
                    format!("rewards[{i}].coupon"),
                    format!("`{}` is not one of this campaign's coupons", r.coupon),
                ));
            }
            match r.stock {
                Some(stock) => check_stock(&format!("rewards[{i}]"), stock, r.shards, &mut errors),
                None if r.shards != 1 => {
                    errors.push(ValidationError::new(format!("rewards[{i}].shards"), "needs a stock to split"))
                }
                None => {}
            }
        }
        if let Some(claim) = &spec.claim {
            if !coupon_ids.contains(&claim.coupon) {
                errors.push(ValidationError::new(
                    "claim.coupon",
                    format!("`{}` is not one of this campaign's coupons", claim.coupon),
                ));
            }
            check_stock("claim", claim.stock, claim.shards, &mut errors);
            if claim.per_user_limit == 0 {
                errors.push(ValidationError::new("claim.per_user_limit", "must be at least 1"));
            }
        }
        let total_shards: u32 = spec.claim.iter().map(|c| u32::from(c.shards)).sum::<u32>()
            + spec.rewards.iter().filter(|r| r.stock.is_some()).map(|r| u32::from(r.shards)).sum::<u32>();
        if total_shards > u32::from(MAX_STOCK_SHARDS) {
            errors.push(ValidationError::new(
                "shards",
                format!(
                    "the campaign's stocks are split over {total_shards} shards in all; at most {MAX_STOCK_SHARDS} \
                     fit in one atomic deploy"
                ),
            ));
        }
        let mut promotion_ids = BTreeSet::new();
        for (i, p) in spec.payment_promotions.iter().enumerate() {
            let at = format!("payment_promotions[{i}]");
            if !promotion_ids.insert(p.id.clone()) {
                errors.push(ValidationError::new(format!("{at}.id"), format!("`{}` is defined twice", p.id)));
            }
            if p.method.trim().is_empty() {
                errors.push(ValidationError::new(format!("{at}.method"), "must not be empty"));
            }
            if let Err(e) = p.discount.validate() {
                errors.push(e.within(at.clone()));
            }
            let (starts, ends) = (p.starts_at.unwrap_or(spec.starts_at), p.ends_at.unwrap_or(spec.ends_at));
            if starts >= ends {
                errors.push(ValidationError::new(format!("{at}.ends_at"), "is not after its starts_at"));
            }
        }
        if let Some(email) = &spec.email {
            errors.extend(email.validate());
        }
        let mut event_ids = BTreeSet::new();
        for (i, e) in spec.events.iter().enumerate() {
            if !event_ids.insert(e.id.clone()) {
                errors.push(ValidationError::new(format!("events[{i}].id"), format!("`{}` is defined twice", e.id)));
            }
            errors.extend(e.validate().into_iter().map(|v| v.within(format!("events[{i}]"))));
        }
        if spec.events.len() > crate::domain::limited_event::MAX_EVENTS_PER_CAMPAIGN {
            errors.push(ValidationError::new(
                "events",
                format!(
                    "{} events; a campaign holds at most {} (deploy the rest in another campaign)",
                    spec.events.len(),
                    crate::domain::limited_event::MAX_EVENTS_PER_CAMPAIGN
                ),
            ));
        }
        if errors.is_empty() { Ok(Campaign { spec, paused: false }) } else { Err(CampaignErrors(errors)) }
    }

    pub fn spec(&self) -> &CampaignSpec {
        &self.spec
    }

    /// The campaign with its operational pause set or cleared.
    pub fn with_paused(mut self, paused: bool) -> Campaign {
        self.paused = paused;
        self
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Where the campaign is at `now`: its window decides, and a pause holds an active (or
    /// not yet started) campaign; an ended campaign stays ended.
    pub fn status_at(&self, now: DateTime<Utc>) -> CampaignStatus {
        if now >= self.ends_at {
            CampaignStatus::Ended
        } else if self.paused {
            CampaignStatus::Paused
        } else if now < self.starts_at {
            CampaignStatus::Scheduled
        } else {
            CampaignStatus::Active
        }
    }

    pub fn coupon(&self, id: &CouponTemplateId) -> Option<&CouponTemplate> {
        self.coupons.iter().find(|c| &c.id == id)
    }

    /// The reward rules a payment earns: a paid payment, made while the campaign was active,
    /// in the campaign's currency, of at least the rule's minimum.
    pub fn rewards_for<'a>(&'a self, event: &'a PaymentEvent) -> impl Iterator<Item = &'a RewardRule> + 'a {
        let eligible = event.kind == PaymentKind::Paid
            && event.amount.currency == self.currency
            && self.status_at(event.occurred_at) == CampaignStatus::Active;
        self.rewards.iter().filter(move |r| eligible && event.amount.amount >= r.min_payment)
    }
}

impl Deref for Campaign {
    type Target = CampaignSpec;
    fn deref(&self) -> &CampaignSpec {
        &self.spec
    }
}

impl TryFrom<CampaignSpec> for Campaign {
    type Error = CampaignErrors;
    fn try_from(spec: CampaignSpec) -> Result<Self, Self::Error> {
        Campaign::new(spec)
    }
}

impl From<Campaign> for CampaignSpec {
    fn from(c: Campaign) -> CampaignSpec {
        c.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::at;
    use crate::testing::campaign_json;
    use crate::testing::paid_event;

    fn campaign() -> Campaign {
        serde_json::from_value(campaign_json()).unwrap()
    }

    #[test]
    fn status_follows_the_window_with_exact_boundaries() {
        let c = campaign();
        assert_eq!(c.status_at(at("2026-10-31T23:59:59Z")), CampaignStatus::Scheduled);
        assert_eq!(c.status_at(at("2026-11-01T00:00:00Z")), CampaignStatus::Active);
        assert_eq!(c.status_at(at("2026-11-30T23:59:59Z")), CampaignStatus::Active);
        assert_eq!(c.status_at(at("2026-12-01T00:00:00Z")), CampaignStatus::Ended);
        let paused = c.clone().with_paused(true);
        assert_eq!(paused.status_at(at("2026-10-31T23:59:59Z")), CampaignStatus::Paused);
        assert_eq!(paused.status_at(at("2026-11-15T00:00:00Z")), CampaignStatus::Paused);
        assert_eq!(paused.status_at(at("2026-12-01T00:00:00Z")), CampaignStatus::Ended, "ended stays ended");
        let json = serde_json::to_value(&paused).unwrap();
        assert!(json.get("paused").is_none(), "the pause is not part of the spec: {json}");
    }

    #[test]
    fn rewards_need_a_paid_payment_in_window_currency_and_minimum() {
        let c = campaign();
        assert_eq!(c.rewards_for(&paid_event("p1", 50_000, "2026-11-22T12:00:00Z")).count(), 1);
        assert_eq!(c.rewards_for(&paid_event("p1", 49_999, "2026-11-22T12:00:00Z")).count(), 0);
        assert_eq!(c.rewards_for(&paid_event("p1", 50_000, "2026-12-01T00:00:00Z")).count(), 0);
        let mut refunded = paid_event("p1", 90_000, "2026-11-22T12:00:00Z");
        refunded.kind = PaymentKind::Refunded;
        assert_eq!(c.rewards_for(&refunded).count(), 0);
        let mut usd = paid_event("p1", 90_000, "2026-11-22T12:00:00Z");
        usd.amount.currency = Currency::parse("USD").unwrap();
        assert_eq!(c.rewards_for(&usd).count(), 0);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut j = campaign_json();
        j["name"] = " ".into();
        j["ends_at"] = "2026-10-01T00:00:00Z".into();
        j["rewards"][0]["coupon"] = "nope".into();
        j["rewards"][0]["stock"] = 0.into();
        let mut unstocked = j["rewards"][0].clone();
        unstocked["id"] = "unstocked".into();
        unstocked["coupon"] = j["coupons"][0]["id"].clone();
        unstocked["stock"] = serde_json::Value::Null;
        unstocked["shards"] = 2.into();
        let mut oversharded = unstocked.clone();
        oversharded["id"] = "oversharded".into();
        oversharded["stock"] = 3.into();
        oversharded["shards"] = 4.into();
        j["rewards"].as_array_mut().unwrap().extend([unstocked, oversharded]);
        j["claim"] = serde_json::json!({"coupon": "nope", "stock": 0, "per_user_limit": 0, "shards": 0});
        let spec: CampaignSpec = serde_json::from_value(j).unwrap();
        let errs = Campaign::new(spec).unwrap_err().0;
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "ends_at",
                "rewards[0].coupon",
                "rewards[0].stock",
                "rewards[1].shards",
                "rewards[2].shards",
                "claim.coupon",
                "claim.stock",
                "claim.shards",
                "claim.per_user_limit",
            ]
        );
    }

    #[test]
    fn a_reward_stock_is_optional_and_left_out_when_absent() {
        let plain = campaign();
        assert_eq!((plain.rewards[0].stock, plain.rewards[0].shards), (None, 1));
        let written = serde_json::to_value(&plain).unwrap();
        assert!(written["rewards"][0].get("stock").is_none() && written["rewards"][0].get("shards").is_none());
        let mut j = campaign_json();
        j["rewards"][0]["stock"] = 1000.into();
        j["rewards"][0]["shards"] = 4.into();
        let limited: Campaign = serde_json::from_value(j).unwrap();
        assert_eq!((limited.rewards[0].stock, limited.rewards[0].shards), (Some(1000), 4));
        let back: Campaign = serde_json::from_value(serde_json::to_value(&limited).unwrap()).unwrap();
        assert_eq!(back, limited);
    }

    #[test]
    fn duplicates_and_unknown_fields_are_rejected() {
        let mut j = campaign_json();
        let dup = j["coupons"][0].clone();
        j["coupons"].as_array_mut().unwrap().push(dup);
        let spec: CampaignSpec = serde_json::from_value(j).unwrap();
        assert!(Campaign::new(spec).is_err());
        let mut k = campaign_json();
        k["surprise"] = 1.into();
        assert!(serde_json::from_value::<CampaignSpec>(k).is_err());
    }

    #[test]
    fn a_campaign_splits_its_stocks_over_at_most_96_shards() {
        let mut j = campaign_json();
        j["claim"]["stock"] = 10_000.into();
        j["claim"]["shards"] = 64.into();
        j["rewards"][0]["stock"] = 10_000.into();
        j["rewards"][0]["shards"] = 32.into();
        assert!(Campaign::new(serde_json::from_value(j.clone()).unwrap()).is_ok(), "64 + 32 = 96");
        j["rewards"][0]["shards"] = 33.into();
        let errs = Campaign::new(serde_json::from_value(j.clone()).unwrap()).unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "shards");
        assert!(errs[0].message.contains("97"), "{}", errs[0]);
        j["claim"]["shards"] = 97.into();
        let errs = Campaign::new(serde_json::from_value(j).unwrap()).unwrap_err().0;
        assert!(errs.iter().any(|e| e.field == "claim.shards"), "{errs:?}");
    }

    #[test]
    fn a_stored_campaign_is_validated_when_read_back() {
        let mut j = campaign_json();
        j["ends_at"] = "2020-01-01T00:00:00Z".into();
        assert!(serde_json::from_value::<Campaign>(j).is_err());
    }
}
