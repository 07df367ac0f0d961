//! promoctl as a user runs it: exit codes, messages, and what it prints.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn promoctl(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_promoctl"))
        .args(args)
        .env_remove("PROMO_WEBHOOK_SECRET_STANDARD")
        .env_remove("PROMO_WEBHOOK_SECRET_PORTONE")
        .env_remove("PROMO_WEBHOOK_SECRET_STRIPE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command refused before it reads stdin (a usage error) may exit first: a broken pipe
    // here is that, and its exit code and stderr are what the test checks.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("writing promoctl's stdin: {e}"),
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn webhook_sign_reproduces_the_standard_webhooks_reference_vector() {
    let out = promoctl(
        &[
            "webhook",
            "sign",
            "--provider",
            "portone",
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "--id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "--timestamp",
            "1614265330",
        ],
        r#"{"test": 2432232314}"#,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\nwebhook-timestamp: 1614265330\n\
         webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n"
    );
}

#[test]
fn webhook_sign_refuses_what_it_cannot_do() {
    let no_secret = promoctl(&["webhook", "sign", "--provider", "stripe"], "{}");
    assert_eq!(no_secret.status.code(), Some(1));
    assert!(text(&no_secret.stderr).contains("PROMO_WEBHOOK_SECRET_STRIPE"), "{}", text(&no_secret.stderr));
    let no_body = promoctl(&["webhook", "sign"], "");
    assert_eq!(no_body.status.code(), Some(1));
    assert!(text(&no_body.stderr).contains("no body on stdin"));
    let bad_provider = promoctl(&["webhook", "sign", "--provider", "acme"], "{}");
    assert_eq!(bad_provider.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn campaign_validate_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let ok =
        promoctl(&["campaign", "validate", concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/black-friday.toml")], "");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "id = \"x\"\nname = \"\"\ncurrency = \"KRW\"\nstarts_at = \"2026-12-01T00:00:00Z\"\n\
         ends_at = \"2026-11-01T00:00:00Z\"\n[[rewards]]\nid = \"r\"\ncoupon = \"nope\"\n",
    )
    .unwrap();
    let out = promoctl(&["campaign", "validate", bad.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for field in ["name:", "ends_at:", "rewards[0].coupon:"] {
        assert!(err.contains(field), "{field} missing in {err}");
    }
    let missing = promoctl(&["campaign", "validate", "/nonexistent.toml"], "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("cannot read"));
}

/// `promoctl coupons list`: a shopper's wallet as a table and as JSON, read from the local
/// platform's store; nobody else's coupons; a malformed user id is refused. And `promoctl
/// campaign list` shows what is left of the claim stock.
#[tokio::test]
async fn coupons_list_prints_a_shoppers_wallet() {
    use std::sync::Arc;

    use promo_shared::app::issuer::Issuer;
    use promo_shared::ports::clock::ManualClock;
    use promo_shared::testing::at;
    use promo_shared::testing::paid_event;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/black-friday-2026.toml");
    let deployed = promoctl(&["campaign", "deploy", example, "--data-dir", data], "");
    assert!(deployed.status.success(), "{}", text(&deployed.stderr));
    let store: Arc<dyn promo_shared::ports::store::Store> = promoctl::runtime::open_store(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-25T12:00:00Z")));
    let issuer = Issuer::new(store, clock, Arc::new(promoctl::embedded::OsIds));
    let mut paid = paid_event("cli-pay-1", 60_000, "2026-11-25T11:00:00Z");
    paid.user_id = promo_shared::domain::ids::UserId::parse("cli-user").unwrap();
    let code = issuer.handle_payment(&paid).await.unwrap().rewards[0].code.to_string();

    let table = promoctl(&["coupons", "list", "--user", "cli-user", "--data-dir", data], "");
    assert!(table.status.success(), "{}", text(&table.stderr));
    let lines: Vec<String> = text(&table.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("CODE"), "{lines:?}");
    for field in [code.as_str(), "black-friday-2026", "thanks-5000", "ISSUED"] {
        assert!(lines[1].contains(field), "{field} missing from {lines:?}");
    }

    let json = promoctl(&["coupons", "list", "--user", "cli-user", "--data-dir", data, "--json"], "");
    assert!(json.status.success(), "{}", text(&json.stderr));
    let coupons: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(coupons.as_array().unwrap().len(), 1, "{coupons}");
    assert_eq!((coupons[0]["code"].as_str(), coupons[0]["user_id"].as_str()), (Some(code.as_str()), Some("cli-user")));

    // The marketer's view: what is left of the claim stock (none claimed yet).
    let campaigns = promoctl(&["campaign", "list", "--data-dir", data], "");
    let listed = text(&campaigns.stdout);
    assert!(listed.lines().any(|l| l.starts_with("black-friday-2026") && l.contains("claim 1000/1000")), "{listed}");
    let campaigns = promoctl(&["campaign", "list", "--data-dir", data, "--json"], "");
    let campaigns: serde_json::Value = serde_json::from_slice(&campaigns.stdout).unwrap();
    assert_eq!(campaigns[0]["stock"]["claim"], serde_json::json!({"left": 1000, "total": 1000}), "{campaigns}");

    let other = promoctl(&["coupons", "list", "--user", "someone-else", "--data-dir", data, "--json"], "");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&other.stdout).unwrap(), serde_json::json!([]));
    let bad = promoctl(&["coupons", "list", "--user", "not ok", "--data-dir", data], "");
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("user"), "{}", text(&bad.stderr));
}

/// `promoctl products publish` parses every product into the domain's types first: a
/// product priced above its list price (or with a bad id, a blank label, a negative or
/// unknown field) is named by its position and nothing at all is written.
#[tokio::test]
async fn products_publish_refuses_an_invalid_product_and_writes_nothing() {
    use promo_shared::items::catalog::all_products;
    use promo_shared::ports::store::query_all;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let good = serde_json::json!({"id": "p-1", "currency": "KRW", "list_price": 59000, "sale_price": 52000});
    let cases = [
        (serde_json::json!({"id": "p-2", "currency": "KRW", "list_price": 50000, "sale_price": 52000}), "sale_price"),
        (serde_json::json!({"id": "p/2", "currency": "KRW", "list_price": 1, "sale_price": 1}), "product_id"),
        (serde_json::json!({"id": "p-2", "brand": " ", "currency": "KRW", "list_price": 1, "sale_price": 1}), "brand"),
        (serde_json::json!({"id": "p-2", "currency": "KRW", "list_price": -1, "sale_price": -1}), "list_price"),
        (
            serde_json::json!({"id": "p-2", "currency": "KRW", "list_price": 1, "sale_price": 1, "x": 1}),
            "unknown field",
        ),
    ];
    for (bad, field) in cases {
        let file = dir.path().join("products.json");
        std::fs::write(&file, serde_json::to_string(&serde_json::json!([good, bad])).unwrap()).unwrap();
        let out = promoctl(&["products", "publish", file.to_str().unwrap(), "--data-dir", data], "");
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(err.contains("products[1]") && err.contains(field), "{bad}: {err}");
        let store = promoctl::runtime::open_store(dir.path()).unwrap();
        assert!(query_all(&*store, all_products()).await.unwrap().is_empty(), "{bad}: nothing written");
    }
}
