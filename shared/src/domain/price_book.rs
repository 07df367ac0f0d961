//! What a product page's max-benefit price is computed from, and how such answers are keyed
//! in a shared cache.
//!
//! - [`CatalogProduct`]: a product as the shop publishes it (`promoctl products publish`).
//! - [`PriceBook`]: the public offers of the deployed campaigns that have not ended — each
//!   campaign's claimable coupon (public: any shopper can still download it; left out once the
//!   campaign is sold out) and its payment promotions — plus the quote parameters (rounding
//!   unit, mileage policy). Campaign deploy rebuilds and republishes it, and so does the claim
//!   that finds a campaign sold out.
//! - [`Personal`]: what a signed-in shopper adds: the coupons they own, their mileage and the
//!   claims they have made (a coupon claimed up to its limit is not offered to them again).
//!
//! [`quote_request`] turns these into the spec's quote request for the pricing engine.
//! [`public_cache_key`] digests exactly the inputs a product's public answer depends on — the
//! product and the offers that can apply to it — so a deploy that changes offers for one brand
//! changes the keys of that brand's products only: their cached answers are never read again
//! (purged), everything else stays cached.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::campaign::Campaign;

use crate::domain::campaign::CampaignStatus;
use crate::domain::coupon::CouponStatus;
use crate::domain::coupon::Discount;
use crate::domain::coupon::IssuedCoupon;
use crate::domain::coupon::Targets;
use crate::domain::coupon::applies;
use crate::domain::error::ValidationError;
use crate::domain::ids::CampaignId;
use crate::domain::ids::ProductId;
use crate::domain::money::Amount;
use crate::domain::money::Currency;
use crate::domain::pricing::request::CouponSpec;
use crate::domain::pricing::request::DiscountSpec;
use crate::domain::pricing::request::MileageSpec;
use crate::domain::pricing::request::PaymentPromotionSpec;
use crate::domain::pricing::request::ProductSpec;
use crate::domain::pricing::request::QuoteRequest;

/// The key the Worker reads the price book under in its KV namespace.
pub const PRICE_BOOK_KV_KEY: &str = "price-book";

/// A product as the shop publishes it to the edge, parsed once into the domain's types: a
/// valid id, labels of 1..=128 characters, amounts in range and `sale_price <= list_price`.
/// Anything else is refused where it enters (`promoctl products publish`, a stored or KV
/// copy read back), never on a product page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CatalogProductWire", into = "CatalogProductWire")]
pub struct CatalogProduct {
    pub id: ProductId,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub currency: Currency,
    pub list_price: Amount,
    pub sale_price: Amount,
}

/// The published form of a [`CatalogProduct`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogProductWire {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    currency: Currency,
    list_price: i64,
    sale_price: i64,
}

impl TryFrom<CatalogProductWire> for CatalogProduct {
    type Error = ValidationError;

    fn try_from(w: CatalogProductWire) -> Result<Self, Self::Error> {
        let label = |field: &str, s: Option<String>| match s {
            Some(s) if s.trim().is_empty() || s.len() > 128 => {
                Err(ValidationError::new(field, "must be 1..=128 characters and not blank"))
            }
            s => Ok(s),
        };
        let amount = |field: &str, v: i64| Amount::new(v).map_err(|e| ValidationError::new(field, e.message));
        let product = CatalogProduct {
            id: ProductId::parse(w.id)?,
            brand: label("brand", w.brand)?,
            category: label("category", w.category)?,
            currency: w.currency,
            list_price: amount("list_price", w.list_price)?,
            sale_price: amount("sale_price", w.sale_price)?,
        };
        if product.sale_price > product.list_price {
            return Err(ValidationError::new(
                "sale_price",
                format!("{} is above list_price {}", product.sale_price, product.list_price),
            ));
        }
        Ok(product)
    }
}

impl From<CatalogProduct> for CatalogProductWire {
    fn from(p: CatalogProduct) -> Self {
        CatalogProductWire {
            id: p.id.as_str().to_string(),
            brand: p.brand,
            category: p.category,
            currency: p.currency,
            list_price: p.list_price.minor(),
            sale_price: p.sale_price.minor(),
        }
    }
}

/// How mileage may be spent (the shop's policy; the balance is the shopper's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MileagePolicy {
    pub max_ratio_percent: i64,
    pub min_use: i64,
    pub unit: i64,
}

