//! The Worker's environment, read in one place: its vars and secrets through the core's
//! configuration (`promo_shared::config::EdgeConfig`, which names every variable and its
//! default), and the names of its bindings (`wrangler.toml`).

use promo_shared::config::EdgeConfig;
use promo_shared::http::ApiError;

/// The Durable Object namespace of the delivery ledger.
pub const DEDUPE_BINDING: &str = "WEBHOOK_DEDUPE";
/// The KV namespace of products (`product:<id>`) and the price book (`price-book`).
pub const KV_BINDING: &str = "PROMO_KV";
/// Workers Rate Limiting bindings of client callbacks (`[[ratelimits]]`).
pub const CLIENT_LIMITER_BINDING: &str = "CALLBACK_CLIENT_LIMITER";
pub const PAYMENT_LIMITER_BINDING: &str = "CALLBACK_PAYMENT_LIMITER";
/// Cache API keys live under this made-up origin: never fetched, only a cache namespace.
pub const PRICE_CACHE_ORIGIN: &str = "https://price-cache.promo.internal";

/// The configuration from the Worker's vars and secrets (`get`); a misconfigured variable is
/// a 500 that names it (never its value).
pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, ApiError> {
    EdgeConfig::from_lookup(get).map_err(|e| ApiError::Internal(format!("misconfigured worker: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misconfigured_variable_is_named_not_echoed() {
        let e = read(|k| (k == "PROMO_WEBHOOK_SECRET_STANDARD").then(|| "whsec_!!secret!!".into())).unwrap_err();
        assert_eq!(e.status(), 500);
        assert!(e.to_string().contains("PROMO_WEBHOOK_SECRET_STANDARD") && !e.to_string().contains("!!secret!!"));
        let cfg = read(|k| (k == "PROMO_PRICE_CACHE_TTL_SECONDS").then(|| "30".into())).unwrap();
        assert_eq!(cfg.prices.ttl, chrono::Duration::seconds(30));
    }
}
