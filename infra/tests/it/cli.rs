//! promoctl as a user runs it: exit codes, messages, and what it prints.

use crate::support;

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

    use promo_shared::payments::issuer::Issuer;
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
    use promo_shared::ports::store::query_all;
    use promo_shared::pricing::items::all_products;
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

/// The golden messages of `campaign validate`: every problem, syntax, types and rules alike,
/// as `file:line:column: field: message` with a hint, in the order of the file; and the same
/// as JSON.
#[test]
fn campaign_validate_names_each_problem_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let out = promoctl(&["campaign", "validate", path.to_str().unwrap()], "");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let err = text(&out.stderr);
        err.replace(&format!("{}/", dir.path().display()), "")
    };
    let rules = "id = \"bad\"\nname = \"\"\ncurrency = \"KRW\"\nstarts_at = \"now\"\nends_at = \"+3d\"\n\n\
                 [[coupons]]\nid = \"a\"\nkind = \"cart\"\ndiscount = { fixed = 1000 }\n\n\
                 [[rewards]]\nid = \"r\"\ncoupon = \"nope\"\nmin_payment = 100\nstock = 0\n\n\
                 [claim]\ncoupon = \"a\"\nstock = 10\nper_user_limit = 0\n";
    assert_eq!(
        check("rules.toml", rules),
        "error: rules.toml is not a valid campaign (4 problems):\n\
         rules.toml:2:1: name: must not be empty\n\
         rules.toml:14:1: rewards[0].coupon: `nope` is not one of this campaign's coupons\n  \
         hint: name the `id` of one of this campaign's [[coupons]]\n\
         rules.toml:16:1: rewards[0].stock: must be at least 1\n  \
         hint: a stock is at least 1, and is split over 1 to 96 shards, at most one per unit\n\
         rules.toml:21:1: claim.per_user_limit: must be at least 1\n"
    );
    assert_eq!(
        check("syntax.toml", "id = \"x\"\nname = \"X\ncurrency = KRW\n[[coupons]\n"),
        "error: syntax.toml is not a valid campaign (3 problems):\n\
         syntax.toml:2:10: invalid basic string, expected `\"`\n\
         syntax.toml:3:12: string values must be quoted, expected literal string\n\
         syntax.toml:4:11: unclosed array table, expected `]`\n"
    );
    assert_eq!(
        check(
            "types.toml",
            "id = \"x\"\nname = \"X\"\ncurrency = \"KRW\"\nstarts_at = \"now\"\nends_at = \"+1d\"\n\
             [[coupons]]\nid = \"a\"\nkind = \"cart\"\ndiscount = { fixed = 10 }\n[claim]\ncoupon = \"a\"\nstock = \"many\"\n"
        ),
        "error: types.toml is not a valid campaign (1 problem):\n\
         types.toml:12:9: claim.stock: invalid type: string \"many\", expected u32\n  \
         hint: a stock is at least 1, and is split over 1 to 96 shards, at most one per unit\n"
    );
    assert_eq!(
        check("window.toml", "id = \"x\"\nname = \"X\"\ncurrency = \"KRW\"\nstarts_at = \"now\"\nends_at = \"+3y\"\n"),
        "error: window.toml is not a valid campaign (1 problem):\n\
         window.toml:5:11: ends_at: `+3y` is not a relative time like \"+30d\" (units s, m, h, d, w)\n  \
         hint: write an RFC 3339 instant (\"2026-11-01T00:00:00+09:00\") or a time relative to the deploy (\"now\", \"+30d\")\n"
    );
    let typo = check("typo.toml", "id = \"x\"\nnmae = \"X\"\n");
    assert!(typo.contains("typo.toml:2:1: nmae: unknown field `nmae`, expected one of `id`, `name`"), "{typo}");
    // --json: the same problems as data, on stdout, exit 1.
    let path = dir.path().join("rules.toml");
    let out = promoctl(&["campaign", "validate", "--json", path.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 4);
    assert_eq!(
        (problems[1]["line"].as_u64(), problems[1]["column"].as_u64(), problems[1]["field"].as_str()),
        (Some(14), Some(1), Some("rewards[0].coupon"))
    );
    let ok = promoctl(
        &["campaign", "validate", "--json", concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/black-friday.toml")],
        "",
    );
    assert!(ok.status.success());
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&ok.stdout).unwrap()["valid"], true);
}