/// A public offer's currency travels with it: a KRW coupon never prices a USD product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicCoupon {
    pub currency: Currency,
    pub campaign_id: String,
    pub template_id: String,
    pub coupon: CouponSpec,
    /// Claims a shopper may make of it (the campaign's `per_user_limit`): a signed-in shopper
    /// who has made that many is not offered it again. Absent in books published before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user_limit: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicPaymentPromotion {
    pub currency: Currency,
    pub promotion: PaymentPromotionSpec,
}

/// The public offers product pages are priced with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceBook {
    /// The quotes' `rounding_unit` (≥ 1).
    pub rounding_unit: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mileage: Option<MileagePolicy>,
    pub coupons: Vec<PublicCoupon>,
    pub payment_promotions: Vec<PublicPaymentPromotion>,
}

/// A signed-in shopper's own coupons (issued, not used or revoked), mileage balance and how
/// many coupons they have claimed per campaign.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Personal {
    pub coupons: Vec<IssuedCoupon>,
    pub mileage_balance: i64,
    /// Campaign id → the shopper's claims of it (used, revoked or still held).
    pub claims: BTreeMap<String, u32>,
}

fn discount_spec(d: &Discount) -> DiscountSpec {
    match d {
        Discount::Fixed { fixed } => DiscountSpec { fixed: Some(fixed.minor()), percent: None, max: None },
        Discount::Percent { percent, max } => {
            DiscountSpec { fixed: None, percent: Some(i64::from(*percent)), max: max.map(|m| m.minor()) }
        }
    }
}

impl PriceBook {
    /// The book as one entry of a KV bulk write (`{"key", "value"}`, the value JSON text),
    /// as Cloudflare's bulk API and `wrangler kv bulk put` take it.
    pub fn kv_entry(&self) -> serde_json::Value {
        serde_json::json!({"key": PRICE_BOOK_KV_KEY, "value": serde_json::to_string(self).unwrap_or_default()})
    }

    /// The public offers of `campaigns` that have not ended at `now` (scheduled ones included:
    /// their start is a `valid_until` of the answers). The claimable coupon of a campaign in
    /// `sold_out` is left out — nobody can download it any more — its payment promotions stay.
    pub fn from_campaigns(
        campaigns: &[Campaign],
        sold_out: &[CampaignId],
        now: DateTime<Utc>,
        rounding_unit: i64,
        mileage: Option<MileagePolicy>,
    ) -> PriceBook {
        let mut book = PriceBook { rounding_unit: rounding_unit.max(1), mileage, ..PriceBook::default() };
        for c in
            campaigns.iter().filter(|c| !matches!(c.status_at(now), CampaignStatus::Ended | CampaignStatus::Paused))
        {
            let claimable = c.claim.as_ref().filter(|_| !sold_out.contains(&c.id));
            if let Some((claim, t)) = claimable.and_then(|claim| Some((claim, c.coupon(&claim.coupon)?))) {
                book.coupons.push(PublicCoupon {
                    currency: c.currency,
                    campaign_id: c.id.to_string(),
                    template_id: t.id.to_string(),
                    coupon: CouponSpec {
                        id: format!("{}:{}", c.id, t.id),
                        kind: t.kind,
                        discount: discount_spec(&t.discount),
                        min_order: Some(t.min_order.minor()),
                        starts_at: c.starts_at.to_rfc3339(),
                        ends_at: c.ends_at.to_rfc3339(),
                        applies_to: t.applies_to.clone(),
                        excludes: t.excludes.clone(),
                        stackable: t.stackable,
                        owned: false,
                    },
                    per_user_limit: Some(claim.per_user_limit),
                });
            }
            for p in &c.payment_promotions {
                book.payment_promotions.push(PublicPaymentPromotion {
                    currency: c.currency,
                    promotion: PaymentPromotionSpec {
                        id: format!("{}:{}", c.id, p.id),
                        method: p.method.clone(),
                        discount: discount_spec(&p.discount),
                        min_payment: Some(p.min_payment.minor()),
                        starts_at: p.starts_at.unwrap_or(c.starts_at).to_rfc3339(),
                        ends_at: p.ends_at.unwrap_or(c.ends_at).to_rfc3339(),
                    },
                });
            }
        }
        book
    }

    /// The public coupons that can apply to `product` (same currency, targets match; their
    /// windows are the engine's business).
    pub fn coupons_for<'a>(&'a self, product: &'a CatalogProduct) -> impl Iterator<Item = &'a PublicCoupon> + 'a {
        self.coupons.iter().filter(move |c| {
            c.currency == product.currency && targets_apply(&c.coupon.applies_to, &c.coupon.excludes, product)
        })
    }

    pub fn promotions_for<'a>(
        &'a self,
        product: &'a CatalogProduct,
    ) -> impl Iterator<Item = &'a PaymentPromotionSpec> + 'a {
        self.payment_promotions.iter().filter(move |p| p.currency == product.currency).map(|p| &p.promotion)
    }
}

