//! `promoctl --env prod campaign deploy` and `products publish` write the edge's KV through
//! Cloudflare's bulk API (here a local stand-in that records what it receives): the price
//! book on deploy, each product on publish, with the API token as bearer; a partial
//! configuration is refused before anything is written. Only the production target writes
//! the KV: `--env local` never does (infra/tests/it/cli.rs, issue 25 item 16).

use crate::support;

use std::sync::Arc;

use serde_json::{Value, json};

use promo_conformance::cloudflare_kv::serve as fake_cloudflare;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the DynamoDB stand-in (moto): infra/test.sh runs it with --include-ignored"]
async fn deploys_and_product_publishes_reach_the_edges_kv() {
    let (table, endpoint) = support::prod_table("promo-kv").await;
    let (api, seen) = fake_cloudflare().await;
    let dir = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    // Live whenever the test runs: an ended campaign offers nothing.
    let campaign = dir.path().join("live.toml");
    std::fs::write(
        &campaign,
        std::fs::read_to_string(format!("{root}/infra/tests/fixtures/black-friday-2026.toml"))
            .unwrap()
            .replace("starts_at = \"2026-11-20T00:00:00+09:00\"", "starts_at = \"2026-01-01T00:00:00Z\"")
            .replace("ends_at = \"2026-12-01T00:00:00+09:00\"", "ends_at = \"2099-01-01T00:00:00Z\""),
    )
    .unwrap();
    assert!(std::fs::read_to_string(&campaign).unwrap().contains("2099-01-01"), "the window was replaced");
    let campaign = campaign.to_str().unwrap();
    let promoctl = |args: &[&str], with_token: bool| {
        let mut cmd = support::prod_promoctl(&table, &endpoint, &api, dir.path());
        if !with_token {
            cmd.env_remove("PROMO_CF_API_TOKEN");
        }
        cmd.args(args).output().unwrap()
    };

    let partial = promoctl(&["campaign", "deploy", campaign], false);
    assert_eq!(partial.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&partial.stderr).contains("PROMO_CF_API_TOKEN"));
    assert!(seen.lock().unwrap().is_empty());
    let listed = promoctl(&["campaign", "list", "--json"], true);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&listed.stdout).unwrap(), json!([]), "nothing was deployed");

    let deployed = promoctl(&["campaign", "deploy", campaign], true);
    assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
    let published = promoctl(&["products", "publish", &format!("{root}/examples/products.json")], true);
    assert!(published.status.success(), "{}", String::from_utf8_lossy(&published.stderr));
    assert!(!dir.path().join("no-local-store").exists(), "--env prod never touches the local store");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let (target, auth, book) = &seen[0];
    assert_eq!((target.as_str(), auth.as_str()), ("acct-1/ns-1", "Bearer cf-token"));
    assert_eq!(book[0]["key"], "price-book");
    let book: Value = serde_json::from_str(book[0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(book["coupons"][0]["coupon"]["id"], "black-friday-2026:welcome-10pct");
    assert_eq!(book["payment_promotions"][0]["promotion"]["id"], "black-friday-2026:card-x");
    let keys: Vec<&str> = seen[1].2.as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["product:p-1", "product:p-2"]);
}

/// The API Lambda's path: a claim that finds its campaign sold out republishes the price book
/// to the edge's KV (through the same bulk API), once, and without the sold-out coupon; the
/// campaign's payment promotions stay on offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sell_out_republishes_the_price_book_to_the_edges_kv() {
    use promo_lambdas::edge_kv::EdgeKv;
    use promo_shared::campaigns;
    use promo_shared::claims::ClaimError;
    use promo_shared::claims::Claimer;
    use promo_shared::claims::sell_out::Republisher;
    use promo_shared::domain::ids::UserId;
    use promo_shared::ports::clock::Clock;
    use promo_shared::ports::clock::ManualClock;
    use promo_shared::pricing::catalog;
    use promoctl::embedded::{OsIds, SqliteStore};

    let (api, seen) = fake_cloudflare().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    let clock = Arc::new(ManualClock::new(promo_shared::testing::at("2026-11-25T12:00:00Z")));
    let mut spec = promo_shared::testing::campaign_json();
    spec["claim"]["stock"] = json!(1);
    spec["payment_promotions"] =
        json!([{"id": "card-x", "method": "card:x", "discount": {"percent": 10, "max": 5000}, "min_payment": 40000}]);
    let campaign = promo_shared::domain::campaign::Campaign::new(serde_json::from_value(spec).unwrap()).unwrap();
    campaigns::deploy(&*store, &*clock, &campaign).await.unwrap();
    catalog::publish_price_book(&*store, clock.now(), 10, None).await.unwrap();

    let kv = EdgeKv {
        api_base: api,
        account_id: "acct-1".into(),
        namespace_id: "ns-1".into(),
        api_token: promo_shared::domain::secret::SecretString::new("cf-token"),
    };
    let republisher = Arc::new(Republisher::new(store.clone(), clock.clone(), Some(Arc::new(kv) as _)));
    let claimer = Claimer::new(store.clone(), clock.clone(), Arc::new(OsIds)).with_sold_out_hook(republisher);
    claimer.claim(&campaign.id, &UserId::parse("u-1").unwrap()).await.unwrap();
    assert!(seen.lock().unwrap().is_empty(), "in stock: nothing to republish");
    for user in ["u-2", "u-3"] {
        let refused = claimer.claim(&campaign.id, &UserId::parse(user).unwrap()).await;
        assert!(matches!(refused, Err(ClaimError::SoldOut(_))), "{refused:?}");
    }

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one republication for two sold-out answers");
    let (target, auth, entries) = &seen[0];
    assert_eq!((target.as_str(), auth.as_str()), ("acct-1/ns-1", "Bearer cf-token"));
    assert_eq!(entries[0]["key"], "price-book");
    let book: promo_shared::domain::price_book::PriceBook =
        serde_json::from_str(entries[0]["value"].as_str().unwrap()).unwrap();
    assert!(book.coupons.is_empty(), "the sold-out coupon is no longer offered: {book:?}");
    assert_eq!(book.payment_promotions.len(), 1, "its payment promotion stays");
    assert_eq!(book.rounding_unit, 10, "the quote parameters of the published book are kept");
}