/// Campaign as code on the local target: deploy twice → "no changes" and no new version
/// (relative times keep their first instants); diff and `--dry-run` show a change and write
/// nothing; deploy applies it; pause/resume/end are recorded with who, and `show` prints the
/// history.
#[test]
fn deploy_is_idempotent_and_diff_shows_what_a_deploy_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/black-friday.toml");
    let run = |args: &[&str]| {
        let mut all = vec!["--data-dir", data];
        all.extend_from_slice(args);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_promoctl"));
        let out = cmd.args(&all).env("PROMO_OPERATOR", "mina").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let first = run(&["campaign", "deploy", example]);
    assert!(first.contains("deployed campaign `black-friday` version 1") && first.contains("as mina"), "{first}");
    let again = run(&["campaign", "deploy", example]);
    assert!(again.contains("no changes: campaign `black-friday` is deployed as it is (version 1)"), "{again}");
    assert!(run(&["campaign", "diff", example]).contains("campaign `black-friday`: no changes (version 1)"));

    let changed = dir.path().join("bf.toml");
    let text_of = std::fs::read_to_string(example).unwrap();
    std::fs::write(&changed, text_of.replace("stock = 1000", "stock = 1500").replace("percent = 10,", "percent = 12,"))
        .unwrap();
    let changed = changed.to_str().unwrap();
    let diff = run(&["campaign", "diff", changed]);
    assert!(diff.contains("campaign `black-friday` (version 1 → 2):"), "{diff}");
    assert!(diff.contains("~ claim.stock: 1000 → 1500"), "{diff}");
    assert!(diff.contains("~ coupons[welcome-10pct].discount.percent: 10 → 12"), "{diff}");
    assert!(diff.contains("price book: ~ coupon black-friday/welcome-10pct"), "{diff}");
    assert!(diff.contains("(kept from the first deploy)"), "{diff}");
    let dry = run(&["campaign", "deploy", "--dry-run", changed]);
    assert!(dry.contains("nothing written") && dry.contains("claim.stock: 1000 → 1500"), "{dry}");
    assert!(run(&["campaign", "diff", changed]).contains("version 1 → 2"), "the dry run wrote nothing");
    let applied = run(&["campaign", "deploy", changed]);
    assert!(applied.contains("version 2") && applied.contains("~ claim.stock: 1000 → 1500"), "{applied}");
    assert!(run(&["campaign", "diff", changed]).contains("no changes (version 2)"));

    assert!(run(&["campaign", "pause", "black-friday"]).contains("paused by mina: version 3"));
    assert!(run(&["campaign", "pause", "black-friday"]).contains("already paused"));
    let paused: serde_json::Value =
        serde_json::from_str(&run(&["campaign", "show", "black-friday", "--json"])).unwrap();
    assert_eq!(paused["status"], "PAUSED");
    assert!(run(&["campaign", "list"]).contains("PAUSED"));
    assert!(run(&["campaign", "deploy", example]).contains("version 4"), "a deploy of a change keeps the pause");
    let kept: serde_json::Value = serde_json::from_str(&run(&["campaign", "show", "black-friday", "--json"])).unwrap();
    assert_eq!(kept["status"], "PAUSED");
    assert!(run(&["campaign", "resume", "black-friday"]).contains("resumed by mina: version 5"));
    assert!(run(&["campaign", "end", "black-friday"]).contains("ended by mina: version 6"));
    let shown = run(&["campaign", "show", "black-friday"]);
    assert!(shown.contains("status    ENDED"), "{shown}");
    for line in ["v1 ", "deploy  by mina", "v3 ", "pause   by mina", "v5 ", "resume  by mina", "v6 ", "end     by mina"]
    {
        assert!(shown.contains(line), "{line:?} missing in {shown}");
    }
    let history: serde_json::Value =
        serde_json::from_str(&run(&["campaign", "show", "black-friday", "--json"])).unwrap();
    assert_eq!(history["history"].as_array().unwrap().len(), 6);
    assert_eq!(history["history"][1]["changes"][0], "claim.stock: 1000 → 1500");
}

