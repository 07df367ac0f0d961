//! Max-benefit price reads and quotes over HTTP, through the local runtime: the product page's
//! public answer is cached (MISS, then HIT with Age, 304 on a matching ETag), a deploy that
//! changes the offers is answered fresh at once, a shopper's token adds their own coupons and
//! mileage and is never cached; `POST /v1/quotes` and `promoctl quote` answer the spec's
//! example exactly.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use promo_lambdas::auth::ShopperAuth;
use promo_shared::campaigns;
use promo_shared::config::EdgeConfig;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::ids::{ProductId, UserId};
use promo_shared::domain::money::{Amount, Currency};
use promo_shared::domain::price_book::CatalogProduct;
use promo_shared::domain::price_book::MileagePolicy;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::clock::ManualClock;
use promo_shared::ports::store::Store;
use promo_shared::pricing::catalog;
use promo_shared::testing::at;
use promoctl::embedded::OsIds;
use promoctl::runtime::{Platform, Running};
use serde_json::{Value, json};

const SHOPPER_SECRET: &str = "e2e-prices-shopper-secret-0123456789";

/// The spec's example request, as README's `promoctl quote < examples/quote-request.json`.
const SPEC_EXAMPLE: &str = include_str!("../../../examples/quote-request.json");

fn november(percent: u8) -> Campaign {
    Campaign::new(
        serde_json::from_value(json!({
            "id": "nov", "name": "November", "currency": "KRW",
            "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
            "coupons": [{"id": "welcome", "kind": "product", "discount": {"percent": percent, "max": 7000},
                         "min_order": 30000, "applies_to": {"brands": ["b-1"]}, "stackable": true}],
            "claim": {"coupon": "welcome", "stock": 100},
            "payment_promotions": [{"id": "card-x", "method": "card:x", "discount": {"percent": 10, "max": 5000},
                                    "min_payment": 40000}]
        }))
        .unwrap(),
    )
    .unwrap()
}

fn product(id: &str, brand: &str) -> CatalogProduct {
    CatalogProduct {
        id: ProductId::parse(id).unwrap(),
        brand: Some(brand.into()),
        category: Some("c-1".into()),
        currency: Currency::parse("KRW").unwrap(),
        list_price: Amount::new(59000).unwrap(),
        sale_price: Amount::new(52000).unwrap(),
    }
}

async fn boot(dir: &Path, clock: Arc<ManualClock>) -> (Arc<Platform>, Running) {
    let platform = Platform::open_with(dir, EdgeConfig::from_lookup(|_| None).unwrap(), clock, Arc::new(OsIds))
        .unwrap()
        .with_shopper_secret(SHOPPER_SECRET)
        .unwrap();
    let platform = Arc::new(platform);
    catalog::publish_products(&*platform.store, &[product("p-1", "b-1"), product("p-2", "b-2")]).await.unwrap();
    let running = support::serve(platform.clone(), Duration::from_secs(60), 0).await;
    (platform, running)
}

async fn deploy(platform: &Platform, campaign: &Campaign) {
    let now = platform.clock.now();
    campaigns::deploy(&*platform.store, &ManualClock::new(now), campaign).await.unwrap();
    let policy = MileagePolicy { max_ratio_percent: 10, min_use: 1000, unit: 10 };
    catalog::publish_price_book(&*platform.store, now, 10, Some(policy)).await.unwrap();
}

