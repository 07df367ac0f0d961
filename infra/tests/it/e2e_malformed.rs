//! A corpus of malformed requests against every route of the local platform (the limited
//! events' and the unsubscribe links' too), sent byte for
//! byte as written (no client library normalising paths or refusing header bytes): each is
//! answered by a 4xx with the error body `{"error": {"code", "message"}}`, none writes
//! anything (the store, the queue and the outbox are the same before and after), and a valid
//! request to each route is served afterwards.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use promo_lambdas::auth::DEFAULT_AUDIENCE;
use promo_lambdas::auth::DEFAULT_ISSUER;
use promo_lambdas::auth::ShopperAuth;
use promo_shared::campaigns;
use promo_shared::config::EdgeConfig;
use promo_shared::domain::ids::UserId;
use promo_shared::payments::webhooks::standard;
use promo_shared::payments::webhooks::stripe;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::clock::ManualClock;
use promo_shared::pricing::catalog;
use promo_shared::testing::at;
use promoctl::embedded::OsIds;
use promoctl::runtime::Platform;
use serde_json::{Value, json};
use support::{RawAnswer, items, raw_request};

const STANDARD: &str = "whsec_c3RhbmRhcmQtY29ycHVzLXNlY3JldC1mb3ItdGVzdHM=";
const PORTONE: &str = "whsec_cG9ydG9uZS1jb3JwdXMtc2VjcmV0LWZvci10ZXN0cw==";
const STRIPE: &str = "whsec_stripe_corpus_secret";
const SHOPPER_SECRET: &str = "corpus-shopper-secret-0123456789abcdef";
const CAMPAIGN: &str = "black-friday-2026";
/// The limited event of `examples/drop.toml`.
const EVENT: &str = "signed-100";

/// One request as it goes on the wire.
#[derive(Clone)]
struct Raw {
    kind: String,
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Raw {
    fn new(kind: &str, method: &str, path: &str) -> Raw {
        Raw { kind: kind.into(), method: method.into(), path: path.into(), headers: vec![], body: vec![] }
    }
    fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Raw {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn headers(mut self, headers: Vec<(String, Vec<u8>)>) -> Raw {
        self.headers.extend(headers);
        self
    }
    fn body(mut self, body: impl Into<Vec<u8>>) -> Raw {
        self.body = body.into();
        self
    }
    fn kind(mut self, kind: &str) -> Raw {
        self.kind = kind.into();
        self
    }
    async fn send(&self, addr: std::net::SocketAddr) -> RawAnswer {
        let headers: Vec<(&str, &[u8])> = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        raw_request(addr, &self.method, &self.path, &headers, &self.body).await
    }
}

fn h(pairs: &[(&str, String)]) -> Vec<(String, Vec<u8>)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone().into_bytes())).collect()
}

/// Standard Webhooks headers for `body` signed with `secret` at `ts` under `id`.
fn signed(secret: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let sig = standard::Secret::parse(secret).unwrap().sign(id, ts, body);
    h(&[("webhook-id", id.into()), ("webhook-timestamp", ts.to_string()), ("webhook-signature", sig)])
}

fn stripe_signed(ts: i64, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    h(&[("stripe-signature", stripe::Secret::parse(STRIPE).unwrap().sign(ts, body))])
}