/// Every command refuses `--env prod` clearly when built without the production target, and
/// `promoctl dev` never runs against production.
#[test]
fn the_target_is_chosen_with_env() {
    let dev = promoctl(&["--env", "prod", "dev"], "");
    assert_eq!(dev.status.code(), Some(1));
    let err = text(&dev.stderr);
    assert!(err.contains("promoctl dev runs the local platform only"), "{err}");
    let staging = promoctl(&["--env", "staging", "dev"], "");
    assert_eq!(staging.status.code(), Some(1), "staging is a deployed stage too");
    assert!(text(&staging.stderr).contains("promoctl dev runs the local platform only"), "{}", text(&staging.stderr));
    // The stages are `staging` and `prod` (issue 27): anything else is a usage error.
    let bad = promoctl(&["--env", "production", "campaign", "list"], "");
    assert_eq!(bad.status.code(), Some(2), "an unknown target is a usage error");
}

/// Shell completions for bash, zsh and fish name the commands.
#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = promoctl(&["completions", shell], "");
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains("promoctl") && script.contains("deploy") && script.contains("trigger"), "{shell}");
    }
    assert_eq!(promoctl(&["completions", "tcsh"], "").status.code(), Some(2));
}

/// `webhook trigger --print` builds each provider's event with the given id and payment, and
/// `trigger` sends one the local platform accepts (the whole flow is in the README test).
#[test]
fn webhook_trigger_builds_each_providers_event() {
    let out = promoctl(
        &[
            "webhook",
            "trigger",
            "refunded",
            "--provider",
            "stripe",
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "--id",
            "evt_fixed",
            "--payment-id",
            "pi_7",
            "--amount",
            "20000",
            "--refunded",
            "5000",
            "--print",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let (headers, body) = printed.split_once("\n\n").unwrap();
    assert!(headers.starts_with("stripe-signature: t="), "{headers}");
    let body: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!((body["id"].as_str(), body["type"].as_str()), (Some("evt_fixed"), Some("charge.refunded")));
    assert_eq!(body["data"]["object"]["amount_refunded"], 5000);
    assert_eq!(body["data"]["object"]["payment_intent"], "pi_7");
    let standard = promoctl(&["webhook", "trigger", "paid", "--id", "msg_1", "--user", "u-9", "--print"], "");
    assert!(standard.status.success(), "{}", text(&standard.stderr));
    let printed = text(&standard.stdout);
    assert!(printed.starts_with("webhook-id: msg_1\n"), "{printed}");
    assert!(printed.contains("\"user_id\":\"u-9\"") && printed.contains("\"type\":\"paid\""), "{printed}");
}

/// `dlq list` shows the local queue's dead letters with why they failed; `dlq replay` moves
/// them back to their queue.
#[tokio::test]
async fn dlq_lists_and_replays_the_local_dead_letters() {
    use promo_shared::ports::queue::Queue;
    use promoctl::embedded::{QueueConfig, SqliteQueue};

    let dir = tempfile::tempdir().unwrap();
    let queue = SqliteQueue::open(&dir.path().join("queue.db"), QueueConfig::default()).unwrap();
    queue.publish("payment-events", b"{\"type\":\"paid\"}").await.unwrap();
    let got = queue.receive("payment-events", 1, std::time::Duration::from_secs(1)).await.unwrap();
    queue.reject("payment-events", &got[0], "invalid event: payment_id is missing").await.unwrap();
    let data = dir.path().to_str().unwrap();
    let listed = promoctl(&["--data-dir", data, "dlq", "list", "--json"], "");
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let letters: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 1);
    assert_eq!(letters[0]["reason"], "invalid event: payment_id is missing");
    assert_eq!(letters[0]["body"], "{\"type\":\"paid\"}");
    let replayed = promoctl(&["--data-dir", data, "dlq", "replay"], "");
    assert!(text(&replayed.stdout).contains("moved 1 dead letters back to `payment-events`"));
    assert!(queue.dead_letters("payment-events").await.unwrap().is_empty());
    assert_eq!(queue.depth("payment-events").await.unwrap(), 1, "back in its queue");
    // Production's dead letters need the stack's queues (infra/tests/it/prod_dlq.rs runs them).
    let prod = promoctl(&["--env", "prod", "dlq", "list"], "");
    assert_eq!(prod.status.code(), Some(1));
    let expected = if cfg!(feature = "prod") { "PROMO_PAYMENT_QUEUE_URL" } else { "--features prod" };
    assert!(text(&prod.stderr).contains(expected), "{}", text(&prod.stderr));
}

/// `audience import`: malformed rows are reported with their line and skipped, the rest
/// imported; importing again updates in place (never a second member), and an unchanged file
/// writes nothing. Addresses never appear in the messages.
#[test]
fn audience_import_skips_bad_rows_by_line_and_updates_on_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let csv_path = dir.path().join("audience.csv");
    std::fs::write(
        &csv_path,
        "email,user_id,tier,opted_in\n\
         jane@example.com,u-1,gold,yes\n\
         not-an-address,u-2,gold,yes\n\
         max@example.com,u-3,silver,no\n\
         kim@example.com,u-4,gold\n\
         lee@example.com,u-5,bronze,maybe\n\
         ana@example.com,u-6,gold,true\n",
    )
    .unwrap();
    let file = csv_path.to_str().unwrap();
    let out = promoctl(&["--data-dir", data, "audience", "import", file], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for line in [":3: skipped:", ":5: skipped: 3 fields where the header has 4", ":6: skipped: opted_in: `maybe`"] {
        assert!(err.contains(line), "{line:?} missing in {err}");
    }
    assert!(!err.contains("not-an-address"), "the address is masked: {err}");
    assert!(text(&out.stdout).contains("3 new, 0 updated, 0 unchanged; 3 rows skipped"), "{}", text(&out.stdout));

    std::fs::write(
        &csv_path,
        "email,user_id,tier,opted_in\njane@example.com,u-1,platinum,yes\nmax@example.com,u-3,silver,no\n",
    )
    .unwrap();
    let again = promoctl(&["--data-dir", data, "audience", "import", "--json", file], "");
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["imported"], serde_json::json!({"created": 0, "updated": 1, "unchanged": 1}));
    let count = promoctl(&["--data-dir", data, "audience", "count", "--json"], "");
    let count: serde_json::Value = serde_json::from_slice(&count.stdout).unwrap();
    assert_eq!(count, serde_json::json!({"members": 3, "opted_in": 2}));

    std::fs::write(&csv_path, "email,userid,opted_in\n").unwrap();
    let bad_header = promoctl(&["--data-dir", data, "audience", "import", file], "");
    assert_eq!(bad_header.status.code(), Some(1));
    assert!(
        text(&bad_header.stderr).contains(":1: the header has no `user_id` column"),
        "{}",
        text(&bad_header.stderr)
    );
}