async fn get(running: &Running, product: &str, headers: &[(&str, &str)]) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req =
        reqwest::Client::new().get(format!("http://{}/v1/products/{product}/max-benefit-price", running.addr));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_pages_are_cached_until_a_deploy_changes_their_offers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    let (platform, running) = boot(dir.path(), clock.clone()).await;
    deploy(&platform, &november(15)).await;

    let (status, answer, h) = get(&running, "p-1", &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(header(&h, "x-cache"), "MISS");
    // 52000 − 7000 (welcome, capped) = 45000, card −4500: 40500; the coupon is to download.
    assert_eq!(answer["final_price"], 40500, "{answer}");
    assert_eq!(answer["to_download"], json!(["nov:welcome"]));
    assert_eq!(header(&h, "cache-control"), "public, max-age=60, stale-while-revalidate=300");

    clock.advance(chrono::Duration::seconds(20));
    let (_, again, h) = get(&running, "p-1", &[]).await;
    assert_eq!((header(&h, "x-cache"), header(&h, "age")), ("HIT", "20"));
    assert_eq!(again, answer);
    let etag = header(&h, "etag").to_string();
    let (status, _, h) = get(&running, "p-1", &[("if-none-match", &etag)]).await;
    assert_eq!(status, 304);
    assert_eq!(header(&h, "etag"), etag);

    // Another brand's product, then a deploy that changes only b-1's coupon.
    let (_, other, _) = get(&running, "p-2", &[]).await;
    assert_eq!(other["final_price"], 52000 - 5000);
    deploy(&platform, &november(10)).await;
    // The runtime keeps the price book in memory for a second between store reads.
    clock.advance(chrono::Duration::milliseconds(1100));
    let (_, changed, h) = get(&running, "p-1", &[]).await;
    assert_eq!(header(&h, "x-cache"), "MISS", "the deploy changed p-1's offers");
    assert_eq!(changed["final_price"], 52000 - 5200 - 4680);
    let (_, _, h) = get(&running, "p-2", &[]).await;
    assert_eq!(header(&h, "x-cache"), "HIT", "p-2's offers did not change");

    let (status, missing, _) = get(&running, "nope", &[]).await;
    assert_eq!(status, 404, "{missing}");

    // What the edge's KV gets (`promoctl products export-kv`): the book and every product.
    let bulk = catalog::kv_bulk(&*platform.store).await.unwrap();
    let keys: Vec<&str> = bulk.as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["price-book", "product:p-1", "product:p-2"]);
    let book: promo_shared::domain::price_book::PriceBook =
        serde_json::from_str(bulk[0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(book.coupons[0].coupon.id, "nov:welcome");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shoppers_own_coupons_and_mileage_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    let (platform, running) = boot(dir.path(), clock.clone()).await;
    deploy(&platform, &november(15)).await;
    let user = UserId::parse("page-shopper").unwrap();
    catalog::set_mileage(&*platform.store, &user, 3000).await.unwrap();
    let token =
        ShopperAuth::new(SHOPPER_SECRET.as_bytes()).unwrap().mint(&user, clock.now(), chrono::Duration::minutes(5));
    let bearer = format!("Bearer {token}");

    let (status, mine, h) = get(&running, "p-1", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(header(&h, "cache-control"), "private, no-store");
    assert_eq!(mine["final_price"], 37800, "the spec's example: mileage 3000, card on 42000");
    assert_eq!(mine["mileage_used"], 3000);
    assert!(platform.price_cache.is_empty(), "a personal answer is never stored");

    let (status, _, _) = get(&running, "p-1", &[("authorization", "Bearer not-a-token")]).await;
    assert_eq!(status, 401);

    // A coupon stored with its window backwards (a reward issued after its campaign ended,
    // by an older issuer) and one that no longer parses: the read answers all the same.
    let born_expired = json!({
        "pk": format!("USER#{user}"), "sk": "COUPON#AAAA-BBBB-CCCC", "type": "coupon",
        "code": "AAAA-BBBB-CCCC", "user_id": user.as_str(), "campaign_id": "nov",
        "template": {"id": "late", "kind": "cart", "discount": {"fixed": 1000}},
        "currency": "KRW", "status": "ISSUED", "source": {"type": "claim", "claim_no": 1},
        "issued_at": "2026-11-22T12:00:00Z", "starts_at": "2026-11-22T12:00:00Z", "ends_at": "2026-11-01T00:00:00Z"
    });
    let garbled = json!({"pk": format!("USER#{user}"), "sk": "COUPON#ZZZZ-ZZZZ-ZZZZ", "type": "coupon", "code": 7});
    for item in [born_expired, garbled] {
        platform.store.put(item.as_object().unwrap().clone(), None).await.unwrap();
    }
    let (status, mine, _) = get(&running, "p-1", &[("authorization", &bearer)]).await;
    assert_eq!((status, &mine["final_price"]), (200, &json!(37800)), "{mine}");
    running.shutdown().await.unwrap();
}

/// A claim coupon stops pricing product pages when nobody can download it any more: for
/// everyone once the stock is gone (the claim that finds it sold out republishes the price
/// book), and for a shopper who has claimed it as often as allowed and used it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupon_nobody_can_download_any_more_is_not_priced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    let (platform, running) = boot(dir.path(), clock.clone()).await;
    let mut spec = november(15).spec().clone();
    spec.claim.as_mut().unwrap().stock = 2;
    deploy(&platform, &Campaign::new(spec).unwrap()).await;
    let auth = ShopperAuth::new(SHOPPER_SECRET.as_bytes()).unwrap();
    let bearer = |user: &str| {
        format!("Bearer {}", auth.mint(&UserId::parse(user).unwrap(), clock.now(), chrono::Duration::minutes(5)))
    };
    let claim = |user: &str| {
        let request = reqwest::Client::new()
            .post(format!("http://{}/v1/campaigns/nov/claims", running.addr))
            .header("authorization", bearer(user));
        async move {
            let resp = request.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };

    let (_, public, _) = get(&running, "p-1", &[]).await;
    assert_eq!((public["final_price"].clone(), public["to_download"].clone()), (json!(40500), json!(["nov:welcome"])));

    // Ann claims her one coupon and uses it: the public one is not hers to download again.
    let (status, coupon) = claim("ann").await;
    assert_eq!(status, 201, "{coupon}");
    let (_, ann, _) = get(&running, "p-1", &[("authorization", &bearer("ann"))]).await;
    assert_eq!(ann["final_price"], 40500, "her own coupon prices it: {ann}");
    let code = promo_shared::domain::coupon::CouponCode::parse(coupon["code"].as_str().unwrap()).unwrap();
    let key = promo_shared::wallet::items::key(&UserId::parse("ann").unwrap(), &code);
    let used = [promo_shared::ports::store::Update::set("status", "USED")];
    platform.store.update(&key, &used, None).await.unwrap();
    let (_, ann, _) = get(&running, "p-1", &[("authorization", &bearer("ann"))]).await;
    assert_eq!(ann["final_price"], 52000 - 5000, "used, and no claim left: the card only: {ann}");
    assert_eq!(ann["to_download"], json!([]));

    // Bob takes the last unit; Cid finds it sold out, which republishes the price book.
    assert_eq!(claim("bob").await.0, 201);
    let (status, answer) = claim("cid").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("sold_out")), "{answer}");
    clock.advance(chrono::Duration::milliseconds(1100)); // the runtime's 1 s price-book memo
    let (_, public, h) = get(&running, "p-1", &[]).await;
    assert_eq!(header(&h, "x-cache"), "MISS", "the offers changed");
    assert_eq!(public["final_price"], 52000 - 5000, "sold out: the card only: {public}");
    assert_eq!(public["to_download"], json!([]));
    let (_, dee, _) = get(&running, "p-1", &[("authorization", &bearer("dee"))]).await;
    assert_eq!(dee["final_price"], 52000 - 5000, "nor for a signed-in shopper: {dee}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_answer_the_spec_example_over_http_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    let (_platform, running) = boot(dir.path(), clock).await;
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/quotes", running.addr))
        .body(SPEC_EXAMPLE)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let http: Value = resp.json().await.unwrap();
    assert_eq!(http["final_price"], 37800);
    assert_eq!(
        (&http["product_coupon"], &http["payment_promotion"], &http["mileage_used"]),
        (&json!("welcome"), &json!("card-x"), &json!(3000))
    );
    let bad = reqwest::Client::new()
        .post(format!("http://{}/v1/quotes", running.addr))
        .body(SPEC_EXAMPLE.replace("\"rounding_unit\":10", "\"rounding_unit\":0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);

    let quote = |stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_promoctl"))
            .args(["quote", "--compact"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = quote(SPEC_EXAMPLE);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, http, "the CLI and the route give the same answer");
    let invalid = quote(&SPEC_EXAMPLE.replace("\"quantity\":1", "\"quantity\":0"));
    assert_eq!(invalid.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&invalid.stderr).contains("quantity"),
        "{}",
        String::from_utf8_lossy(&invalid.stderr)
    );
    assert!(invalid.stdout.is_empty());
    running.shutdown().await.unwrap();
}