fn targets_apply(applies_to: &Targets, excludes: &Targets, p: &CatalogProduct) -> bool {
    applies(applies_to, excludes, p.id.as_str(), p.brand.as_deref().unwrap_or(""), p.category.as_deref().unwrap_or(""))
}

/// The quote request for one unit of `product` at `now`: the public offers that can apply,
/// and with `personal` the shopper's own live coupons and mileage. A public coupon is left
/// out for a shopper who already owns its template (the owned one is priced instead) or has
/// claimed it as often as the campaign allows: they cannot download it again. An offer the
/// quote would refuse (a stored coupon whose window ends before it starts, say) is left out
/// rather than failing the whole read: one bad coupon in a wallet never costs a shopper the
/// page.
pub fn quote_request(
    product: &CatalogProduct,
    book: &PriceBook,
    now: DateTime<Utc>,
    personal: Option<&Personal>,
) -> QuoteRequest {
    quote_request_for(product, book, now, personal, 1)
}

/// [`quote_request`] for `quantity` units of `product` (a product page's quantity picker):
/// the discounts' caps and minimums apply to the line as a whole.
pub fn quote_request_for(
    product: &CatalogProduct,
    book: &PriceBook,
    now: DateTime<Utc>,
    personal: Option<&Personal>,
    quantity: u32,
) -> QuoteRequest {
    let owned: Vec<&IssuedCoupon> = personal
        .map(|p| {
            p.coupons
                .iter()
                .filter(|c| c.status == CouponStatus::Issued && c.currency == product.currency)
                .filter(|c| targets_apply(&c.template.applies_to, &c.template.excludes, product))
                .collect()
        })
        .unwrap_or_default();
    let claims_left = |c: &PublicCoupon| match (personal.and_then(|p| p.claims.get(&c.campaign_id)), c.per_user_limit) {
        (Some(made), Some(limit)) => *made < limit,
        _ => true,
    };
    let mut coupons: Vec<CouponSpec> = book
        .coupons_for(product)
        .filter(|c| {
            !owned.iter().any(|o| o.campaign_id.as_str() == c.campaign_id && o.template.id.as_str() == c.template_id)
        })
        .filter(|c| claims_left(c))
        .map(|c| c.coupon.clone())
        .collect();
    coupons.extend(owned.iter().map(|c| CouponSpec {
        id: c.code.as_str().to_string(),
        kind: c.template.kind,
        discount: discount_spec(&c.template.discount),
        min_order: Some(c.template.min_order.minor()),
        starts_at: c.starts_at.to_rfc3339(),
        ends_at: c.ends_at.to_rfc3339(),
        applies_to: c.template.applies_to.clone(),
        excludes: c.template.excludes.clone(),
        stackable: c.template.stackable,
        owned: true,
    }));
    coupons.retain(CouponSpec::is_valid);
    let mileage = match (personal, book.mileage) {
        (Some(p), Some(policy)) if p.mileage_balance > 0 => Some(MileageSpec {
            balance: p.mileage_balance,
            max_ratio_percent: Some(policy.max_ratio_percent),
            min_use: Some(policy.min_use),
            unit: Some(policy.unit),
        }),
        _ => None,
    };
    QuoteRequest {
        currency: product.currency.code().to_string(),
        now: now.to_rfc3339(),
        rounding_unit: Some(book.rounding_unit),
        quantity: Some(i64::from(quantity.max(1))),
        product: Some(ProductSpec {
            id: product.id.as_str().to_string(),
            brand: product.brand.clone(),
            category: product.category.clone(),
            list_price: Some(product.list_price.minor()),
            sale_price: product.sale_price.minor(),
        }),
        lines: None,
        coupons,
        payment_promotions: book.promotions_for(product).filter(|p| p.is_valid()).cloned().collect(),
        mileage,
    }
}

