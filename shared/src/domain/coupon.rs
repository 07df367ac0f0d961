//! Coupon templates (what a campaign offers) and issued coupons (what a shopper holds).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::error::ValidationError;
use crate::domain::ids::CampaignId;
use crate::domain::ids::CouponTemplateId;
use crate::domain::ids::PaymentId;
use crate::domain::ids::ProductId;
use crate::domain::ids::RuleId;
use crate::domain::ids::UserId;
use crate::domain::money::Amount;
use crate::domain::money::Currency;

/// Where in the order a coupon applies: to one product line, or to the whole cart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponKind {
    Product,
    Cart,
}

/// How much a benefit takes off an amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Discount {
    /// `min(fixed, A)`.
    Fixed { fixed: Amount },
    /// `floor(A × percent / 100)` rounded down to the rounding unit, capped by `max`, then by `A`.
    Percent {
        percent: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<Amount>,
    },
}

impl Discount {
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Discount::Fixed { fixed } if fixed.minor() == 0 => {
                Err(ValidationError::new("discount.fixed", "must be greater than 0"))
            }
            Discount::Percent { percent, .. } if *percent == 0 || *percent > 100 => {
                Err(ValidationError::new("discount.percent", format!("{percent} is not within 1..=100")))
            }
            _ => Ok(()),
        }
    }

    /// The discount on `amount`, never more than `amount`. `rounding_unit` ≥ 1.
    pub fn on(&self, amount: Amount, rounding_unit: i64) -> Amount {
        let a = amount.minor();
        let unit = rounding_unit.max(1);
        let d = match *self {
            Discount::Fixed { fixed } => fixed.minor().min(a),
            Discount::Percent { percent, max } => {
                let raw = a * i64::from(percent) / 100;
                let rounded = raw - raw % unit;
                let capped = max.map_or(rounded, |m| rounded.min(m.minor()));
                capped.min(a)
            }
        };
        Amount::new(d).unwrap_or(Amount::ZERO)
    }
}

/// Product ids, brands and categories a coupon targets (or excludes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Targets {
    pub products: Vec<String>,
    pub brands: Vec<String>,
    pub categories: Vec<String>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.products.is_empty() && self.brands.is_empty() && self.categories.is_empty()
    }

    /// True when the product, its brand or its category is listed.
    pub fn matches(&self, product: &str, brand: &str, category: &str) -> bool {
        self.products.iter().any(|p| p == product)
            || self.brands.iter().any(|b| b == brand)
            || self.categories.iter().any(|c| c == category)
    }
}

/// Whether a coupon with these targets applies to a product (spec: "Applicability").
pub fn applies(applies_to: &Targets, excludes: &Targets, product: &str, brand: &str, category: &str) -> bool {
    if excludes.matches(product, brand, category) {
        return false;
    }
    applies_to.is_empty() || applies_to.matches(product, brand, category)
}

/// What a campaign hands out: the coupon's terms, not yet anyone's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponTemplate {
    pub id: CouponTemplateId,
    pub kind: CouponKind,
    pub discount: Discount,
    #[serde(default)]
    pub min_order: Amount,
    #[serde(default)]
    pub applies_to: Targets,
    #[serde(default)]
    pub excludes: Targets,
    #[serde(default)]
    pub stackable: bool,
    /// An issued coupon is valid this many days from issuance; without it, until the
    /// campaign ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_days: Option<u32>,
}

impl CouponTemplate {
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.discount.validate()?;
        if let Some(0) = self.valid_days {
            return Err(ValidationError::new("valid_days", "must be at least 1"));
        }
        Ok(())
    }
}

/// A human-friendly, unguessable coupon code: 12 symbols of a 32-letter alphabet without
/// look-alikes (no 0/O, 1/I), grouped `XXXX-XXXX-XXXX`: 60 bits of entropy.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CouponCode(String);

impl CouponCode {
    /// Digits 2–9 and the letters without I and O: 32 symbols, none confusable.
    pub const ALPHABET: [u8; 32] = *b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    const SYMBOLS: usize = 12;

    /// Builds a code from 12 random bytes (5 bits of each are used, so the mapping is uniform).
    pub fn from_random(bytes: &[u8; 12]) -> CouponCode {
        let mut s = String::with_capacity(14);
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            s.push(char::from(Self::ALPHABET[usize::from(*b) % 32]));
        }
        CouponCode(s)
    }

    pub fn parse(s: &str) -> Result<CouponCode, ValidationError> {
        let normalized: String = s.trim().to_ascii_uppercase();
        let symbols: Vec<u8> = normalized.bytes().filter(|b| *b != b'-').collect();
        let valid = symbols.len() == Self::SYMBOLS
            && symbols.iter().all(|b| Self::ALPHABET.contains(b))
            && normalized.len() == Self::SYMBOLS + 2
            && normalized.as_bytes()[4] == b'-'
            && normalized.as_bytes()[9] == b'-';
        if !valid {
            return Err(ValidationError::new("code", format!("`{s}` is not a coupon code (XXXX-XXXX-XXXX)")));
        }
        Ok(CouponCode(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CouponCode({})", self.0)
    }
}

impl<'de> Deserialize<'de> for CouponCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CouponCode::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The life of an issued coupon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponStatus {
    Issued,
    Used,
    Revoked,
}

/// Why a coupon was issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IssueSource {
    /// A reward for a payment, under one rule of a campaign.
    PaymentReward { payment_id: PaymentId, rule_id: RuleId },
    /// A first-come-first-served claim.
    Claim { claim_no: u32 },
}

