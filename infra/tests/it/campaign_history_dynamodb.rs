//! History and rollback on the production store (the DynamoDB stand-in), as on the local one
//! (campaign_history.rs): `campaign history` lists each version with who and what;
//! `campaign rollback --to N` goes through the normal deploy (diff, idempotent, published to
//! the Worker's KV), and a rollback that would lower the stock below what is already issued is
//! refused as the deploy refuses it, writing nothing.

// promoctl's production store needs the `prod` feature (infra/test.sh builds with it).
#![cfg(feature = "prod")]

use crate::support;

use std::path::Path;
use std::process::Output;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// The example campaign with its name and claim stock set.
fn file(dir: &Path, name: &str, stock: u32) -> String {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/black-friday.toml")).unwrap();
    let src = src.replacen("name = \"Black Friday\"", &format!("name = \"{name}\""), 1).replacen(
        "stock = 1000\nper_user_limit = 1",
        &format!("stock = {stock}\nper_user_limit = 1"),
        1,
    );
    assert!(src.contains(&format!("stock = {stock}\n")), "the example's stock line changed");
    let path = dir.join(format!("{name}-{stock}.toml"));
    std::fs::write(&path, src).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the DynamoDB stand-in (moto): infra/test.sh runs it with --include-ignored"]
async fn history_and_rollback_on_the_production_store() {
    let (table, endpoint) = support::prod_table("promo-history").await;
    {
        use std::sync::Arc;

        use promo_shared::domain::ids::{CampaignId, UserId};
        use promo_shared::{campaigns, claims::Claimer};
        use promoctl::embedded::{OsIds, SystemClock};

        let (api, seen) = promo_conformance::cloudflare_kv::serve().await;
        let dir = tempfile::tempdir().unwrap();
        let promoctl = |args: &[&str]| {
            support::prod_promoctl(&table, &endpoint, &api, dir.path())
                .env("PROMO_OPERATOR", "ana")
                .env("PROMO_STAGES_FILE", dir.path().join("no-stages.toml"))
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let store = Arc::new(promo_lambdas::dynamodb::DynamoStore::from_env(table.clone(), Some(&endpoint)).await);
        let id = CampaignId::parse("black-friday").unwrap();
        let versions = || {
            let store = store.clone();
            let id = id.clone();
            async move { campaigns::history(&*store, &id).await.unwrap().len() }
        };

        ok(promoctl(&["campaign", "deploy", &file(dir.path(), "Black Friday", 4)]));
        ok(promoctl(&["campaign", "deploy", &file(dir.path(), "Black Friday Extended", 10)]));
        let history = ok(promoctl(&["campaign", "history", "black-friday"]));
        assert!(history.contains("v1") && history.contains("v2") && history.contains("ana"), "{history}");
        assert!(history.contains(r#"name: "Black Friday" → "Black Friday Extended""#), "{history}");

        let dry = ok(promoctl(&["campaign", "rollback", "black-friday", "--to", "1", "--dry-run"]));
        assert!(dry.contains(r#"name: "Black Friday Extended" → "Black Friday""#) && dry.contains("nothing written"));
        assert_eq!(versions().await, 2, "a dry run writes nothing");
        let missing = promoctl(&["campaign", "rollback", "black-friday", "--to", "9"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(text(&missing.stderr).contains("has no version 9"), "{}", text(&missing.stderr));

        // Five coupons issued: version 1's stock of 4 is below them, refused as a deploy is.
        let claimer = Claimer::new(store.clone(), Arc::new(SystemClock), Arc::new(OsIds));
        for n in 0..5 {
            claimer.claim(&id, &UserId::parse(format!("u-{n}")).unwrap()).await.unwrap();
        }
        let published = seen.lock().unwrap().len();
        let refused = promoctl(&["campaign", "rollback", "black-friday", "--to", "1"]);
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
        assert!(text(&refused.stderr).contains("below the 5 already issued"), "{}", text(&refused.stderr));
        let deploy = promoctl(&["campaign", "deploy", &file(dir.path(), "Black Friday", 4)]);
        assert_eq!(deploy.status.code(), Some(1), "the deploy of the same file is refused the same way");
        assert!(text(&deploy.stderr).contains("below the 5 already issued"), "{}", text(&deploy.stderr));
        assert_eq!(versions().await, 2, "the refused rollback wrote nothing");
        assert_eq!(seen.lock().unwrap().len(), published, "nor published anything to the KV");

        // Version 1 of a bigger stock is fine: a third deploy, then back to version 2.
        ok(promoctl(&["campaign", "deploy", &file(dir.path(), "Black Friday Last Call", 10)]));
        let back = ok(promoctl(&["campaign", "rollback", "black-friday", "--to", "2"]));
        assert!(back.contains("deployed version 2 again as version 4"), "{back}");
        assert!(seen.lock().unwrap().len() > published, "the rollback published the price book");
        let again = ok(promoctl(&["campaign", "rollback", "black-friday", "--to", "2"]));
        assert!(again.contains("no changes"), "{again}");
        let history = ok(promoctl(&["campaign", "history", "black-friday", "--json"]));
        let history: serde_json::Value = serde_json::from_str(&history).unwrap();
        assert_eq!(history.as_array().unwrap().len(), 4);
        assert_eq!(history[3]["by"], "ana (rollback to v2)");
        let show = ok(promoctl(&["campaign", "show", "black-friday"]));
        assert!(show.contains("Black Friday Extended"), "{show}");
    }
}
