//! The quote request: its JSON shape ([`QuoteRequest`]) and its checked form ([`ValidQuote`]).
//!
//! The JSON is the spec's (`promoctl quote` on stdin, `POST /v1/quotes`). A request names either
//! one product (`product` + optional `quantity`, the product page) or a cart (`lines`, the
//! checkout), never both:
//!
//! ```json
//! {"currency":"KRW","now":"2026-11-22T12:00:00Z","rounding_unit":10,
//!  "lines":[{"product":{"id":"p-1","brand":"b-1","category":"c-1","list_price":59000,"sale_price":52000},"quantity":2},
//!           {"product":{"id":"p-2","sale_price":9900}}],
//!  "coupons":[...], "payment_promotions":[...], "mileage":{...}}
//! ```
//!
//! Numbers are read as plain integers and checked here, field by field, so an error names the
//! field (`coupons[2].discount.percent: 150 is not within 1..=100`) rather than a JSON column.
//! Defaults: `rounding_unit` 1, `quantity` 1, `list_price` = `sale_price`, `brand`/`category`
//! none, `coupons`/`payment_promotions` empty, `mileage` none (no mileage), `min_order` and
//! `min_payment` 0, `applies_to`/`excludes` empty, `stackable`/`owned` false,
//! `mileage.max_ratio_percent` 100, `mileage.min_use` 0, `mileage.unit` 1.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::coupon::CouponKind;

use crate::domain::coupon::Discount;

use crate::domain::coupon::Targets;
use crate::domain::error::ValidationError;
use crate::domain::ids::ProductId;
use crate::domain::ids::check_id;
use crate::domain::money::Amount;
use crate::domain::money::Currency;

/// The most ways of assigning product coupons to a cart's lines (`∏ (usable coupons of line + 1)`)
/// a quote may have. The cart optimum is exact, so its search is exponential in the lines in the
/// worst case (choosing coupons to land just above a threshold is a knapsack); past this bound the
/// request is refused with [`QuoteError::TooComplex`] instead of taking unbounded time. At the
/// bound the engine takes tens of milliseconds (4 lines × 31 coupons usable on every line: 37 ms;
/// 2 lines × 1,000: 0.2 s, release build, 2 cores). A single product has `usable coupons + 1`
/// ways, so it is refused only beyond 2^20 usable coupons.
pub const MAX_ASSIGNMENTS: u64 = 1 << 20;

/// Why a quote request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuoteError {
    /// Not JSON, a value of the wrong JSON type, a missing field or an unknown field.
    #[error("malformed quote request: {0}")]
    Malformed(String),
    /// Well-formed, but values break the rules; every problem, each naming its field.
    #[error("invalid quote request: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ValidationError>),
    /// A cart with too many ways to assign its product coupons (see [`MAX_ASSIGNMENTS`]).
    #[error("the cart has {assignments} ways to assign product coupons to lines; at most {limit} can be priced")]
    TooComplex { assignments: u64, limit: u64 },
}