/// A coupon in a shopper's wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCoupon {
    pub code: CouponCode,
    pub user_id: UserId,
    pub campaign_id: CampaignId,
    pub template: CouponTemplate,
    pub currency: Currency,
    pub status: CouponStatus,
    pub source: IssueSource,
    pub issued_at: DateTime<Utc>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl IssuedCoupon {
    /// Live at `now` (spec: `starts_at <= now < ends_at`) and not used or revoked.
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.status == CouponStatus::Issued && self.starts_at <= now && now < self.ends_at
    }

    /// Whether it applies to a product.
    pub fn applies_to(&self, product: &ProductId, brand: &str, category: &str) -> bool {
        applies(&self.template.applies_to, &self.template.excludes, product.as_str(), brand, category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amt(v: i64) -> Amount {
        Amount::new(v).unwrap()
    }

    #[test]
    fn fixed_discount_is_capped_by_the_amount() {
        let d = Discount::Fixed { fixed: amt(5000) };
        assert_eq!(d.on(amt(12000), 10), amt(5000));
        assert_eq!(d.on(amt(3000), 10), amt(3000));
    }

    #[test]
    fn percent_discount_floors_rounds_then_caps() {
        let d = Discount::Percent { percent: 15, max: Some(amt(7000)) };
        // 52000 × 15% = 7800 → cap 7000
        assert_eq!(d.on(amt(52000), 10), amt(7000));
        // 12345 × 15% = 1851.75 → floor 1851 → unit 10 → 1850
        assert_eq!(d.on(amt(12345), 10), amt(1850));
        let uncapped = Discount::Percent { percent: 100, max: None };
        assert_eq!(uncapped.on(amt(999), 1), amt(999));
        assert_eq!(uncapped.on(amt(999), 100), amt(900));
    }

    #[test]
    fn discounts_validate() {
        assert!(Discount::Fixed { fixed: amt(0) }.validate().is_err());
        assert!(Discount::Percent { percent: 0, max: None }.validate().is_err());
        assert!(Discount::Percent { percent: 101, max: None }.validate().is_err());
        assert!(Discount::Percent { percent: 100, max: None }.validate().is_ok());
    }

    #[test]
    fn discount_json_forms() {
        let d: Discount = serde_json::from_str(r#"{"percent":15,"max":7000}"#).unwrap();
        assert_eq!(d, Discount::Percent { percent: 15, max: Some(amt(7000)) });
        let f: Discount = serde_json::from_str(r#"{"fixed":3000}"#).unwrap();
        assert_eq!(f, Discount::Fixed { fixed: amt(3000) });
        assert!(serde_json::from_str::<Discount>(r#"{"fixed":-3}"#).is_err());
        assert!(serde_json::from_str::<Discount>(r#"{"bogus":3}"#).is_err());
    }

    #[test]
    fn applicability_and_exclusions() {
        let none = Targets::default();
        let brand = Targets { brands: vec!["b-1".into()], ..Targets::default() };
        let excl = Targets { categories: vec!["c-9".into()], ..Targets::default() };
        assert!(applies(&none, &none, "p", "b", "c"));
        assert!(applies(&brand, &none, "p", "b-1", "c"));
        assert!(!applies(&brand, &none, "p", "b-2", "c"));
        assert!(!applies(&none, &excl, "p", "b", "c-9"));
        assert!(!applies(&brand, &excl, "p", "b-1", "c-9"));
    }

    #[test]
    fn coupon_codes_are_grouped_and_parse_back() {
        let code = CouponCode::from_random(&[0, 1, 2, 3, 31, 32, 33, 255, 100, 7, 8, 9]);
        assert_eq!(code.as_str().len(), 14);
        assert_eq!(CouponCode::parse(code.as_str()).unwrap(), code);
        assert_eq!(CouponCode::parse(&code.as_str().to_lowercase()).unwrap(), code);
        assert!(CouponCode::parse("0000-0000-0000").is_err());
        assert!(CouponCode::parse("ABCD-EFGH").is_err());
        let unique: std::collections::BTreeSet<u8> = CouponCode::ALPHABET.iter().copied().collect();
        assert_eq!(unique.len(), 32);
    }
}