/// The `[email]` section is validated with the rest: an unknown variable names itself, its
/// line in the body and the field's position in the file; the example's email is valid.
#[test]
fn campaign_validate_checks_the_email_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.toml");
    std::fs::write(
        &path,
        "id = \"m\"\nname = \"M\"\ncurrency = \"KRW\"\nstarts_at = \"now\"\nends_at = \"+3d\"\n\n\
         [email]\nfrom = \"Shop <news@shop.example>\"\nsubject = \"Hi {{first_name}}\"\n\
         html = \"\"\"\n<p>Hi</p>\n<p>{{frist_name}}</p>\n<a href=\"{{unsubscribe_url}}\">x</a>\n\"\"\"\n\
         text = \"Bye {{unsubscribe_url}}\"\nattributes = { first_name = \"there\" }\n",
    )
    .unwrap();
    let out = promoctl(&["campaign", "validate", path.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr).replace(&format!("{}/", dir.path().display()), "");
    assert!(
        err.contains(
            "mail.toml:10:1: email.html: unknown variable `{{frist_name}}` on line 2 of the html; known: email, \
             user_id, campaign_name, unsubscribe_url, first_name"
        ),
        "{err}"
    );
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/black-friday.toml");
    let ok = promoctl(&["campaign", "validate", "--json", example], "");
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["campaign"]["email"]["segment"]["tier"], serde_json::json!(["gold", "silver"]));
}

