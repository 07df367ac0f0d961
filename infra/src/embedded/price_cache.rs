//! The local runtime's shared cache of public max-benefit price answers: in process, bounded
//! (the oldest entry goes first when it is full).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use promo_shared::ports::price_cache::CachedPrice;
use promo_shared::ports::price_cache::PriceCache;

pub struct BoundedPriceCache {
    capacity: usize,
    inner: Mutex<(HashMap<String, CachedPrice>, VecDeque<String>)>,
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
}

#[async_trait]
impl PriceCache for BoundedPriceCache {
    async fn get(&self, key: &str) -> Option<CachedPrice> {
        self.inner.lock().ok()?.0.get(key).cloned()
    }

    async fn put(&self, key: &str, entry: CachedPrice) {
        let Ok(mut g) = self.inner.lock() else { return };
        let (map, order) = &mut *g;
        if map.insert(key.to_string(), entry).is_none() {
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
}
