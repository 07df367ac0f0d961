//! promoctl on production, as an operator meets it: every command names the production target
//! on stderr before acting; destructive changes (`campaign end`, `event cancel`) ask for
//! confirmation, are refused without a terminal unless `--yes`, and change nothing when
//! refused.

use crate::support;

use promo_conformance::cloudflare_kv::serve as fake_cloudflare;
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the DynamoDB stand-in (moto): infra/test.sh runs it with --include-ignored"]
async fn production_names_itself_and_destructive_changes_need_confirmation() {
    let (table, endpoint) = support::prod_table("promo-safety").await;
    let (api, _seen) = fake_cloudflare().await;
    let dir = tempfile::tempdir().unwrap();
    let drop = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/drop.toml");
    // No terminal: stdin is not one (the test's own stdin is a pipe or /dev/null).
    let promoctl = |args: &[&str]| {
        support::prod_promoctl(&table, &endpoint, &api, dir.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };

    let deployed = promoctl(&["campaign", "deploy", drop]);
    assert!(deployed.status.success(), "{}", text(&deployed.stderr));
    assert!(
        text(&deployed.stderr).contains(&format!("promoctl → PRODUCTION: DynamoDB table {table}")),
        "{}",
        text(&deployed.stderr)
    );

    for (args, what) in [
        (vec!["campaign", "end", "drops"], "end campaign `drops` now"),
        (vec!["event", "cancel", "signed-100"], "cancel event `signed-100`"),
    ] {
        let refused = promoctl(&args);
        assert_eq!(refused.status.code(), Some(1), "{args:?}: {}", text(&refused.stdout));
        let err = text(&refused.stderr);
        assert!(err.contains(&format!("refusing to {what} on production")) && err.contains("--yes"), "{err}");
    }
    let list = promoctl(&["campaign", "list", "--json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["status"], "ACTIVE", "the refused end changed nothing: {list}");
    let events = promoctl(&["event", "list", "--json"]);
    let events: Value = serde_json::from_slice(&events.stdout).unwrap();
    assert_eq!(events[0]["status"], "ACTIVE", "the refused cancel changed nothing: {events}");

    let cancelled = promoctl(&["event", "cancel", "signed-100", "--yes"]);
    assert!(cancelled.status.success(), "{}", text(&cancelled.stderr));
    let ended = promoctl(&["campaign", "end", "drops", "--yes"]);
    assert!(ended.status.success(), "{}", text(&ended.stderr));
    let list = promoctl(&["campaign", "list", "--json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["status"], "ENDED", "{list}");
}