#[test]
fn event_list_show_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/drop.toml");
    let run = |args: &[&str]| {
        let mut all = vec!["--data-dir", data];
        all.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_promoctl")).args(&all).env("PROMO_OPERATOR", "mina").output().unwrap()
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    assert!(ok(&["campaign", "deploy", example]).contains("deployed campaign `drops` version 1"));
    let list = ok(&["event", "list"]);
    assert!(list.contains("signed-100") && list.contains("ACTIVE") && list.contains("Signed edition"), "{list}");
    let show: serde_json::Value = serde_json::from_str(&ok(&["event", "show", "signed-100", "--json"])).unwrap();
    assert_eq!(
        (show["status"].as_str(), show["stock"].as_i64(), show["available"].as_i64()),
        (Some("ACTIVE"), Some(100), Some(100))
    );
    assert_eq!(show["hold"], "10m");
    let text_show = ok(&["event", "show", "signed-100"]);
    assert!(text_show.contains("refunds    none due"), "{text_show}");
    let cancelled = ok(&["event", "cancel", "signed-100"]);
    assert!(cancelled.contains("event `signed-100` cancelled by mina"), "{cancelled}");
    assert!(ok(&["event", "list"]).contains("CANCELLED"));
    // Cancelled is final; unknown and malformed ids fail with exit 1 and say why.
    assert!(ok(&["event", "cancel", "signed-100"]).contains("cancelled"), "cancelling again changes nothing");
    let unknown = run(&["event", "show", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("event `nope` does not exist"), "{}", text(&unknown.stderr));
    let bad = run(&["event", "cancel", "bad id"]);
    assert_eq!(bad.status.code(), Some(1));
    // The file cannot drop an event that was deployed unless it is over: this one is cancelled.
    let without = dir.path().join("drop.toml");
    let text_of = std::fs::read_to_string(example).unwrap();
    std::fs::write(&without, &text_of[..text_of.find("[[events]]").unwrap()]).unwrap();
    assert!(ok(&["campaign", "deploy", without.to_str().unwrap()]).contains("version 2"));
}

/// A stand-in for Cloudflare's API that answers nothing and counts every connection made to
/// it: any request at all, whatever its path or method.
fn connection_counter() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(conn); // a closed connection: the client fails loudly if it ever connects
        }
    });
    (format!("http://{addr}/client/v4"), count)
}

/// `--env local` with production's `PROMO_CF_*` exported (as docs/marketers tells marketers
/// to) never writes the Worker's KV: deploy, products publish, pause, resume and end all work
/// on the local store only, and say that they ignore the variables (issue 25, item 16).
#[test]
fn the_local_target_never_publishes_to_the_workers_kv() {
    use std::sync::atomic::Ordering;
    let (api, connections) = connection_counter();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/black-friday.toml");
    let products = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/products.json");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_promoctl"))
            .args(["--env", "local"])
            .args(args)
            .env("PROMO_DATA_DIR", &data)
            .env("PROMO_CF_API_BASE", &api)
            .env("PROMO_CF_ACCOUNT_ID", "acct-prod")
            .env("PROMO_CF_KV_NAMESPACE_ID", "ns-prod")
            .env("PROMO_CF_API_TOKEN", "cf-prod-token")
            .env("PROMO_OPERATOR", "mina")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("never writes the Worker's KV"), "{args:?}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(!stdout.contains("edge's KV"), "{args:?}: {stdout}");
        stdout
    };
    assert!(run(&["campaign", "deploy", example]).contains("deployed campaign `black-friday` version 1"));
    assert!(run(&["products", "publish", products]).contains("to the local store"));
    run(&["campaign", "pause", "black-friday"]);
    run(&["campaign", "resume", "black-friday"]);
    run(&["campaign", "end", "black-friday"]);
    // A partial setting is production's problem, not a local one's.
    let partial = Command::new(env!("CARGO_BIN_EXE_promoctl"))
        .args(["campaign", "list"])
        .env("PROMO_DATA_DIR", &data)
        .env_remove("PROMO_ENV")
        .env("PROMO_CF_ACCOUNT_ID", "acct-prod")
        .env_remove("PROMO_CF_API_TOKEN")
        .output()
        .unwrap();
    assert!(partial.status.success(), "{}", text(&partial.stderr));
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(connections.load(Ordering::SeqCst), 0, "no request reached the Worker's KV API");
}

