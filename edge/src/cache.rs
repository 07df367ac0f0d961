//! The price cache at the edge: public answers in the Cache API, each kept until its
//! `stale_until`.

use async_trait::async_trait;
use promo_shared::ports::price_cache::{CachedPrice, PriceCache};
use worker::{Headers, Response};

use crate::clock::now;
use crate::config::PRICE_CACHE_ORIGIN;

pub struct EdgeCache;

#[async_trait(?Send)]
impl PriceCache for EdgeCache {
    async fn get(&self, key: &str) -> Option<CachedPrice> {
        let mut resp = worker::Cache::default().get(format!("{PRICE_CACHE_ORIGIN}/{key}"), true).await.ok()??;
        resp.json::<CachedPrice>().await.ok()
    }

    async fn put(&self, key: &str, entry: CachedPrice) {
        let keep = entry.stale_until - now().timestamp();
        if keep <= 0 {
            return;
        }
        let Ok(resp) = Response::from_json(&entry) else { return };
        let headers = Headers::new();
        if headers.set("content-type", "application/json").is_err()
            || headers.set("cache-control", &format!("public, max-age={keep}")).is_err()
        {
            return;
        }
        let _ = worker::Cache::default().put(format!("{PRICE_CACHE_ORIGIN}/{key}"), resp.with_headers(headers)).await;
    }
}
