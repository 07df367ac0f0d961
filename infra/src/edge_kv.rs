//! Publishing to the edge: writes the price book and products into the Worker's KV namespace
//! through Cloudflare's API (`PUT .../storage/kv/namespaces/{ns}/bulk`), so a campaign deploy
//! or a product publish reaches product pages without a separate step. Configured by
//! [`crate::config::edge_kv`]; without it, `promoctl products export-kv` prints the same
//! entries for `wrangler kv bulk put`.

use anyhow::Context;
use serde_json::Value;

/// Cloudflare takes at most 10,000 pairs per bulk write.
const BULK_LIMIT: usize = 10_000;

#[derive(Clone, Debug)]
pub struct EdgeKv {
    pub api_base: String,
    pub account_id: String,
    pub namespace_id: String,
    pub api_token: String,
}

impl EdgeKv {
    /// Writes `entries` (`[{"key", "value"}]`); returns how many were written.
    pub async fn put_all(&self, entries: &[Value]) -> anyhow::Result<usize> {
        let url = format!(
            "{}/accounts/{}/storage/kv/namespaces/{}/bulk",
            self.api_base.trim_end_matches('/'),
            self.account_id,
            self.namespace_id
        );
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
        for chunk in entries.chunks(BULK_LIMIT) {
            let resp = http
                .put(&url)
                .bearer_auth(&self.api_token)
                .json(chunk)
                .send()
                .await
                .with_context(|| format!("writing to the edge's KV at {url}"))?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            anyhow::ensure!(
                status.is_success() && body.get("success").and_then(Value::as_bool) == Some(true),
                "the edge's KV refused the write ({status}): {}",
                body.get("errors").unwrap_or(&body)
            );
        }
        Ok(entries.len())
    }
}
