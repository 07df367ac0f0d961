//! A fresh public price answer written from the cache's ready entry (the local runtime's fast
//! path for a plain `GET`, issue 29 item 3) is the same answer the whole pipeline gives a
//! `HIT`: status, body, every header and their order, the request id's rules.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use promo_shared::campaigns;
use promo_shared::config::EdgeConfig;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::ids::ProductId;
use promo_shared::domain::money::{Amount, Currency};
use promo_shared::domain::price_book::CatalogProduct;
use promo_shared::ports::clock::ManualClock;
use promo_shared::pricing::catalog;
use promo_shared::testing::at;
use promoctl::embedded::OsIds;
use promoctl::runtime::{Platform, Running};
use serde_json::json;

async fn boot(dir: &std::path::Path, clock: Arc<ManualClock>) -> (Arc<Platform>, Running) {
    let platform =
        Arc::new(Platform::open_with(dir, EdgeConfig::from_lookup(|_| None).unwrap(), clock, Arc::new(OsIds)).unwrap());
    let product = CatalogProduct {
        id: ProductId::parse("p-1").unwrap(),
        brand: Some("b-1".into()),
        category: Some("c-1".into()),
        currency: Currency::parse("KRW").unwrap(),
        list_price: Amount::new(59000).unwrap(),
        sale_price: Amount::new(52000).unwrap(),
    };
    catalog::publish_products(&*platform.store, &[product]).await.unwrap();
    let campaign = Campaign::new(
        serde_json::from_value(json!({
            "id": "nov", "name": "November", "currency": "KRW",
            "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
            "coupons": [{"id": "welcome", "kind": "product", "discount": {"percent": 15, "max": 7000},
                         "applies_to": {"brands": ["b-1"]}, "stackable": true}],
            "claim": {"coupon": "welcome", "stock": 100}
        }))
        .unwrap(),
    )
    .unwrap();
    let now = platform.clock.now();
    campaigns::deploy(&*platform.store, &ManualClock::new(now), &campaign).await.unwrap();
    catalog::publish_price_book(&*platform.store, now, 10, None).await.unwrap();
    let running = support::serve(platform.clone(), Duration::from_secs(60), 0).await;
    (platform, running)
}

/// Status, every header but `date` in order (`x-request-id`'s value as `id` when it is a new
/// one), and the body.
async fn get(running: &Running, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, String) {
    let mut req = reqwest::Client::new().get(format!("http://{}/v1/products/p-1/max-benefit-price", running.addr));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let listed = resp
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str() != "date")
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    (status, listed, resp.text().await.unwrap())
}

fn without_request_id(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers.iter().filter(|(k, _)| k != "x-request-id").cloned().collect()
}

fn request_id(headers: &[(String, String)]) -> Option<&str> {
    headers.iter().find(|(k, _)| k == "x-request-id").map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_from_the_ready_entry_is_the_pipelines_hit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    let (_platform, running) = boot(dir.path(), clock.clone()).await;

    let (status, miss, body) = get(&running, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(miss.contains(&("x-cache".into(), "MISS".into())), "{miss:?}");
    clock.advance(chrono::Duration::seconds(20));

    // A plain GET: written from the ready entry.
    let (status, ready, ready_body) = get(&running, &[]).await;
    // An `If-None-Match` that matches nothing: the same HIT through the whole pipeline.
    let (pipeline_status, pipeline, pipeline_body) = get(&running, &[("if-none-match", "\"other\"")]).await;
    assert_eq!((status, pipeline_status), (200, 200));
    assert_eq!(ready_body, body, "the stored body");
    assert_eq!(pipeline_body, body);
    assert_eq!(without_request_id(&ready), without_request_id(&pipeline), "the same headers in the same order");
    let expected: Vec<(String, String)> = [
        ("content-type", "application/json"),
        ("etag", without_request_id(&miss).iter().find(|(k, _)| k == "etag").unwrap().1.as_str()),
        ("cache-control", "public, max-age=40, stale-while-revalidate=300"),
        ("age", "20"),
        ("vary", "Authorization"),
        ("vary", "Origin"),
        ("x-cache", "HIT"),
        ("content-length", &body.len().to_string()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(without_request_id(&ready), expected);
    // A new request id each time, of the pipeline's form (a UUID).
    let (a, b) = (request_id(&ready).unwrap(), request_id(&pipeline).unwrap());
    assert_ne!(a, b);
    for id in [a, b] {
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7, "{id}");
    }

    // The caller's plausible id is echoed; an implausible one is not, on either path.
    for extra in [&[][..], &[("if-none-match", "\"other\"")][..]] {
        let mut with = vec![("x-request-id", "req-29.3")];
        with.extend_from_slice(extra);
        let (_, h, _) = get(&running, &with).await;
        assert_eq!(request_id(&h), Some("req-29.3"), "{extra:?}");
        let mut with = vec![("x-request-id", "not plausible")];
        with.extend_from_slice(extra);
        let (_, h, _) = get(&running, &with).await;
        assert_eq!(request_id(&h), None, "{extra:?}");
    }

    // Past its freshness the entry is not written as it is: STALE, from the pipeline.
    clock.advance(chrono::Duration::seconds(45));
    let (_, stale, _) = get(&running, &[]).await;
    assert!(stale.contains(&("x-cache".into(), "STALE".into())), "{stale:?}");
    running.shutdown().await.unwrap();
}

/// `?quantity=` is another answer (another cache key): with the one-unit answer fresh in the
/// cache, a read of two units is priced for two, never served from the one-unit entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quantity_read_is_never_the_plain_entry() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-20T12:00:00Z")));
    let (_platform, running) = boot(dir.path(), clock).await;
    let read = |q: &'static str| {
        let url = format!("http://{}/v1/products/p-1/max-benefit-price{q}", running.addr);
        async move {
            let resp = reqwest::get(url).await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    let one = read("").await;
    let one_again = read("").await;
    assert_eq!(one, one_again, "the second plain read is the cached one");
    let two = read("?quantity=2").await;
    assert_ne!(two["final_price"], one["final_price"], "two units are priced as two: {two} vs {one}");
    running.shutdown().await.unwrap();
}
