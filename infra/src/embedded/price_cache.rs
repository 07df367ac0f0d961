//! The local runtime's shared cache of public max-benefit price answers: in process, bounded
//! (the oldest entry goes first when it is full).
//!
//! Each entry is kept ready to be written as it is: the body as `Bytes` and the `ETag` as a
//! checked header value, made once when the entry is stored, so a fresh hit answered from it
//! ([`BoundedPriceCache::ready`]) copies and allocates nothing for them; its `Cache-Control`
//! and `Age`, which change with the second, are made once per second.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use promo_shared::ports::price_cache::CachedPrice;
use promo_shared::ports::price_cache::PriceCache;
use promo_shared::pricing::prices;

pub struct BoundedPriceCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

/// The entries by key, and their keys oldest first.
type Entries = (HashMap<String, Arc<Ready>>, VecDeque<String>);

/// A stored answer, ready to be written.
pub struct Ready {
    pub price: CachedPrice,
    /// The body, shared by every answer written from it.
    pub body: Bytes,
    /// The `ETag`; `None` when it is not a valid header value (never written from here then).
    pub etag: Option<HeaderValue>,
    /// The headers of a `HIT` answered from it in the last second one was (they change with
    /// the second: `Cache-Control`, `Age`).
    timed: Mutex<Option<(i64, HeaderMap)>>,
}

impl Ready {
    fn of(price: CachedPrice) -> Ready {
        let body = Bytes::from(price.body.clone().into_bytes());
        let etag = HeaderValue::from_str(&price.etag).ok();
        Ready { price, body, etag, timed: Mutex::new(None) }
    }

    /// The headers of a fresh public answer (`X-Cache: HIT`) written from this entry at
    /// `now_s`, as `Edge::respond` gives them for a request without `Origin`, in the same
    /// order — all but `X-Request-Id` —, made once per second. `None` when the `ETag` is not
    /// a valid header value.
    pub fn hit_headers(&self, now_s: i64) -> Option<HeaderMap> {
        let mut timed = self.timed.lock().ok()?;
        if let Some((at, headers)) = &*timed
            && *at == now_s
        {
            return Some(headers.clone());
        }
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::ETAG, self.etag.clone()?);
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::try_from(prices::public_cache_control(&self.price, now_s)).ok()?,
        );
        headers.insert(header::AGE, HeaderValue::from(prices::age(&self.price, now_s)));
        headers.insert(header::VARY, HeaderValue::from_static(prices::VARY));
        headers.insert(HeaderName::from_static("x-cache"), HeaderValue::from_static(prices::HIT));
        // What CORS adds to the answer of a page's route (for a request without `Origin`).
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        *timed = Some((now_s, headers.clone()));
        Some(headers)
    }
}

impl BoundedPriceCache {
    pub fn new(capacity: usize) -> Self {
        BoundedPriceCache { capacity: capacity.max(1), inner: Mutex::new((HashMap::new(), VecDeque::new())) }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.0.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry under `key`, ready to be written (shared, not copied).
    pub fn ready(&self, key: &str) -> Option<Arc<Ready>> {
        self.inner.lock().ok()?.0.get(key).cloned()
    }
}

#[async_trait]
impl PriceCache for BoundedPriceCache {
    async fn get(&self, key: &str) -> Option<CachedPrice> {
        self.inner.lock().ok()?.0.get(key).map(|r| r.price.clone())
    }

    async fn put(&self, key: &str, entry: CachedPrice) {
        // Made ready outside the lock.
        let ready = Arc::new(Ready::of(entry));
        let Ok(mut g) = self.inner.lock() else { return };
        let (map, order) = &mut *g;
        if map.insert(key.to_string(), ready).is_none() {
            order.push_back(key.to_string());
            while map.len() > self.capacity {
                match order.pop_front() {
                    Some(oldest) => {
                        map.remove(&oldest);
                    }
                    None => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(n: i64) -> CachedPrice {
        CachedPrice { body: n.to_string(), etag: format!("\"{n}\""), computed_at: n, fresh_until: n, stale_until: n }
    }

    #[tokio::test]
    async fn holds_at_most_its_capacity_and_drops_the_oldest() {
        let cache = BoundedPriceCache::new(2);
        cache.put("a", entry(1)).await;
        cache.put("b", entry(2)).await;
        cache.put("a", entry(3)).await; // a replacement keeps its place
        cache.put("c", entry(4)).await;
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a").await.is_none());
        assert_eq!(cache.get("b").await.unwrap().body, "2");
        assert_eq!(cache.get("c").await.unwrap().body, "4");
    }

    #[tokio::test]
    async fn an_entry_is_kept_ready_to_be_written() {
        let cache = BoundedPriceCache::new(2);
        let price = CachedPrice {
            body: r#"{"final_price":45000}"#.into(),
            etag: "\"abc\"".into(),
            computed_at: 100,
            fresh_until: 160,
            stale_until: 460,
        };
        cache.put("k", price.clone()).await;
        let ready = cache.ready("k").unwrap();
        assert_eq!((&ready.price, &ready.body[..]), (&price, price.body.as_bytes()));
        assert_eq!(ready.etag.as_ref().unwrap(), "\"abc\"");
        let headers = ready.hit_headers(130).unwrap();
        let all: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(
            all,
            [
                ("content-type", "application/json"),
                ("etag", "\"abc\""),
                ("cache-control", "public, max-age=30, stale-while-revalidate=300"),
                ("age", "30"),
                ("vary", "Authorization"),
                ("vary", "Origin"),
                ("x-cache", "HIT"),
            ]
        );
        assert_eq!(ready.hit_headers(131).unwrap()["age"], "31", "made again the next second");
        let again = cache.ready("k").unwrap();
        assert!(Arc::ptr_eq(&ready, &again), "shared, not copied");
    }
}
