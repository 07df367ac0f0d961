//! The price cache port: the shared cache of public price answers (the Cache API at the edge,
//! a bounded map locally).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The shared cache of public answers (the Cache API at the edge, a bounded map locally).
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait PriceCache: super::MaybeSend {
    async fn get(&self, key: &str) -> Option<CachedPrice>;
    async fn put(&self, key: &str, entry: CachedPrice);
}

/// No shared cache (the API Lambda: personal reads only pass through it).
pub struct NoCache;

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl PriceCache for NoCache {
    async fn get(&self, _key: &str) -> Option<CachedPrice> {
        None
    }
    async fn put(&self, _key: &str, _entry: CachedPrice) {}
}

/// A stored answer and its lifetimes (epoch seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPrice {
    pub body: String,
    pub etag: String,
    pub computed_at: i64,
    pub fresh_until: i64,
    pub stale_until: i64,
}