impl QuoteError {
    /// The fields at fault (empty for a malformed or too complex request).
    pub fn fields(&self) -> Vec<&str> {
        match self {
            QuoteError::Invalid(errors) => errors.iter().map(|e| e.field.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

pub use crate::domain::ids::BenefitId;

// ---------------------------------------------------------------------------------------------
// The JSON shape, as sent. Integers stay raw (`i64`) until checked, for errors that name fields.
// ---------------------------------------------------------------------------------------------

/// A quote request exactly as its JSON reads; check it with [`ValidQuote::try_from`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub currency: String,
    /// RFC 3339.
    pub now: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding_unit: Option<i64>,
    /// With `product` only; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    /// One product (the product page); exclusive with `lines`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<ProductSpec>,
    /// A cart (the checkout); exclusive with `product`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineSpec>>,
    #[serde(default)]
    pub coupons: Vec<CouponSpec>,
    #[serde(default)]
    pub payment_promotions: Vec<PaymentPromotionSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mileage: Option<MileageSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_price: Option<i64>,
    pub sale_price: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSpec {
    pub product: ProductSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
}

/// `{"fixed":v}` or `{"percent":p}` / `{"percent":p,"max":v}`: the JSON of [`Discount`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponSpec {
    pub id: String,
    pub kind: CouponKind,
    pub discount: DiscountSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_order: Option<i64>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(default)]
    pub applies_to: Targets,
    #[serde(default)]
    pub excludes: Targets,
    #[serde(default)]
    pub stackable: bool,
    #[serde(default)]
    pub owned: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentPromotionSpec {
    pub id: String,
    /// The payment method the shopper must use, e.g. `card:x`.
    pub method: String,
    pub discount: DiscountSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_payment: Option<i64>,
    pub starts_at: String,
    pub ends_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MileageSpec {
    pub balance: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ratio_percent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_use: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// The checked form.
// ---------------------------------------------------------------------------------------------

/// `starts_at <= now < ends_at` is live; `starts_at < ends_at` always holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl Window {
    /// The spec's validity: the start is inclusive, the end exclusive.
    pub fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub list_price: Amount,
    pub sale_price: Amount,
}

/// A cart line: `base = sale_price × quantity`, checked not to overflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub product: Product,
    pub quantity: u32,
    pub base: Amount,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coupon {
    pub id: BenefitId,
    pub kind: CouponKind,
    pub discount: Discount,
    pub min_order: Amount,
    pub window: Window,
    pub applies_to: Targets,
    pub excludes: Targets,
    pub stackable: bool,
    /// Already in the shopper's wallet; otherwise it must be downloaded first.
    pub owned: bool,
}

impl Coupon {
    /// The spec's applicability: listed in `excludes` never; empty `applies_to` always;
    /// otherwise when the id, brand or category is listed. A product without a brand (category)
    /// matches no brand (category) list.
    pub fn applies_to(&self, product: &Product) -> bool {
        let listed = |t: &Targets| {
            t.products.iter().any(|p| p == product.id.as_str())
                || product.brand.as_ref().is_some_and(|b| t.brands.contains(b))
                || product.category.as_ref().is_some_and(|c| t.categories.contains(c))
        };
        !listed(&self.excludes) && (self.applies_to.is_empty() || listed(&self.applies_to))
    }

    /// Whether this product coupon may be used on a line (live, applicable, `min_order` met by
    /// the line's base). Cart coupons are never usable on a line.
    pub fn usable_on(&self, line: &Line, now: DateTime<Utc>) -> bool {
        self.kind == CouponKind::Product
            && self.window.live_at(now)
            && self.applies_to(&line.product)
            && self.min_order <= line.base
    }

    /// Whether this cart coupon may be used on a cart (live and applicable to **every** line —
    /// a cart coupon never discounts a product it excludes; `min_order` is checked later, against
    /// the amount after product coupons).
    pub fn usable_on_cart(&self, lines: &[Line], now: DateTime<Utc>) -> bool {
        self.kind == CouponKind::Cart && self.window.live_at(now) && lines.iter().all(|l| self.applies_to(&l.product))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentPromotion {
    pub id: BenefitId,
    pub method: String,
    pub discount: Discount,
    pub min_payment: Amount,
    pub window: Window,
}

/// The shopper's mileage and the shop's rules for spending it. `unit ≥ 1`,
/// `max_ratio_percent ≤ 100`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mileage {
    pub balance: Amount,
    pub max_ratio_percent: u8,
    pub min_use: Amount,
    pub unit: Amount,
}

/// A quote request whose every rule has been checked. Build it with [`ValidQuote::parse`] or
/// `ValidQuote::try_from(QuoteRequest)`; [`super::quote`] then cannot fail.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "QuoteRequest")]
pub struct ValidQuote {
    currency: Currency,
    now: DateTime<Utc>,
    rounding_unit: i64,
    lines: Vec<Line>,
    coupons: Vec<Coupon>,
    payment_promotions: Vec<PaymentPromotion>,
    mileage: Option<Mileage>,
    base: Amount,
    list_total: Amount,
}

impl ValidQuote {
    /// Parses and checks a quote request's JSON.
    pub fn parse(json: &str) -> Result<ValidQuote, QuoteError> {
        let request: QuoteRequest = serde_json::from_str(json).map_err(|e| QuoteError::Malformed(e.to_string()))?;
        ValidQuote::try_from(request)
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
    /// Percent discounts are rounded down to a multiple of this (≥ 1).
    pub fn rounding_unit(&self) -> i64 {
        self.rounding_unit
    }
    /// At least one.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
    /// Every coupon of the request, live or not, in request order; ids are unique.
    pub fn coupons(&self) -> &[Coupon] {
        &self.coupons
    }
    /// Every payment promotion of the request, live or not, in request order; ids are unique.
    pub fn payment_promotions(&self) -> &[PaymentPromotion] {
        &self.payment_promotions
    }
    pub fn mileage(&self) -> Option<&Mileage> {
        self.mileage.as_ref()
    }
    /// The sum of the lines' bases (≤ [`Amount::MAX`]).
    pub fn base(&self) -> Amount {
        self.base
    }
    /// The sum of `list_price × quantity`.
    pub fn list_total(&self) -> Amount {
        self.list_total
    }

    /// The earliest `starts_at` or `ends_at` strictly after `now` among all the quote's coupons
    /// and promotions, live or not: until then the answer cannot change.
    pub fn valid_until(&self) -> Option<DateTime<Utc>> {
        let windows = self.coupons.iter().map(|c| c.window).chain(self.payment_promotions.iter().map(|p| p.window));
        windows.flat_map(|w| [w.starts_at, w.ends_at]).filter(|t| *t > self.now).min()
    }

    /// `∏ over lines (product coupons usable on the line + 1)`, saturating.
    pub fn assignments(&self) -> u64 {
        self.lines.iter().fold(1u64, |acc, line| {
            let usable = self.coupons.iter().filter(|c| c.usable_on(line, self.now)).count() as u64;
            acc.saturating_mul(usable + 1)
        })
    }
}

impl TryFrom<QuoteRequest> for ValidQuote {
    type Error = QuoteError;

    fn try_from(r: QuoteRequest) -> Result<ValidQuote, QuoteError> {
        let mut errs = Errors::default();
        let currency = errs.take(Currency::parse(&r.currency).map_err(|e| ValidationError::new("currency", e.message)));
        let now = errs.take(instant("now", &r.now));
        let rounding_unit = match r.rounding_unit {
            None => Some(1),
            Some(v) => errs.take(positive_amount("rounding_unit", v).map(Amount::minor)),
        };

        // (path of the product, path of the quantity, product, quantity)
        let line_specs: Vec<(String, String, &ProductSpec, Option<i64>)> = match (&r.product, &r.lines) {
            (Some(p), None) => vec![("product".into(), "quantity".into(), p, r.quantity)],
            (None, Some(lines)) => {
                if r.quantity.is_some() {
                    errs.push(ValidationError::new(
                        "quantity",
                        "goes with `product`; a cart line has its own quantity",
                    ));
                }
                if lines.is_empty() {
                    errs.push(ValidationError::new("lines", "must not be empty"));
                }
                let path = |i: usize, field: &str| format!("lines[{i}].{field}");
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (path(i, "product"), path(i, "quantity"), &l.product, l.quantity))
                    .collect()
            }
            (Some(_), Some(_)) => {
                errs.push(ValidationError::new(
                    "lines",
                    "give either `product` (one product) or `lines` (a cart), not both",
                ));
                vec![]
            }
            (None, None) => {
                errs.push(ValidationError::new("product", "missing: give `product` (one product) or `lines` (a cart)"));
                vec![]
            }
        };
        let mut lines = Vec::new();
        for (path, qty_path, spec, quantity) in line_specs {
            if let Some(line) = errs.take_all(line(&path, &qty_path, spec, quantity)) {
                lines.push(line);
            }
        }
        let base = lines.iter().try_fold(Amount::ZERO, |acc, l| acc.checked_add(l.base));
        let list_total = lines
            .iter()
            .try_fold(Amount::ZERO, |acc, l| acc.checked_add(l.product.list_price.checked_mul(l.quantity)?));
        if base.is_none() || list_total.is_none() {
            errs.push(ValidationError::new("lines", format!("the cart's total is larger than {}", Amount::MAX)));
        }

        let mut coupons = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, c) in r.coupons.iter().enumerate() {
            let path = format!("coupons[{i}]");
            if !ids.insert(c.id.as_str()) {
                errs.push(ValidationError::new(format!("{path}.id"), format!("`{}` is used by another coupon", c.id)));
            }
            if let Some(c) = errs.take_all(coupon(&path, c)) {
                coupons.push(c);
            }
        }
        let mut promotions = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, p) in r.payment_promotions.iter().enumerate() {
            let path = format!("payment_promotions[{i}]");
            if !ids.insert(p.id.as_str()) {
                errs.push(ValidationError::new(
                    format!("{path}.id"),
                    format!("`{}` is used by another payment promotion", p.id),
                ));
            }
            if let Some(p) = errs.take_all(promotion(&path, p)) {
                promotions.push(p);
            }
        }
        let mileage = match &r.mileage {
            None => None,
            Some(m) => errs.take_all(mileage(m)),
        };

        if !errs.0.is_empty() {
            return Err(QuoteError::Invalid(errs.0));
        }
        let (Some(currency), Some(now), Some(rounding_unit), Some(base), Some(list_total)) =
            (currency, now, rounding_unit, base, list_total)
        else {
            // Every None above pushed an error.
            return Err(QuoteError::Malformed("unchecked field".into()));
        };
        let quote = ValidQuote {
            currency,
            now,
            rounding_unit,
            lines,
            coupons,
            payment_promotions: promotions,
            mileage,
            base,
            list_total,
        };
        let assignments = quote.assignments();
        if assignments > MAX_ASSIGNMENTS {
            return Err(QuoteError::TooComplex { assignments, limit: MAX_ASSIGNMENTS });
        }
        Ok(quote)
    }
}

/// Collects every problem instead of stopping at the first.
#[derive(Default)]
struct Errors(Vec<ValidationError>);

impl Errors {
    fn push(&mut self, e: ValidationError) {
        self.0.push(e);
    }
    fn take<T>(&mut self, r: Result<T, ValidationError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }
    fn take_all<T>(&mut self, r: Result<T, Vec<ValidationError>>) -> Option<T> {
        r.map_err(|e| self.0.extend(e)).ok()
    }
}

fn amount(field: &str, v: i64) -> Result<Amount, ValidationError> {
    Amount::new(v).map_err(|e| ValidationError::new(field, e.message))
}

fn positive_amount(field: &str, v: i64) -> Result<Amount, ValidationError> {
    if v < 1 {
        return Err(ValidationError::new(field, format!("{v} is not at least 1")));
    }
    amount(field, v)
}

fn instant(field: &str, s: &str) -> Result<DateTime<Utc>, ValidationError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| ValidationError::new(field, format!("`{s}` is not an RFC 3339 instant ({e})")))
}

fn percent(field: &str, v: i64, range: std::ops::RangeInclusive<i64>) -> Result<u8, ValidationError> {
    if !range.contains(&v) {
        return Err(ValidationError::new(field, format!("{v} is not within {}..={}", range.start(), range.end())));
    }
    u8::try_from(v).map_err(|_| ValidationError::new(field, format!("{v} is not a percentage")))
}

fn label(field: &str, s: &Option<String>) -> Result<Option<String>, ValidationError> {
    match s {
        Some(s) if s.trim().is_empty() || s.len() > 128 => {
            Err(ValidationError::new(field, "must be 1..=128 characters and not blank"))
        }
        _ => Ok(s.clone()),
    }
}

fn line(path: &str, qty_path: &str, p: &ProductSpec, quantity: Option<i64>) -> Result<Line, Vec<ValidationError>> {
    let mut errs = Errors::default();
    let id =
        errs.take(ProductId::parse(p.id.as_str()).map_err(|e| ValidationError::new(format!("{path}.id"), e.message)));
    let brand = errs.take(label(&format!("{path}.brand"), &p.brand));
    let category = errs.take(label(&format!("{path}.category"), &p.category));
    let sale_price = errs.take(amount(&format!("{path}.sale_price"), p.sale_price));
    let list_price = match p.list_price {
        None => sale_price,
        Some(v) => errs.take(amount(&format!("{path}.list_price"), v)),
    };
    if let (Some(s), Some(l)) = (sale_price, list_price)
        && s > l
    {
        errs.push(ValidationError::new(
            format!("{path}.sale_price"),
            format!("{s} is above list_price {l} (the product discount cannot be negative)"),
        ));
    }
    let quantity = match quantity {
        None => Some(1),
        Some(q) if q < 1 => {
            errs.push(ValidationError::new(qty_path, format!("{q} is not at least 1")));
            None
        }
        Some(q) => errs.take(u32::try_from(q).map_err(|_| ValidationError::new(qty_path, format!("{q} is too large")))),
    };
    let base = match (sale_price, quantity) {
        (Some(s), Some(q)) => errs.take(s.checked_mul(q).ok_or_else(|| {
            ValidationError::new(qty_path, format!("sale_price × quantity is larger than {}", Amount::MAX))
        })),
        _ => None,
    };
    match (id, brand, category, sale_price, list_price, quantity, base) {
        (Some(id), Some(brand), Some(category), Some(sale_price), Some(list_price), Some(quantity), Some(base))
            if errs.0.is_empty() =>
        {
            Ok(Line { product: Product { id, brand, category, list_price, sale_price }, quantity, base })
        }
        _ => Err(errs.0),
    }
}

fn discount(path: &str, d: &DiscountSpec) -> Result<Discount, ValidationError> {
    match (d.fixed, d.percent, d.max) {
        (Some(v), None, None) => Ok(Discount::Fixed { fixed: positive_amount(&format!("{path}.fixed"), v)? }),
        (None, Some(p), max) => Ok(Discount::Percent {
            percent: percent(&format!("{path}.percent"), p, 1..=100)?,
            max: max.map(|m| amount(&format!("{path}.max"), m)).transpose()?,
        }),
        (Some(_), None, Some(_)) => {
            Err(ValidationError::new(format!("{path}.max"), "goes with `percent`, not `fixed`"))
        }
        (Some(_), Some(_), _) => Err(ValidationError::new(path, "give either `fixed` or `percent`, not both")),
        (None, None, _) => Err(ValidationError::new(path, "give `fixed` or `percent`")),
    }
}

fn window(path: &str, starts_at: &str, ends_at: &str) -> Result<Window, Vec<ValidationError>> {
    let mut errs = Errors::default();
    let s = errs.take(instant(&format!("{path}.starts_at"), starts_at));
    let e = errs.take(instant(&format!("{path}.ends_at"), ends_at));
    match (s, e) {
        (Some(starts_at), Some(ends_at)) if starts_at < ends_at => Ok(Window { starts_at, ends_at }),
        (Some(s), Some(e)) => Err(vec![ValidationError::new(
            format!("{path}.ends_at"),
            format!("{} is not after starts_at {}", e.to_rfc3339(), s.to_rfc3339()),
        )]),
        _ => Err(errs.0),
    }
}

fn targets(path: &str, t: &Targets) -> Result<(), ValidationError> {
    let blank = t.products.iter().chain(&t.brands).chain(&t.categories).any(|s| s.trim().is_empty());
    if blank { Err(ValidationError::new(path, "lists a blank entry")) } else { Ok(()) }
}

fn coupon(path: &str, c: &CouponSpec) -> Result<Coupon, Vec<ValidationError>> {
    let mut errs = Errors::default();
    let id =
        errs.take(BenefitId::parse(c.id.as_str()).map_err(|e| ValidationError::new(format!("{path}.id"), e.message)));
    let discount = errs.take(discount(&format!("{path}.discount"), &c.discount));
    let min_order = errs.take(amount(&format!("{path}.min_order"), c.min_order.unwrap_or(0)));
    let window = errs.take_all(window(path, &c.starts_at, &c.ends_at));
    errs.take(targets(&format!("{path}.applies_to"), &c.applies_to));
    errs.take(targets(&format!("{path}.excludes"), &c.excludes));
    match (id, discount, min_order, window) {
        (Some(id), Some(discount), Some(min_order), Some(window)) if errs.0.is_empty() => Ok(Coupon {
            id,
            kind: c.kind,
            discount,
            min_order,
            window,
            applies_to: c.applies_to.clone(),
            excludes: c.excludes.clone(),
            stackable: c.stackable,
            owned: c.owned,
        }),
        _ => Err(errs.0),
    }
}

impl CouponSpec {
    /// Whether this coupon would be accepted in a quote (its id, discount, window, targets).
    pub fn is_valid(&self) -> bool {
        coupon("coupon", self).is_ok()
    }
}

impl PaymentPromotionSpec {
    /// Whether this promotion would be accepted in a quote.
    pub fn is_valid(&self) -> bool {
        promotion("payment_promotion", self).is_ok()
    }
}

fn promotion(path: &str, p: &PaymentPromotionSpec) -> Result<PaymentPromotion, Vec<ValidationError>> {
    let mut errs = Errors::default();
    let id =
        errs.take(BenefitId::parse(p.id.as_str()).map_err(|e| ValidationError::new(format!("{path}.id"), e.message)));
    errs.take(check_id(&format!("{path}.method"), &p.method));
    let discount = errs.take(discount(&format!("{path}.discount"), &p.discount));
    let min_payment = errs.take(amount(&format!("{path}.min_payment"), p.min_payment.unwrap_or(0)));
    let window = errs.take_all(window(path, &p.starts_at, &p.ends_at));
    match (id, discount, min_payment, window) {
        (Some(id), Some(discount), Some(min_payment), Some(window)) if errs.0.is_empty() => {
            Ok(PaymentPromotion { id, method: p.method.clone(), discount, min_payment, window })
        }
        _ => Err(errs.0),
    }
}

fn mileage(m: &MileageSpec) -> Result<Mileage, Vec<ValidationError>> {
    let mut errs = Errors::default();
    let balance = errs.take(amount("mileage.balance", m.balance));
    let ratio = errs.take(percent("mileage.max_ratio_percent", m.max_ratio_percent.unwrap_or(100), 0..=100));
    let min_use = errs.take(amount("mileage.min_use", m.min_use.unwrap_or(0)));
    let unit = errs.take(positive_amount("mileage.unit", m.unit.unwrap_or(1)));
    match (balance, ratio, min_use, unit) {
        (Some(balance), Some(max_ratio_percent), Some(min_use), Some(unit)) => {
            Ok(Mileage { balance, max_ratio_percent, min_use, unit })
        }
        _ => Err(errs.0),
    }
}