/// `--env prod webhook trigger` posts to production's `PROMO_URL` (or `--url`), and without one
/// refuses, naming the variable: never silently to the local platform (issue 25, item 17).
#[test]
fn a_production_webhook_goes_to_the_configured_url_or_nowhere() {
    use std::sync::atomic::Ordering;
    let run = |args: &[&str], url: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_promoctl"));
        cmd.args(args).env_remove("PROMO_ENV").env_remove("PROMO_URL").env_remove("PROMO_WEBHOOK_SECRET_STANDARD");
        if let Some(url) = url {
            cmd.env("PROMO_URL", url);
        }
        cmd.stdin(Stdio::null()).output().unwrap()
    };
    let trigger = ["--env", "prod", "webhook", "trigger", "paid", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"];
    let refused = run(&trigger, None);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("set PROMO_URL"), "{}", text(&refused.stderr));
    let (api, connections) = connection_counter();
    let base = api.trim_end_matches("/client/v4");
    // The counter closes each connection unanswered: the send fails, after reaching it.
    let sent = run(&trigger, Some(base));
    assert_eq!(sent.status.code(), Some(1));
    assert!(text(&sent.stderr).contains(&format!("POST {base}/v1/webhooks/standard")), "{}", text(&sent.stderr));
    assert_eq!(connections.load(Ordering::SeqCst), 1, "the configured URL got the webhook");
    let flag = run(&[&trigger[..], &["--url", base]].concat(), None);
    assert!(text(&flag.stderr).contains(&format!("POST {base}/v1/webhooks/standard")), "{}", text(&flag.stderr));
    let send = run(&["--env", "prod", "webhook", "send"], None);
    assert_eq!(send.status.code(), Some(1));
    assert!(text(&send.stderr).contains("set PROMO_URL"), "{}", text(&send.stderr));
    // Production verifies with its own secret: the development one is not used there.
    let before = connections.load(Ordering::SeqCst);
    let dev_secret = run(&["--env", "prod", "webhook", "trigger", "paid"], Some(base));
    assert_eq!(dev_secret.status.code(), Some(1));
    assert!(text(&dev_secret.stderr).contains("set PROMO_WEBHOOK_SECRET_STANDARD"), "{}", text(&dev_secret.stderr));
    assert_eq!(connections.load(Ordering::SeqCst), before, "nothing was sent");
    // Printing needs no platform.
    let printed = run(&[&trigger[..], &["--print"]].concat(), None);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
}

