//! `GET /v1/products/{id}/max-benefit-price`: the lowest price a shopper can reach for one
//! unit of a product, computed from the published catalog and price book
//! ([`crate::domain::price_book`]) and cached.
//!
//! **Public reads** (no `Authorization`) are stored in a shared cache under
//! [`public_cache_key`](crate::domain::price_book::public_cache_key) — a digest of the product and of the offers that can apply to it, so
//! a deploy that changes those offers changes the key (the old answer is never read again)
//! and leaves every other product's answer cached. An entry is fresh for `ttl`, then served
//! stale for up to `stale` more while it is recomputed in the background
//! (stale-while-revalidate), and never past the answer's `valid_until` (when an offer
//! starts or ends and the price changes). Answers carry `Cache-Control: public, max-age,
//! stale-while-revalidate`, a strong `ETag` (304 for a matching `If-None-Match`), `Age` and
//! `X-Cache: HIT | MISS | STALE`.
//!
//! **Personal reads** (a valid bearer token) also use the shopper's own coupons and mileage.
//! They are computed every time, never stored, and answered `Cache-Control: private, no-store`.

use crate::domain::price_book::CatalogProduct;
use crate::domain::price_book::Personal;
use crate::domain::price_book::PriceBook;
use crate::domain::price_book::quote_request_for;
use crate::domain::pricing;
use crate::domain::pricing::ValidQuote;
use chrono::{DateTime, Duration, Utc};

use sha2::{Digest, Sha256};

use crate::http::ApiError;
use crate::http::Request;
use crate::http::Response;
use crate::ports::catalog::Catalog;
use crate::ports::price_cache::{CachedPrice, PriceCache};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachePolicy {
    /// How long a public answer is fresh.
    pub ttl: Duration,
    /// How long after that it may still be served while it is recomputed.
    pub stale: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy { ttl: Duration::seconds(60), stale: Duration::seconds(300) }
    }
}

/// The answer, and whether the caller should recompute the entry in the background
/// ([`refresh`]) because a stale one was served.
pub struct PriceRead {
    pub response: Response,
    pub revalidate: Option<String>,
}

/// The most units one read prices (`?quantity=`): a product page's quantity picker.
pub const MAX_QUANTITY: u32 = 99;

/// The read's `?quantity=` (1 when absent): 1 to [`MAX_QUANTITY`], else 422 `invalid_quote`.
pub fn quantity(req: &Request) -> Result<u32, ApiError> {
    match req.query_param("quantity") {
        None => Ok(1),
        Some(q) => q.parse::<u32>().ok().filter(|q| (1..=MAX_QUANTITY).contains(q)).ok_or_else(|| {
            ApiError::InvalidQuote(format!("quantity must be a whole number from 1 to {MAX_QUANTITY}, not `{q}`"))
        }),
    }
}

/// The shared-cache key of `quantity` units under a product's public key (one unit keeps the
/// product's own key).
fn keyed(public_key: &str, quantity: u32) -> std::borrow::Cow<'_, str> {
    if quantity == 1 { public_key.into() } else { format!("{public_key}-q{quantity}").into() }
}

/// What a stale read asks the runtime to recompute: the product, and `?quantity=` when not 1
/// (product ids never hold a `?`); [`refresh`] reads it back.
pub fn refresh_target(product_id: &str, quantity: u32) -> String {
    if quantity == 1 { product_id.to_string() } else { format!("{product_id}?quantity={quantity}") }
}

/// Computes a product's answer and its cache entry.
pub fn compute(
    product: &CatalogProduct,
    book: &PriceBook,
    personal: Option<&Personal>,
    now: DateTime<Utc>,
    policy: CachePolicy,
) -> Result<CachedPrice, ApiError> {
    compute_for(product, book, personal, now, policy, 1)
}

/// [`compute`] for `quantity` units.
pub fn compute_for(
    product: &CatalogProduct,
    book: &PriceBook,
    personal: Option<&Personal>,
    now: DateTime<Utc>,
    policy: CachePolicy,
    quantity: u32,
) -> Result<CachedPrice, ApiError> {
    let quote = ValidQuote::try_from(quote_request_for(product, book, now, personal, quantity))
        .map_err(|e| ApiError::Internal(format!("the published catalog does not make a valid quote: {e}")))?;
    let answer = pricing::quote(&quote);
    let body = serde_json::to_string(&answer).map_err(|e| ApiError::Internal(e.to_string()))?;
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(body.as_bytes())[..16]));
    let now_s = now.timestamp();
    let limit = answer.valid_until.map_or(i64::MAX, |v| v.timestamp());
    let fresh_until = (now + policy.ttl).timestamp().min(limit);
    let stale_until = (now + policy.ttl + policy.stale).timestamp().min(limit);
    Ok(CachedPrice { body, etag, computed_at: now_s, fresh_until, stale_until })
}