/// The shared-cache key of `product`'s public answer: a digest of the product, the quote
/// parameters and the offers that can apply to it (not of `now`: an answer is stored for
/// no longer than its `valid_until`, when the live offers change).
pub fn public_cache_key(product: &CatalogProduct, book: &PriceBook) -> String {
    #[derive(Serialize)]
    struct Inputs<'a> {
        product: &'a CatalogProduct,
        rounding_unit: i64,
        coupons: Vec<&'a CouponSpec>,
        promotions: Vec<&'a PaymentPromotionSpec>,
    }
    let inputs = Inputs {
        product,
        rounding_unit: book.rounding_unit,
        coupons: book.coupons_for(product).map(|c| &c.coupon).collect(),
        promotions: book.promotions_for(product).collect(),
    };
    let json = serde_json::to_vec(&inputs).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..16])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::testing::at;

    fn campaign(json: serde_json::Value) -> Campaign {
        Campaign::new(serde_json::from_value(json).unwrap()).unwrap()
    }

    fn product(brand: &str) -> CatalogProduct {
        CatalogProduct {
            id: ProductId::parse("p-1").unwrap(),
            brand: Some(brand.into()),
            category: Some("c-1".into()),
            currency: Currency::parse("KRW").unwrap(),
            list_price: Amount::new(59000).unwrap(),
            sale_price: Amount::new(52000).unwrap(),
        }
    }

    fn spec_like() -> Campaign {
        campaign(serde_json::json!({
            "id": "nov", "name": "November", "currency": "KRW",
            "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
            "coupons": [{"id": "welcome", "kind": "product", "discount": {"percent": 15, "max": 7000},
                         "min_order": 30000, "applies_to": {"brands": ["b-1"]}, "stackable": true}],
            "claim": {"coupon": "welcome", "stock": 100},
            "payment_promotions": [{"id": "card-x", "method": "card:x", "discount": {"percent": 10, "max": 5000},
                                    "min_payment": 40000}]
        }))
    }

    #[test]
    fn a_product_page_is_priced_with_the_public_offers_and_the_shoppers_own() {
        let book = PriceBook::from_campaigns(
            &[spec_like()],
            &[],
            at("2026-11-22T12:00:00Z"),
            10,
            Some(MileagePolicy { max_ratio_percent: 10, min_use: 1000, unit: 10 }),
        );
        let now = at("2026-11-22T12:00:00Z");
        let public =
            crate::domain::pricing::quote(&quote_request(&product("b-1"), &book, now, None).try_into().unwrap());
        // 52000 − 7000 (coupon) = 45000 paid by card: −4500.
        assert_eq!(public.final_price.minor(), 40500);
        assert_eq!(public.to_download.len(), 1);
        let personal = Personal { coupons: vec![], mileage_balance: 3000, ..Personal::default() };
        let mine = crate::domain::pricing::quote(
            &quote_request(&product("b-1"), &book, now, Some(&personal)).try_into().unwrap(),
        );
        assert_eq!(mine.final_price.minor(), 37800, "the spec's example: mileage 3000, card on 42000");
        let other =
            crate::domain::pricing::quote(&quote_request(&product("b-2"), &book, now, None).try_into().unwrap());
        assert_eq!(other.final_price.minor(), 52000 - 5000, "no coupon for b-2; the card applies");
    }

    #[test]
    fn cache_keys_change_only_for_products_whose_offers_changed() {
        let now = at("2026-11-22T12:00:00Z");
        let before = PriceBook::from_campaigns(&[spec_like()], &[], now, 10, None);
        let mut changed = spec_like().spec().clone();
        changed.coupons[0].discount = Discount::Percent { percent: 20, max: None };
        let after = PriceBook::from_campaigns(&[Campaign::new(changed).unwrap()], &[], now, 10, None);
        assert_ne!(public_cache_key(&product("b-1"), &before), public_cache_key(&product("b-1"), &after));
        assert_eq!(public_cache_key(&product("b-2"), &before), public_cache_key(&product("b-2"), &after));
        let mut cheaper = product("b-2");
        cheaper.sale_price = Amount::new(cheaper.sale_price.minor() - 1000).unwrap();
        assert_ne!(public_cache_key(&product("b-2"), &before), public_cache_key(&cheaper, &before));
    }

    #[test]
    fn catalog_products_are_parsed_once_and_keep_their_published_form() {
        let wire = serde_json::json!({"id": "p-1", "brand": "b-1", "category": "c-1", "currency": "KRW",
            "list_price": 59000, "sale_price": 52000});
        let p: CatalogProduct = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(p, product("b-1"));
        assert_eq!(serde_json::to_value(&p).unwrap(), wire, "the published form is unchanged");
        let refused = |patch: serde_json::Value| {
            let mut v = wire.clone();
            v.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
            serde_json::from_value::<CatalogProduct>(v).unwrap_err().to_string()
        };
        assert!(refused(serde_json::json!({"sale_price": 60000})).contains("above list_price"));
        assert!(refused(serde_json::json!({"sale_price": -1})).contains("sale_price"));
        assert!(refused(serde_json::json!({"id": ".."})).contains("product_id"));
        assert!(refused(serde_json::json!({"category": ""})).contains("category"));
        assert!(refused(serde_json::json!({"extra": 1})).contains("unknown field"));
    }

    #[test]
    fn ended_campaigns_offer_nothing() {
        let book = PriceBook::from_campaigns(&[spec_like()], &[], at("2026-12-01T00:00:00Z"), 10, None);
        assert!(book.coupons.is_empty() && book.payment_promotions.is_empty());
    }

    #[test]
    fn a_sold_out_campaign_offers_its_payment_promotions_but_not_its_coupon() {
        let now = at("2026-11-22T12:00:00Z");
        let id = spec_like().id.clone();
        let book = PriceBook::from_campaigns(&[spec_like()], &[id], now, 10, None);
        assert!(book.coupons.is_empty(), "nobody can download it any more");
        assert_eq!(book.payment_promotions.len(), 1);
        let answer =
            crate::domain::pricing::quote(&quote_request(&product("b-1"), &book, now, None).try_into().unwrap());
        assert_eq!(answer.final_price.minor(), 52000 - 5000, "the card only");
        let other = CampaignId::parse("other").unwrap();
        let book = PriceBook::from_campaigns(&[spec_like()], &[other], now, 10, None);
        assert_eq!(book.coupons.len(), 1, "another campaign's sell-out changes nothing here");
    }

    #[test]
    fn a_bad_coupon_in_a_wallet_is_left_out_not_fatal() {
        let now = at("2026-12-08T00:00:00Z");
        let book = PriceBook::from_campaigns(&[spec_like()], &[], at("2026-11-22T12:00:00Z"), 10, None);
        let born_expired = IssuedCoupon {
            code: crate::domain::coupon::CouponCode::parse("AAAA-BBBB-CCCC").unwrap(),
            user_id: crate::domain::ids::UserId::parse("u-1").unwrap(),
            campaign_id: CampaignId::parse("nov").unwrap(),
            template: spec_like().coupons[0].clone(),
            currency: Currency::parse("KRW").unwrap(),
            status: CouponStatus::Issued,
            source: crate::domain::coupon::IssueSource::Claim { claim_no: 1 },
            issued_at: now,
            starts_at: now,
            ends_at: at("2026-12-01T00:00:00Z"),
        };
        let personal = Personal { coupons: vec![born_expired], ..Personal::default() };
        let req = quote_request(&product("b-1"), &book, now, Some(&personal));
        assert!(req.coupons.iter().all(|c| !c.owned), "the coupon that ends before it starts is left out");
        let answer = crate::domain::pricing::quote(&req.try_into().expect("a valid quote"));
        assert_eq!(answer.final_price.minor(), 52000, "after the campaign, the sale price");
    }

    #[test]
    fn a_shopper_at_the_claim_limit_is_not_offered_the_public_coupon() {
        let now = at("2026-11-22T12:00:00Z");
        let mut c = spec_like().spec().clone();
        c.claim.as_mut().unwrap().per_user_limit = 2;
        let book = PriceBook::from_campaigns(&[Campaign::new(c).unwrap()], &[], now, 10, None);
        assert_eq!(book.coupons[0].per_user_limit, Some(2));
        let price = |claims: &[(&str, u32)]| {
            let personal = Personal {
                claims: claims.iter().map(|(c, n)| ((*c).to_string(), *n)).collect(),
                ..Personal::default()
            };
            let req = quote_request(&product("b-1"), &book, now, Some(&personal));
            crate::domain::pricing::quote(&req.try_into().unwrap()).final_price.minor()
        };
        assert_eq!(price(&[]), 40500, "never claimed: the coupon is offered");
        assert_eq!(price(&[("nov", 1)]), 40500, "one claim of two made (the first was used): still offered");
        assert_eq!(price(&[("nov", 2)]), 52000 - 5000, "at the limit: the card only");
        assert_eq!(price(&[("other", 5)]), 40500, "claims of another campaign do not count");
        // A book published before the limit was recorded offers the coupon as before.
        let mut old = book.clone();
        old.coupons[0].per_user_limit = None;
        let personal = Personal { claims: [("nov".to_string(), 9)].into(), ..Personal::default() };
        let req = quote_request(&product("b-1"), &old, now, Some(&personal));
        assert_eq!(crate::domain::pricing::quote(&req.try_into().unwrap()).final_price.minor(), 40500);
        let json = serde_json::to_value(&old).unwrap();
        assert!(json["coupons"][0].get("per_user_limit").is_none());
        assert_eq!(serde_json::from_value::<PriceBook>(json).unwrap(), old);
    }
}