/// The global target flags are offered only where a command uses them: `--help` of a command
/// that ignores them does not show them, and giving them there is a usage error (exit 2);
/// `PROMO_ENV` in the environment stays harmless (issue 25, item 17).
#[test]
fn target_flags_are_offered_only_where_they_do_something() {
    let help = |args: &[&str]| {
        let out = promoctl(&[args, &["--help"]].concat(), "");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    for args in [&["quote"][..], &["token"], &["completions"], &["webhook", "sign"], &["campaign", "validate"]] {
        let shown = help(args);
        assert!(!shown.contains("--env") && !shown.contains("--data-dir"), "{args:?} offers a target:\n{shown}");
    }
    for args in [&["webhook", "trigger"][..], &["webhook", "send"], &["webhook"]] {
        let shown = help(args);
        assert!(!shown.contains("--data-dir"), "{args:?} offers --data-dir:\n{shown}");
    }
    assert!(help(&["webhook", "trigger"]).contains("--env"), "trigger chooses the platform");
    for args in [&["campaign", "deploy"][..], &["dlq", "list"], &["coupons", "list"], &["event", "list"], &["dev"]] {
        let shown = help(args);
        assert!(shown.contains("--data-dir"), "{args:?}:\n{shown}");
    }
    assert!(help(&["campaign", "deploy"]).contains("--env"));
    for args in [
        &["quote", "--env", "prod"][..],
        &["--env", "prod", "quote"],
        &["quote", "--data-dir", "x"],
        &["token", "--user", "u-1", "--env", "local"],
        &["webhook", "trigger", "paid", "--print", "--data-dir", "x"],
        &["campaign", "validate", "x.toml", "--env", "prod"],
    ] {
        let out = promoctl(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("does not use --"), "{args:?}: {}", text(&out.stderr));
    }
    let quoted = Command::new(env!("CARGO_BIN_EXE_promoctl"))
        .args(["quote", "--compact"])
        .env("PROMO_ENV", "prod")
        .env("PROMO_DATA_DIR", "/nonexistent")
        .stdin(std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quote-request.json")).unwrap())
        .output()
        .unwrap();
    assert!(quoted.status.success(), "{}", text(&quoted.stderr));
}

/// `end` has no `--email-only` (it only ever failed there); `pause` and `resume` keep it. A
/// dead-letter queue that does not exist is a usage error naming the queues (issue 25, item 17).
#[test]
fn end_has_no_email_only_and_dlq_knows_its_queues() {
    let end = promoctl(&["campaign", "end", "--help"], "");
    assert!(end.status.success());
    assert!(!text(&end.stdout).contains("--email-only"), "{}", text(&end.stdout));
    let refused = promoctl(&["campaign", "end", "black-friday", "--email-only"], "");
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    for verb in ["pause", "resume"] {
        let help = promoctl(&["campaign", verb, "--help"], "");
        assert!(text(&help.stdout).contains("--email-only"), "{verb}: {}", text(&help.stdout));
    }

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for verb in ["list", "replay"] {
        let typo = promoctl(&["--data-dir", data, "dlq", verb, "typo-queue"], "");
        assert_eq!(typo.status.code(), Some(2), "dlq {verb}: {}", text(&typo.stderr));
        let err = text(&typo.stderr);
        assert!(err.contains("payment-events") && err.contains("email"), "dlq {verb}: {err}");
    }
}

/// `promoctl dev --listen ADDR` without `PROMO_PUBLIC_URL`: campaign email's unsubscribe links
/// point at ADDR, where the platform is (issue 25, item 17).
#[test]
fn dev_listen_sets_the_unsubscribe_links_origin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut dev = support::promoctl_in(&data);
    dev.env("PROMO_LISTEN", "127.0.0.1:1").env("PROMO_TICK_SECONDS", "1").stdout(Stdio::null()).stderr(Stdio::null());
    let dev = support::DevProcess::start(dev);
    let cli = |args: &[&str]| {
        let out = support::promoctl_in(&data).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    let campaign = support::email_campaign_file(dir.path());
    cli(&["audience", "import", concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/audience.csv")]);
    cli(&["campaign", "deploy", campaign.to_str().unwrap()]);
    cli(&["campaign", "trigger", "black-friday", "--detach"]);
    let messages = support::wait_for_outbox(&data.join("outbox"), 2);
    for m in &messages {
        let unfolded = m.replace("\r\n ", " ").replace("\r\n\t", " ").replace("\n ", " ");
        let header = unfolded.lines().find_map(|l| l.strip_prefix("List-Unsubscribe: ")).unwrap();
        assert!(
            header.starts_with(&format!("<{}/v1/unsubscribe?t=", dev.url())),
            "the link follows --listen {}: {header}",
            dev.url()
        );
    }
}
