//! The price book publisher port: where the edge reads the price book from (the Worker's KV
//! namespace through Cloudflare's API, in `lambdas::edge_kv`).

use async_trait::async_trait;

use crate::domain::price_book::PriceBook;

/// Writes the price book where product pages read it.
#[async_trait]
pub trait PriceBookPublisher: Send + Sync {
    async fn publish(&self, book: &PriceBook) -> Result<(), String>;
}