/// Serves a read. `personal` is `Some` for a shopper with a valid token (resolved by the
/// caller, who owns authentication and the shopper's data).
pub async fn read<C, K>(
    catalog: &C,
    cache: &K,
    req: &Request,
    product_id: &str,
    personal: Option<&Personal>,
    now: DateTime<Utc>,
    policy: CachePolicy,
) -> Result<PriceRead, ApiError>
where
    C: Catalog + ?Sized,
    K: PriceCache + ?Sized,
{
    crate::domain::ids::ProductId::parse(product_id).map_err(|e| ApiError::InvalidId(e.to_string()))?;
    let quantity = quantity(req)?;
    let not_found = || ApiError::NotFound(format!("product `{product_id}` is not in the catalog"));
    if let Some(personal) = personal {
        let product = catalog.product(product_id).await?.ok_or_else(not_found)?;
        let book = catalog.price_book().await?;
        let entry = compute_for(&product, &book, Some(personal), now, policy, quantity)?;
        let resp = answer(req, entry, now, "private, no-store".into(), None);
        return Ok(PriceRead { response: resp, revalidate: None });
    }
    // A hit costs the catalog's look-up (the key comes with it), the cache's, and the
    // stored bytes: nothing is recomputed.
    let priced = catalog.priced(product_id).await?.ok_or_else(not_found)?;
    let key = &*keyed(&priced.public_key, quantity);
    let now_s = now.timestamp();
    let cached = cache.get(key).await;
    let (entry, state, revalidate) = match cached.as_ref().map(|e| freshness(e, now_s)) {
        Some(Freshness::Fresh) => (cached, HIT, None),
        Some(Freshness::Stale) => (cached, "STALE", Some(refresh_target(product_id, quantity))),
        _ => (None, "MISS", None),
    };
    let entry = match entry {
        Some(e) => e,
        None => {
            let e = compute_for(&priced.product, &priced.book, None, now, policy, quantity)?;
            cache.put(key, e.clone()).await;
            e
        }
    };
    let control = public_cache_control(&entry, now_s);
    let resp = answer(req, entry, now, control, Some(state));
    Ok(PriceRead { response: resp, revalidate })
}

/// `X-Cache` of a public answer served fresh from the cache.
pub const HIT: &str = "HIT";
/// `Vary` of every price answer: a personal read (with `Authorization`) is another answer.
pub const VARY: &str = "Authorization";

/// How a stored public answer may be served at `now_s` (epoch seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// As it is (`X-Cache: HIT`).
    Fresh,
    /// As it is while it is recomputed in the background (`X-Cache: STALE`).
    Stale,
    /// Not any more: recomputed first (`X-Cache: MISS`).
    Expired,
}