/// Kinds every route gets: other methods, header bytes that are not visible ASCII, a body
/// over the limit, paths beside the route.
fn common(method: &str, path: &str, valid: &Raw) -> Vec<Raw> {
    let others: Vec<&str> = ["PUT", "DELETE", "PATCH", "FOO", "get"].into_iter().filter(|m| *m != method).collect();
    let mut out: Vec<Raw> =
        others.iter().map(|m| Raw { method: (*m).into(), ..valid.clone() }.kind(&format!("method {m}"))).collect();
    out.push(valid.clone().header("x-note", b"caf\xe9".to_vec()).kind("Latin-1 header value"));
    out.push(valid.clone().header("user-agent", b"agent\x80".to_vec()).kind("byte 0x80 in a header"));
    out.push(valid.clone().header("accept-language", b"\xff\xfe".to_vec()).kind("bytes 0xff 0xfe in a header"));
    out.push(Raw { body: vec![b'x'; 70 * 1024], ..valid.clone() }.kind("a body over 64 KiB"));
    out.push(Raw { path: format!("{path}/extra"), ..valid.clone() }.kind("a segment after the route"));
    out.push(
        Raw { path: path.replacen("/v1/", "/v1//", 1).replacen("/healthz", "//healthz", 1), ..valid.clone() }
            .kind("an empty segment"),
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_refuses_malformed_requests_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-25T12:00:00Z")));
    let vars: BTreeMap<&str, &str> = BTreeMap::from([
        ("PROMO_WEBHOOK_SECRET_STANDARD", STANDARD),
        ("PROMO_WEBHOOK_SECRET_PORTONE", PORTONE),
        ("PROMO_WEBHOOK_SECRET_STRIPE", STRIPE),
        ("PROMO_PORTONE_API_BASE", "http://127.0.0.1:9"),
        ("PROMO_PORTONE_API_SECRET", "corpus-portone-secret"),
        ("PROMO_CALLBACK_LIMIT_PER_CLIENT", "100000"),
        ("PROMO_CALLBACK_LIMIT_PER_PAYMENT", "100000"),
    ]);
    let cfg = EdgeConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
    let platform = Arc::new(
        Platform::open_with(dir.path(), cfg, clock.clone(), Arc::new(OsIds))
            .unwrap()
            .with_shopper_secret(SHOPPER_SECRET)
            .unwrap(),
    );
    campaigns::deploy(&*platform.store, &*clock, &support::example_campaign()).await.unwrap();
    let drop = promoctl::campaign_file::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/drop.toml"),
        clock.now(),
    )
    .unwrap();
    campaigns::deploy(&*platform.store, &*clock, &drop).await.unwrap();
    // The event opens now: its due transition is worked here, not by the runtime's first
    // tick racing the corpus's "nothing written" snapshot.
    platform.tick_events().await.unwrap();
    let product: promo_shared::domain::price_book::CatalogProduct = serde_json::from_value(json!({"id": "p-1",
        "brand": "b-1", "category": "c-1", "currency": "KRW", "list_price": 59000, "sale_price": 52000}))
    .unwrap();
    catalog::publish_products(&*platform.store, &[product]).await.unwrap();
    catalog::publish_price_book(&*platform.store, clock.now(), 10, None).await.unwrap();
    // No consumers: anything handed off would stay in the queue, where the test can see it.
    let running = support::serve(platform.clone(), Duration::from_secs(3600), 0).await;
    let addr = running.addr;

    let now = clock.now();
    let ts = now.timestamp();
    let auth = ShopperAuth::new(SHOPPER_SECRET.as_bytes()).unwrap();
    let token = |user: &str| auth.mint(&UserId::parse(user).unwrap(), now, chrono::Duration::minutes(10));
    let bearer = |t: String| format!("Bearer {t}");
    let forged = |claims: Value, alg: Algorithm, secret: &str| {
        jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    };
    let exp = now.timestamp() + 600;
    let claims_of = |extra: Value| {
        let mut c = json!({"sub": "u-1", "exp": exp, "iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let bad_tokens: Vec<(&str, String)> = vec![
        ("no token", String::new()),
        ("not a JWT", bearer("garbage".into())),
        ("Basic credentials", "Basic dTpw".into()),
        ("Bearer without a token", "Bearer".into()),
        (
            "an expired token",
            bearer(auth.mint(
                &UserId::parse("u-1").unwrap(),
                now - chrono::Duration::hours(2),
                chrono::Duration::minutes(1),
            )),
        ),
        (
            "another secret",
            bearer(forged(claims_of(json!({})), Algorithm::HS256, "another-secret-another-secret-0123")),
        ),
        ("another issuer", bearer(forged(claims_of(json!({"iss": "elsewhere"})), Algorithm::HS256, SHOPPER_SECRET))),
        ("no audience", bearer(forged(claims_of(json!({"aud": null})), Algorithm::HS256, SHOPPER_SECRET))),
        ("HS512", bearer(forged(claims_of(json!({})), Algorithm::HS512, SHOPPER_SECRET))),
        (
            "a subject outside the id alphabet",
            bearer(forged(claims_of(json!({"sub": "u 1"})), Algorithm::HS256, SHOPPER_SECRET)),
        ),
    ];
    let with_token = |r: Raw, kind: &str, value: &str| {
        if value.is_empty() { r.kind(kind) } else { r.header("authorization", value).kind(kind) }
    };

    let mut corpus: BTreeMap<&str, Vec<Raw>> = BTreeMap::new();

    // GET /healthz
    let valid = Raw::new("valid", "GET", "/healthz");
    let mut c = common("GET", "/healthz", &valid);
    for m in ["POST", "OPTIONS", "TRACE", "COPY"] {
        c.push(Raw { method: m.into(), ..valid.clone() }.kind(&format!("method {m}")));
    }
    for p in ["/healthzz", "/HEALTHZ", "/healthz/x/y", "/health", "/%68ealthz"] {
        c.push(Raw::new(&format!("path {p}"), "GET", p));
    }
    c.push(valid.clone().header("cookie", b"\xffsession".to_vec()).kind("0xff in a cookie"));
    c.push(valid.clone().header("if-none-match", b"\"\xe9\"".to_vec()).kind("Latin-1 in If-None-Match"));
    corpus.insert("GET /healthz", c);

    // POST /v1/webhooks/standard
    let paid = |payment: &str| {
        json!({"type": "paid", "payment_id": payment, "order_id": "o-1", "user_id": "u-1", "amount": 52000,
            "currency": "KRW", "items": [], "occurred_at": "2026-11-25T11:00:00Z"})
    };
    let webhook = |path: &str, secret: &str, body: &[u8]| {
        Raw::new("valid", "POST", path).headers(signed(secret, "msg_corpus", ts, body)).body(body.to_vec())
    };
    let body = paid("pay-corpus").to_string().into_bytes();
    let std_valid = webhook("/v1/webhooks/standard", STANDARD, &body);
    let mut c = common("POST", "/v1/webhooks/standard", &std_valid);
    let signed_body = |kind: &str, b: Vec<u8>| webhook("/v1/webhooks/standard", STANDARD, &b).kind(kind);
    c.extend(header_malformations("/v1/webhooks/standard", STANDARD, &body, ts));
    for (kind, b) in [
        ("not UTF-8", b"\xff\xfe{}".to_vec()),
        ("not JSON", b"{nope".to_vec()),
        ("a JSON array", b"[{\"type\":\"paid\"}]".to_vec()),
        ("a JSON string", b"\"paid\"".to_vec()),
        ("a number type", br#"{"type": 7}"#.to_vec()),
        ("no type", b"{}".to_vec()),
        ("an empty body", vec![]),
    ] {
        c.push(signed_body(kind, b));
    }
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut v = paid("pay-corpus");
        f(&mut v);
        v.to_string().into_bytes()
    };
    for (kind, b) in [
        ("a negative amount", mutate(&|v| v["amount"] = json!(-1))),
        ("an unknown currency", mutate(&|v| v["currency"] = json!("ABC"))),
        ("payment id `.`", mutate(&|v| v["payment_id"] = json!("."))),
        ("payment id `..`", mutate(&|v| v["payment_id"] = json!(".."))),
        ("a user id with a space", mutate(&|v| v["user_id"] = json!("u 1"))),
        ("an unknown field", mutate(&|v| v["surprise"] = json!(1))),
        (
            "an item of quantity 0",
            mutate(&|v| v["items"] = json!([{"product_id": "p-1", "quantity": 0, "unit_price": 1}])),
        ),
        ("an instant that is not RFC 3339", mutate(&|v| v["occurred_at"] = json!("yesterday"))),
        (
            "a refund of more than was paid",
            mutate(&|v| {
                v["type"] = json!("refunded");
                v["paid_amount"] = json!(100);
            }),
        ),
    ] {
        c.push(signed_body(kind, b));
    }
    corpus.insert("POST /v1/webhooks/standard", c);

    // POST /v1/webhooks/portone
    let po = |payment: Value| {
        json!({"type": "Transaction.Paid", "timestamp": "2026-11-25T11:00:00Z",
            "data": {"storeId": "store-1", "paymentId": payment, "transactionId": "tx-1"}})
        .to_string()
        .into_bytes()
    };
    let po_valid = webhook("/v1/webhooks/portone", PORTONE, &po(json!("po-corpus")));
    let mut c = common("POST", "/v1/webhooks/portone", &po_valid);
    c.extend(header_malformations("/v1/webhooks/portone", PORTONE, &po(json!("po-corpus")), ts));
    for (kind, b) in [
        ("payment id `.`", po(json!("."))),
        ("payment id `..`", po(json!(".."))),
        ("payment id with a slash", po(json!("a/b"))),
        ("an empty payment id", po(json!(""))),
        ("a number payment id", po(json!(5))),
        ("no data", br#"{"type": "Transaction.Paid"}"#.to_vec()),
        ("a JSON array", b"[]".to_vec()),
        ("a number type", br#"{"type": 1, "data": {"paymentId": "p"}}"#.to_vec()),
        ("not JSON", b"Transaction.Paid".to_vec()),
    ] {
        c.push(webhook("/v1/webhooks/portone", PORTONE, &b).kind(kind));
    }
    corpus.insert("POST /v1/webhooks/portone", c);

    // POST /v1/webhooks/stripe
    let st = |f: &dyn Fn(&mut Value)| {
        let mut v = json!({"id": "evt_corpus", "object": "event", "type": "payment_intent.succeeded", "created": ts,
            "data": {"object": {"id": "pi_corpus", "amount": 52000, "amount_received": 52000, "currency": "krw",
            "metadata": {"user_id": "u-1"}}}});
        f(&mut v);
        v.to_string().into_bytes()
    };
    let stripe_raw =
        |b: &[u8]| Raw::new("valid", "POST", "/v1/webhooks/stripe").headers(stripe_signed(ts, b)).body(b.to_vec());
    let st_body = st(&|_| {});
    let mut c = common("POST", "/v1/webhooks/stripe", &stripe_raw(&st_body));
    let sig = String::from_utf8(stripe_signed(ts, &st_body)[0].1.clone()).unwrap();
    for (kind, headers) in [
        ("no signature header", vec![]),
        ("two signature headers", h(&[("stripe-signature", sig.clone()), ("stripe-signature", sig.clone())])),
        ("a timestamp that is not a number", h(&[("stripe-signature", sig.replacen(&format!("t={ts}"), "t=abc", 1))])),
        ("no timestamp", h(&[("stripe-signature", sig.split(',').skip(1).collect::<Vec<_>>().join(","))])),
        ("only a v0 signature", h(&[("stripe-signature", sig.replace("v1=", "v0="))])),
        ("a stale timestamp", stripe_signed(ts - 3600, &st_body)),
        (
            "another secret",
            h(&[("stripe-signature", stripe::Secret::parse("whsec_other").unwrap().sign(ts, &st_body))]),
        ),
    ] {
        c.push(Raw::new(kind, "POST", "/v1/webhooks/stripe").headers(headers).body(st_body.clone()));
    }
    c.push(
        Raw::new("a tampered body", "POST", "/v1/webhooks/stripe")
            .headers(stripe_signed(ts, &st_body))
            .body(st(&|v| v["created"] = json!(1))),
    );
    for (kind, b) in [
        ("not JSON", b"{".to_vec()),
        ("a JSON array", b"[]".to_vec()),
        (
            "no id",
            st(&|v| {
                v.as_object_mut().unwrap().remove("id");
            }),
        ),
        (
            "no created",
            st(&|v| {
                v.as_object_mut().unwrap().remove("created");
            }),
        ),
        ("no data.object", st(&|v| v["data"] = json!({}))),
        (
            "no amount_received",
            st(&|v| {
                v["data"]["object"].as_object_mut().unwrap().remove("amount_received");
            }),
        ),
        ("an unknown currency", st(&|v| v["data"]["object"]["currency"] = json!("zzz"))),
        ("payment id `.`", st(&|v| v["data"]["object"]["id"] = json!("."))),
        ("a user id with a space", st(&|v| v["data"]["object"]["metadata"]["user_id"] = json!("u 1"))),
        ("a number type", st(&|v| v["type"] = json!(3))),
        ("a negative amount", st(&|v| v["data"]["object"]["amount_received"] = json!(-5))),
        (
            "a refund without the charge's amount",
            st(&|v| {
                v["type"] = json!("charge.refunded");
                v["data"]["object"] = json!({"id": "ch_1", "payment_intent": "pi_corpus", "amount_refunded": 1, "currency": "krw", "metadata": {"user_id": "u-1"}});
            }),
        ),
    ] {
        c.push(stripe_raw(&b).kind(kind));
    }
    corpus.insert("POST /v1/webhooks/stripe", c);

    // POST /v1/payments/{id}/complete
    let cb = |id: &str| {
        Raw::new(&format!("payment id {id:?}"), "POST", &format!("/v1/payments/{id}/complete")).body(b"{}".to_vec())
    };
    let mut c = common("POST", "/v1/payments/po-corpus/complete", &cb("po-corpus"));
    let long = "p".repeat(129);
    for id in [
        ".",
        "..",
        "%2E",
        "%2e%2E",
        "a%2Fb",
        "a%20b",
        long.as_str(),
        "%C3%A9",
        "a%23b",
        "a%25b",
        "",
        "a*b",
        "a'b",
        "a,b",
        "~tilde",
    ] {
        c.push(cb(id));
    }
    corpus.insert("POST /v1/payments/{id}/complete", c);

    // POST /v1/quotes
    let quote = |f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_str(include_str!("../../../examples/quote-request.json")).unwrap();
        f(&mut v);
        v.to_string().into_bytes()
    };
    let q = |kind: &str, b: Vec<u8>| Raw::new(kind, "POST", "/v1/quotes").body(b);
    let mut c = common("POST", "/v1/quotes", &q("valid", quote(&|_| {})));
    let many_lines: Vec<Value> =
        (0..7).map(|i| json!({"product": {"id": format!("p-{i}"), "sale_price": 10000}})).collect();
    let many_coupons: Vec<Value> = (0..7)
        .map(|i| {
            json!({"id": format!("c-{i}"), "kind": "product", "discount": {"fixed": 100},
        "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"})
        })
        .collect();
    for (kind, b) in [
        ("not JSON", b"{".to_vec()),
        ("not UTF-8", b"\xff".to_vec()),
        ("a JSON array", b"[]".to_vec()),
        ("an empty body", vec![]),
        (
            "no currency",
            quote(&|v| {
                v.as_object_mut().unwrap().remove("currency");
            }),
        ),
        ("an unknown currency", quote(&|v| v["currency"] = json!("XYZ"))),
        ("a rounding unit of 0", quote(&|v| v["rounding_unit"] = json!(0))),
        ("a negative price", quote(&|v| v["product"]["sale_price"] = json!(-1))),
        ("a percent over 100", quote(&|v| v["coupons"][0]["discount"]["percent"] = json!(101))),
        ("a `now` that is not RFC 3339", quote(&|v| v["now"] = json!("yesterday"))),
        ("a coupon ending before it starts", quote(&|v| v["coupons"][0]["ends_at"] = json!("2026-10-01T00:00:00Z"))),
        ("an unknown field", quote(&|v| v["surprise"] = json!(true))),
        ("product and lines both", quote(&|v| v["lines"] = json!([{"product": {"id": "p-2", "sale_price": 1}}]))),
        (
            "neither product nor lines",
            quote(&|v| {
                v.as_object_mut().unwrap().remove("product");
            }),
        ),
        ("a quantity of 0", quote(&|v| v["quantity"] = json!(0))),
        ("a negative mileage balance", quote(&|v| v["mileage"]["balance"] = json!(-1))),
        ("a coupon id with a space", quote(&|v| v["coupons"][0]["id"] = json!("a b"))),
        ("a fixed discount of 0", quote(&|v| v["coupons"][0]["discount"] = json!({"fixed": 0}))),
        ("a string for a number", quote(&|v| v["product"]["sale_price"] = json!("52000"))),
        (
            "a cart too complex to price",
            quote(&|v| {
                v.as_object_mut().unwrap().remove("product");
                v["lines"] = json!(many_lines);
                v["coupons"] = json!(many_coupons);
            }),
        ),
    ] {
        c.push(q(kind, b));
    }
    corpus.insert("POST /v1/quotes", c);

    // POST /v1/campaigns/{id}/claims
    let claim_path = format!("/v1/campaigns/{CAMPAIGN}/claims");
    let good = bearer(token("corpus-shopper"));
    let claim = Raw::new("valid", "POST", &claim_path).header("authorization", good.clone());
    let mut c = common("POST", &claim_path, &claim);
    for (kind, value) in &bad_tokens {
        c.push(with_token(Raw::new("", "POST", &claim_path), kind, value));
    }
    c.push(claim.clone().header("authorization", good.clone()).kind("two Authorization headers"));
    for id in [".", "%2E", "a%23b", &"c".repeat(129), "no-such-campaign"] {
        let path = format!("/v1/campaigns/{id}/claims");
        c.push(Raw::new(&format!("campaign {id:?}"), "POST", &path).header("authorization", good.clone()));
    }
    for (kind, key) in [
        ("an empty Idempotency-Key", b"".to_vec()),
        ("an Idempotency-Key of 256 characters", vec![b'k'; 256]),
        ("a Latin-1 Idempotency-Key", b"key-\xe9".to_vec()),
        ("a UTF-8 Idempotency-Key", "key-€".as_bytes().to_vec()),
    ] {
        c.push(claim.clone().header("idempotency-key", key).kind(kind));
    }
    c.push(claim.clone().header("idempotency-key", "a").header("idempotency-key", "b").kind("two Idempotency-Keys"));
    corpus.insert("POST /v1/campaigns/{id}/claims", c);

    // GET /v1/users/{id}/coupons
    let wallet = Raw::new("valid", "GET", "/v1/users/u-1/coupons").header("authorization", bearer(token("u-1")));
    let mut c = common("GET", "/v1/users/u-1/coupons", &wallet);
    for (kind, value) in &bad_tokens {
        c.push(with_token(Raw::new("", "GET", "/v1/users/u-1/coupons"), kind, value));
    }
    c.push(
        Raw::new("another shopper's wallet", "GET", "/v1/users/u-2/coupons")
            .header("authorization", bearer(token("u-1"))),
    );
    for id in [".", "%2E", "a%20b", &"u".repeat(129)] {
        let path = format!("/v1/users/{id}/coupons");
        c.push(Raw::new(&format!("user {id:?}"), "GET", &path).header("authorization", bearer(token("u-1"))));
    }
    corpus.insert("GET /v1/users/{id}/coupons", c);

    // GET /v1/products/{id}/max-benefit-price
    let price_path = "/v1/products/p-1/max-benefit-price";
    let mut c = common("GET", price_path, &Raw::new("valid", "GET", price_path));
    for (kind, value) in bad_tokens.iter().skip(1) {
        c.push(with_token(Raw::new("", "GET", price_path), kind, value));
    }
    for id in ["no-such-product", ".", "%2E", "a%23b", &"p".repeat(129)] {
        let path = format!("/v1/products/{id}/max-benefit-price");
        c.push(Raw::new(&format!("product {id:?}"), "GET", &path));
    }
    corpus.insert("GET /v1/products/{id}/max-benefit-price", c);

    // The routes added since (issue 25): unsubscribe, events, reservations, and the shoppers'
    // reservations. Two reservations exist before the corpus runs: the corpus shopper's and
    // another shopper's.
    let event_path = format!("/v1/events/{EVENT}");
    let reservations_path = format!("{event_path}/reservations");
    let events = platform.api.events();
    let event_id = promo_shared::domain::ids::EventId::parse(EVENT).unwrap();
    let theirs = events.reserve(&event_id, &UserId::parse("other-shopper").unwrap()).await.unwrap();
    let mine = events.reserve(&event_id, &UserId::parse("corpus-shopper").unwrap()).await.unwrap();
    let (theirs, mine) = (theirs.reservation_id.to_string(), mine.reservation_id.to_string());

    // GET|POST /v1/unsubscribe?t=<token>. u-2 is an opted-in member: a forged link naming
    // them must not unsubscribe them.
    support::put_members(
        &*platform.store,
        [promo_shared::domain::audience::Member {
            user_id: UserId::parse("u-2").unwrap(),
            email: promo_shared::domain::email::EmailAddress::parse("u2@shop.example").unwrap(),
            opted_in: true,
            attributes: Default::default(),
        }],
    )
    .await;
    let keys = platform.email.keys.clone();
    let campaign_id = promo_shared::domain::ids::CampaignId::parse(CAMPAIGN).unwrap();
    // A recipient outside the audience: a valid link that has nothing left to change.
    let link = keys.sign(&campaign_id, &UserId::parse("not-a-member").unwrap(), now);
    let (payload, mac) = link.split_once('.').unwrap();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let other_keys =
        promo_shared::email::unsubscribe::UnsubscribeKeys::new(&[b"another-unsubscribe-secret-of-32-bytes".as_slice()])
            .unwrap();
    let bad_links: Vec<(&str, String)> = vec![
        ("no token", String::new()),
        ("an empty token", "t=".into()),
        ("a token that is not base64", "t=%25%25%25.%25%25".into()),
        ("a token without its MAC", format!("t={payload}")),
        ("a truncated MAC", format!("t={payload}.{}", &mac[..mac.len() / 2])),
        ("a truncated payload", format!("t={}.{mac}", &payload[1..])),
        (
            "a token signed with another secret",
            format!("t={}", other_keys.sign(&campaign_id, &UserId::parse("u-1").unwrap(), now)),
        ),
        ("another recipient under the same MAC", format!("t={}.{mac}", b64(&format!("{CAMPAIGN}\nu-2\n{ts}")))),
        (
            "an extra field under the same MAC",
            format!("t={}.{mac}", b64(&format!("{CAMPAIGN}\nnot-a-member\n{ts}\nx"))),
        ),
        ("a token of 8 KiB", format!("t={}.{mac}", "A".repeat(8 * 1024))),
        ("a token of 8 KiB after a valid one's MAC", format!("t={link}{}", "A".repeat(8 * 1024))),
        ("a token of 48 KiB", format!("t={}", "A".repeat(48 * 1024))),
        ("a token in the wrong parameter", format!("token={link}")),
        ("a percent-encoded byte that is not UTF-8", "t=%FF%FE".into()),
    ];
    for method in ["GET", "POST"] {
        let valid = Raw::new("valid", method, &format!("/v1/unsubscribe?t={link}"));
        let mut c = common(method, "/v1/unsubscribe", &valid);
        for (kind, query) in &bad_links {
            let path =
                if query.is_empty() { "/v1/unsubscribe".to_string() } else { format!("/v1/unsubscribe?{query}") };
            c.push(Raw::new(kind, method, &path).body(if method == "POST" {
                "List-Unsubscribe=One-Click"
            } else {
                ""
            }));
        }
        corpus.insert(if method == "GET" { "GET /v1/unsubscribe" } else { "POST /v1/unsubscribe" }, c);
    }

    // GET /v1/events/{id}
    let mut c = common("GET", &event_path, &Raw::new("valid", "GET", &event_path));
    let odd_ids = [".", "..", "%2E", "a%23b", "a%20b", "%C3%A9", "a*b", "a'b", "a,b", "~tilde", "no-such-event"];
    let long_event = "e".repeat(129);
    for id in odd_ids.iter().copied().chain([long_event.as_str()]) {
        c.push(Raw::new(&format!("event {id:?}"), "GET", &format!("/v1/events/{id}")));
    }
    corpus.insert("GET /v1/events/{id}", c);

    // POST /v1/events/{id}/reservations
    let reserve = Raw::new("valid", "POST", &reservations_path).header("authorization", bearer(token("corpus-late")));
    let mut c = common("POST", &reservations_path, &reserve);
    for (kind, value) in &bad_tokens {
        c.push(with_token(Raw::new("", "POST", &reservations_path), kind, value));
    }
    for id in odd_ids.iter().copied().chain([long_event.as_str()]) {
        let path = format!("/v1/events/{id}/reservations");
        c.push(Raw::new(&format!("event {id:?}"), "POST", &path).header("authorization", bearer(token("corpus-late"))));
    }
    c.push(
        Raw::new("a second reservation over the limit", "POST", &reservations_path)
            .header("authorization", bearer(token("corpus-shopper"))),
    );
    for (kind, key) in [
        ("an empty Idempotency-Key", b"".to_vec()),
        ("an Idempotency-Key of 256 characters", vec![b'k'; 256]),
        ("a Latin-1 Idempotency-Key", b"key-\xe9".to_vec()),
        ("a UTF-8 Idempotency-Key", "key-€".as_bytes().to_vec()),
        ("an Idempotency-Key with a space", b"key 1".to_vec()),
    ] {
        c.push(reserve.clone().header("idempotency-key", key).kind(kind));
    }
    c.push(reserve.clone().header("idempotency-key", "a").header("idempotency-key", "b").kind("two Idempotency-Keys"));
    corpus.insert("POST /v1/events/{id}/reservations", c);

    // DELETE /v1/events/{id}/reservations/{reservation}
    let cancel_path = |event: &str, rid: &str| format!("/v1/events/{event}/reservations/{rid}");
    let cancel = Raw::new("valid", "DELETE", &cancel_path(EVENT, &mine))
        .header("authorization", bearer(token("corpus-shopper")));
    let mut c = common("DELETE", &cancel_path(EVENT, &mine), &cancel);
    for (kind, value) in &bad_tokens {
        c.push(with_token(Raw::new("", "DELETE", &cancel_path(EVENT, &mine)), kind, value));
    }
    c.push(
        Raw::new("another shopper's reservation", "DELETE", &cancel_path(EVENT, &theirs))
            .header("authorization", bearer(token("corpus-shopper"))),
    );
    c.push(
        Raw::new("one's reservation under another event", "DELETE", &cancel_path("no-such-event", &mine))
            .header("authorization", bearer(token("corpus-shopper"))),
    );
    // A reservation id that can never be valid is 400 `invalid_id`, as every malformed id in
    // a path; a well-formed one nobody has is 404 `reservation_not_found`.
    let long_rid = "r".repeat(129);
    for rid in odd_ids.iter().copied().chain([long_rid.as_str(), "no-such-reservation"]) {
        c.push(
            Raw::new(&format!("reservation {rid:?}"), "DELETE", &cancel_path(EVENT, rid))
                .header("authorization", bearer(token("corpus-shopper"))),
        );
    }
    for id in [".", "%2E", long_event.as_str()] {
        c.push(
            Raw::new(&format!("event {id:?}"), "DELETE", &cancel_path(id, &mine))
                .header("authorization", bearer(token("corpus-shopper"))),
        );
    }
    corpus.insert("DELETE /v1/events/{id}/reservations/{rid}", c);

    // GET /v1/users/{id}/reservations
    let listing = Raw::new("valid", "GET", "/v1/users/corpus-shopper/reservations")
        .header("authorization", bearer(token("corpus-shopper")));
    let mut c = common("GET", "/v1/users/corpus-shopper/reservations", &listing);
    for (kind, value) in &bad_tokens {
        c.push(with_token(Raw::new("", "GET", "/v1/users/corpus-shopper/reservations"), kind, value));
    }
    c.push(
        Raw::new("another shopper's reservations", "GET", "/v1/users/other-shopper/reservations")
            .header("authorization", bearer(token("corpus-shopper"))),
    );
    for id in [".", "%2E", "a%20b", &"u".repeat(129)] {
        let path = format!("/v1/users/{id}/reservations");
        c.push(
            Raw::new(&format!("user {id:?}"), "GET", &path).header("authorization", bearer(token("corpus-shopper"))),
        );
    }
    corpus.insert("GET /v1/users/{id}/reservations", c);

    // Everything, and nothing written.
    let store_before = items(dir.path());
    let outbox_before = std::fs::read_dir(dir.path().join("outbox")).unwrap().count();
    let mut failures = Vec::new();
    for (route, cases) in &corpus {
        assert!(cases.len() >= 20, "{route}: only {} kinds", cases.len());
        for case in cases {
            let answer = case.send(addr).await;
            let body = answer.json();
            eprintln!("{route} · {}: {} {}", case.kind, answer.status, body["error"]["code"]);
            let well_formed = body["error"]["code"].as_str().is_some_and(|c| !c.is_empty())
                && body["error"]["message"].as_str().is_some_and(|m| !m.is_empty());
            if !(400..500).contains(&answer.status) || !well_formed {
                failures.push(format!(
                    "{route} · {}: {} {}",
                    case.kind,
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                ));
            }
        }
    }
    // KNOWN DEFECT, kept out of the corpus's assertion (issue 25, reported): a request line
    // over hyper's buffer (here a 512 KiB unsubscribe token) is answered 431 by hyper itself,
    // with no `{"error"}` body; the fix belongs in the runtime's server (infra/src/runtime.rs),
    // not this helper's. Checked here: still a 4xx, and the server keeps serving (below).
    let huge = Raw::new("a token of 512 KiB", "POST", &format!("/v1/unsubscribe?t={}", "A".repeat(512 * 1024)));
    let answer = huge.send(addr).await;
    assert!((400..500).contains(&answer.status), "{}: {}", huge.kind, answer.status);

    assert!(failures.is_empty(), "answers that are not a 4xx with the error body:\n{}", failures.join("\n"));
    let store_after = items(dir.path());
    let changed: Vec<_> = store_after.iter().filter(|i| !store_before.contains(i)).collect();
    let gone: Vec<_> = store_before.iter().filter(|i| !store_after.contains(i)).collect();
    assert!(
        changed.is_empty() && gone.is_empty(),
        "a malformed request wrote to the store: {changed:?}, gone: {gone:?}"
    );
    assert_eq!(
        platform.queue.depth(promo_shared::payments::gateway::PAYMENT_EVENTS_QUEUE).await.unwrap(),
        0,
        "one was handed off"
    );
    assert_eq!(std::fs::read_dir(dir.path().join("outbox")).unwrap().count(), outbox_before);

    // And a valid request to each route is served.
    let served = [
        ("GET /healthz", Raw::new("valid", "GET", "/healthz"), 200),
        ("standard webhook", std_valid, 200),
        ("stripe webhook", stripe_raw(&st_body), 200),
        ("quote", q("valid", quote(&|_| {})), 200),
        ("claim", claim, 201),
        ("wallet", wallet, 200),
        ("price", Raw::new("valid", "GET", price_path), 200),
        ("event", Raw::new("valid", "GET", &event_path), 200),
        ("reservations", listing, 200),
        ("cancel", cancel, 200),
        ("reserve", reserve, 201),
        ("unsubscribe page", Raw::new("valid", "GET", &format!("/v1/unsubscribe?t={link}")), 200),
        ("unsubscribe", Raw::new("valid", "POST", &format!("/v1/unsubscribe?t={link}")), 200),
    ];
    for (what, raw, status) in served {
        let answer = raw.send(addr).await;
        assert_eq!(answer.status, status, "{what}: {}", String::from_utf8_lossy(&answer.body));
    }
    // PortOne is not reachable here: the valid webhook and callback get as far as the look-up.
    assert_eq!(po_valid.send(addr).await.status, 503, "a well-formed PortOne webhook reaches the look-up");
    assert_eq!(cb("po-corpus").send(addr).await.status, 503, "a well-formed callback reaches the look-up");
    assert_eq!(platform.queue.depth(promo_shared::payments::gateway::PAYMENT_EVENTS_QUEUE).await.unwrap(), 2);
    running.shutdown().await.unwrap();
}

/// Signature header kinds of a Standard Webhooks route (`secret` is the right one).
fn header_malformations(path: &str, secret: &str, body: &[u8], ts: i64) -> Vec<Raw> {
    let good = signed(secret, "msg_corpus", ts, body);
    let value = |name: &str| String::from_utf8(good.iter().find(|(k, _)| k == name).unwrap().1.clone()).unwrap();
    let mut out = Vec::new();
    let mut push = |kind: &str, headers: Vec<(String, Vec<u8>)>| {
        out.push(Raw::new(kind, "POST", path).headers(headers).body(body.to_vec()));
    };
    push("no signature headers", vec![]);
    push("only webhook-id", h(&[("webhook-id", value("webhook-id"))]));
    let mut twice = good.clone();
    twice.push(("webhook-signature".into(), value("webhook-signature").into_bytes()));
    push("two signature headers", twice);
    let mut latin = good.clone();
    latin.push(("webhook-signature".into(), b"v1,\xe9".to_vec()));
    push("a second, Latin-1 signature header", latin);
    push("a stale timestamp", signed(secret, "msg_corpus", ts - 3600, body));
    push("a future timestamp", signed(secret, "msg_corpus", ts + 3600, body));
    let with = |name: &str, v: &str| {
        good.iter()
            .map(|(k, old)| (k.clone(), if k == name { v.as_bytes().to_vec() } else { old.clone() }))
            .collect::<Vec<_>>()
    };
    push("a timestamp that is not a number", with("webhook-timestamp", "abc"));
    push("a negative timestamp", with("webhook-timestamp", "-5"));
    push("a signature that is not base64", with("webhook-signature", "v1,!!!"));
    push("only a v2 signature", with("webhook-signature", &value("webhook-signature").replacen("v1,", "v2,", 1)));
    push("an empty webhook-id", with("webhook-id", ""));
    push("another secret", signed("whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==", "msg_corpus", ts, body));
    let mut tampered = body.to_vec();
    tampered.push(b' ');
    out.push(Raw::new("a tampered body", "POST", path).headers(good.clone()).body(tampered));
    out
}