pub fn freshness(e: &CachedPrice, now_s: i64) -> Freshness {
    if now_s < e.fresh_until {
        Freshness::Fresh
    } else if now_s < e.stale_until {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
}

/// The `Cache-Control` of a public answer served from `e` at `now_s`.
pub fn public_cache_control(e: &CachedPrice, now_s: i64) -> String {
    let max_age = (e.fresh_until - now_s).max(0);
    let swr = (e.stale_until - e.fresh_until.max(now_s)).max(0);
    format!("public, max-age={max_age}, stale-while-revalidate={swr}")
}

/// The `Age` of an answer served from `e` at `now_s`.
pub fn age(e: &CachedPrice, now_s: i64) -> i64 {
    (now_s - e.computed_at).max(0)
}

/// Recomputes the public entry of `target` (after a stale read): a product id, or what
/// [`refresh_target`] made of a product and a quantity.
pub async fn refresh<C, K>(catalog: &C, cache: &K, target: &str, now: DateTime<Utc>, policy: CachePolicy)
where
    C: Catalog + ?Sized,
    K: PriceCache + ?Sized,
{
    let (product_id, quantity) = match target.split_once("?quantity=") {
        Some((p, q)) => (p, q.parse::<u32>().unwrap_or(1).clamp(1, MAX_QUANTITY)),
        None => (target, 1),
    };
    let Ok(Some(priced)) = catalog.priced(product_id).await else { return };
    if let Ok(e) = compute_for(&priced.product, &priced.book, None, now, policy, quantity) {
        cache.put(&keyed(&priced.public_key, quantity), e).await;
    }
}

fn answer(req: &Request, e: CachedPrice, now: DateTime<Utc>, control: String, state: Option<&str>) -> Response {
    let age = age(&e, now.timestamp());
    let not_modified = req.header_values("if-none-match").flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t == e.etag || t.strip_prefix("W/") == Some(e.etag.as_str())
    });
    let mut resp = if not_modified {
        Response { status: 304, headers: vec![], body: vec![] }
    } else {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: e.body.into_bytes(),
        }
    };
    resp.headers.push(("etag".into(), e.etag));
    resp.headers.push(("cache-control".into(), control));
    resp.headers.push(("age".into(), age.to_string()));
    resp.headers.push(("vary".into(), VARY.into()));
    if let Some(state) = state {
        resp.headers.push(("x-cache".into(), state.into()));
    }
    resp
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;
    use std::sync::Arc;

    use async_trait::async_trait;
    use std::sync::Mutex;

    use crate::domain::campaign::Campaign;
    use crate::domain::ids::ProductId;
    use crate::domain::money::{Amount, Currency};
    use crate::testing::at;

    use super::*;

    /// A catalog of one product (p-1, 50,000 KRW, brandless) and a swappable price book.
    pub(crate) struct Fixed(pub(crate) Mutex<PriceBook>, CatalogProduct);
    #[async_trait]
    impl Catalog for Fixed {
        async fn product(&self, id: &str) -> Result<Option<CatalogProduct>, ApiError> {
            Ok((id == self.1.id.as_str()).then(|| self.1.clone()))
        }
        async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError> {
            Ok(Arc::new(self.0.lock().unwrap().clone()))
        }
    }
    #[derive(Default)]
    pub(crate) struct Map(Mutex<HashMap<String, CachedPrice>>);
    #[async_trait]
    impl PriceCache for Map {
        async fn get(&self, key: &str) -> Option<CachedPrice> {
            self.0.lock().unwrap().get(key).cloned()
        }
        async fn put(&self, key: &str, entry: CachedPrice) {
            self.0.lock().unwrap().insert(key.into(), entry);
        }
    }

    /// A campaign's claimable coupon of `percent`% off every product.
    pub(crate) fn book(percent: u8) -> PriceBook {
        let c = Campaign::new(
            serde_json::from_value(serde_json::json!({
                "id": "nov", "name": "November", "currency": "KRW",
                "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
                "coupons": [{"id": "welcome", "kind": "product", "discount": {"percent": percent}, "stackable": true}],
                "claim": {"coupon": "welcome", "stock": 100}
            }))
            .unwrap(),
        )
        .unwrap();
        PriceBook::from_campaigns(&[c], &[], at("2026-11-22T00:00:00Z"), 10, None)
    }

    pub(crate) fn catalog() -> Fixed {
        Fixed(
            Mutex::new(book(10)),
            CatalogProduct {
                id: ProductId::parse("p-1").unwrap(),
                brand: None,
                category: None,
                currency: Currency::parse("KRW").unwrap(),
                list_price: Amount::new(50000).unwrap(),
                sale_price: Amount::new(50000).unwrap(),
            },
        )
    }

    async fn get(c: &Fixed, k: &Map, etag: Option<&str>, now: &str) -> PriceRead {
        let mut req = Request::new("GET", "/v1/products/p-1/max-benefit-price");
        if let Some(t) = etag {
            req = req.header("if-none-match", t);
        }
        read(c, k, &req, "p-1", None, at(now), CachePolicy::default()).await.unwrap()
    }

    #[tokio::test]
    async fn miss_hit_stale_expiry_and_304() {
        let (c, k) = (catalog(), Map::default());
        let miss = get(&c, &k, None, "2026-11-22T12:00:00Z").await.response;
        assert_eq!(miss.header("x-cache"), Some("MISS"));
        assert_eq!(miss.json_body()["final_price"], 45000);
        assert_eq!(miss.header("cache-control"), Some("public, max-age=60, stale-while-revalidate=300"));
        let hit = get(&c, &k, None, "2026-11-22T12:00:30Z").await.response;
        assert_eq!((hit.header("x-cache"), hit.header("age")), (Some("HIT"), Some("30")));
        let etag = hit.header("etag").unwrap().to_string();
        let not_modified = get(&c, &k, Some(&etag), "2026-11-22T12:00:40Z").await.response;
        assert_eq!(not_modified.status, 304);
        assert!(not_modified.body.is_empty());
        let stale = get(&c, &k, None, "2026-11-22T12:02:00Z").await;
        assert_eq!(stale.response.header("x-cache"), Some("STALE"));
        assert!(stale.revalidate.is_some());
        let expired = get(&c, &k, None, "2026-11-22T12:07:00Z").await.response;
        assert_eq!(expired.header("x-cache"), Some("MISS"));
    }

    #[tokio::test]
    async fn a_quantity_is_priced_as_one_line_and_cached_under_its_own_key() {
        let (c, k) = (catalog(), Map::default());
        let now = "2026-11-22T12:00:00Z";
        let one = read_at(&c, &k, "", now).await.response;
        let three = read_at(&c, &k, "quantity=3", now).await.response;
        assert_eq!((three.status, three.header("x-cache")), (200, Some("MISS")), "not the one unit's entry");
        let answer = three.json_body();
        assert_eq!(answer["lines"][0]["quantity"], 3);
        assert_eq!(answer["base"], 150000);
        assert_eq!(answer["final_price"], 135000, "10% of the line");
        assert_eq!(one.json_body()["final_price"], 45000);
        assert_eq!(read_at(&c, &k, "quantity=3", now).await.response.header("x-cache"), Some("HIT"));
        assert_eq!(read_at(&c, &k, "quantity=1", now).await.response.header("x-cache"), Some("HIT"), "one unit's key");
        for bad in ["quantity=0", "quantity=100", "quantity=x", "quantity=-1"] {
            let req = Request::new("GET", "/v1/products/p-1/max-benefit-price").with_query(bad);
            let refused = read(&c, &k, &req, "p-1", None, at(now), CachePolicy::default()).await;
            assert_eq!(refused.err().map(|e| e.status()), Some(422), "{bad}");
        }
        // A stale entry of three units is recomputed under its own key.
        let stale = read_at(&c, &k, "quantity=3", "2026-11-22T12:02:00Z").await;
        assert_eq!(stale.revalidate.as_deref(), Some("p-1?quantity=3"));
        refresh(&c, &k, "p-1?quantity=3", at("2026-11-22T12:02:00Z"), CachePolicy::default()).await;
        let after = read_at(&c, &k, "quantity=3", "2026-11-22T12:02:30Z").await.response;
        assert_eq!((after.header("x-cache"), after.header("age")), (Some("HIT"), Some("30")));
    }

    async fn read_at(c: &Fixed, k: &Map, q: &str, now: &str) -> PriceRead {
        let req = Request::new("GET", "/v1/products/p-1/max-benefit-price").with_query(q);
        read(c, k, &req, "p-1", None, at(now), CachePolicy::default()).await.unwrap()
    }

    #[tokio::test]
    async fn a_deploy_that_changes_the_offers_is_a_miss_at_once() {
        let (c, k) = (catalog(), Map::default());
        get(&c, &k, None, "2026-11-22T12:00:00Z").await;
        *c.0.lock().unwrap() = book(20);
        let after = get(&c, &k, None, "2026-11-22T12:00:05Z").await.response;
        assert_eq!(after.header("x-cache"), Some("MISS"));
        assert_eq!(after.json_body()["final_price"], 40000);
    }

    #[tokio::test]
    async fn never_served_past_valid_until() {
        let (c, k) = (catalog(), Map::default());
        let late = get(&c, &k, None, "2026-11-30T23:59:30Z").await.response;
        assert_eq!(late.header("cache-control"), Some("public, max-age=30, stale-while-revalidate=0"));
        let after_end = get(&c, &k, None, "2026-12-01T00:00:10Z").await.response;
        assert_eq!(after_end.header("x-cache"), Some("MISS"));
        assert_eq!(after_end.json_body()["final_price"], 50000);
    }

    #[tokio::test]
    async fn personal_answers_are_private_and_not_stored() {
        let (c, k) = (catalog(), Map::default());
        let req = Request::new("GET", "/v1/products/p-1/max-benefit-price");
        let personal = Personal::default();
        let read = read(&c, &k, &req, "p-1", Some(&personal), at("2026-11-22T12:00:00Z"), CachePolicy::default())
            .await
            .unwrap();
        assert_eq!(read.response.header("cache-control"), Some("private, no-store"));
        assert!(k.0.lock().unwrap().is_empty());
        let missing = super::read(&c, &k, &req, "p-2", None, at("2026-11-22T12:00:00Z"), CachePolicy::default()).await;
        assert_eq!(missing.err().map(|e| e.status()), Some(404));
    }
}
