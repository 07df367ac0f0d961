//! The marketer's safety net as a marketer runs it on the local target: `campaign history`
//! lists versions with who and what; `campaign rollback` shows its diff, goes through the
//! normal deploy (idempotent, and refused where a deploy is refused: a stock below what is
//! already issued), and writes nothing on a dry run or a refusal; `campaign preview` prints
//! the email as the recipient gets it (a Korean sender name and subject encoded), and
//! `campaign test-send` mails a seed list without touching the campaign's delivery records.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use promo_shared::domain::ids::{CampaignId, UserId};
use promo_shared::{campaigns, claims::Claimer};
use promoctl::embedded::{OsIds, SqliteStore, SystemClock};

fn promoctl(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promoctl"))
        .args(args)
        .env("PROMO_DATA_DIR", data)
        .env("PROMO_OPERATOR", "ana")
        .env_remove("PROMO_ENV")
        .env_remove("PROMO_CF_ACCOUNT_ID")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The example campaign with its claim stock and name set.
fn file(dir: &Path, name: &str, stock: u32) -> String {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/black-friday.toml")).unwrap();
    let src = src.replacen("name = \"Black Friday\"", &format!("name = \"{name}\""), 1).replacen(
        "stock = 1000\nper_user_limit = 1",
        &format!("stock = {stock}\nper_user_limit = 1"),
        1,
    );
    let path = dir.join(format!("{name}-{stock}.toml"));
    std::fs::write(&path, src).unwrap();
    path.to_string_lossy().into_owned()
}

async fn versions(data: &Path) -> usize {
    let store = SqliteStore::open(&data.join("store.db")).unwrap();
    campaigns::history(&store, &CampaignId::parse("black-friday").unwrap()).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_versions_and_rollback_redeploys_one_through_the_normal_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".promo");
    ok(promoctl(&data, &["campaign", "deploy", &file(dir.path(), "Black Friday", 4)]));
    ok(promoctl(&data, &["campaign", "deploy", &file(dir.path(), "Black Friday Extended", 10)]));
    ok(promoctl(&data, &["campaign", "pause", "black-friday"]));
    let history = ok(promoctl(&data, &["campaign", "history", "black-friday"]));
    assert!(history.contains("v1") && history.contains("v2") && history.contains("v3"), "{history}");
    assert!(history.contains("pause") && history.contains("ana"), "{history}");
    assert!(history.contains(r#"name: "Black Friday" → "Black Friday Extended""#), "{history}");

    // Not a deploy, not a version, a dry run: refused or shown, nothing written.
    let pause = promoctl(&data, &["campaign", "rollback", "black-friday", "--to", "3"]);
    assert_eq!(pause.status.code(), Some(1));
    assert!(
        text(&pause.stderr).contains("was a pause, not a deploy: roll back to one of v1, v2"),
        "{}",
        text(&pause.stderr)
    );
    let missing = promoctl(&data, &["campaign", "rollback", "black-friday", "--to", "9"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("has no version 9"), "{}", text(&missing.stderr));
    let dry = ok(promoctl(&data, &["campaign", "rollback", "black-friday", "--to", "1", "--dry-run"]));
    assert!(
        dry.contains(r#"name: "Black Friday Extended" → "Black Friday""#) && dry.contains("nothing written"),
        "{dry}"
    );
    assert_eq!(versions(&data).await, 3, "a dry run writes nothing");

    // Five coupons claimed: version 1's stock of 4 is below them, refused as a deploy is.
    {
        let store = Arc::new(SqliteStore::open(&data.join("store.db")).unwrap());
        ok(promoctl(&data, &["campaign", "resume", "black-friday"]));
        let claimer = Claimer::new(store, Arc::new(SystemClock), Arc::new(OsIds));
        for n in 0..5 {
            let user = UserId::parse(format!("u-{n}")).unwrap();
            claimer.claim(&CampaignId::parse("black-friday").unwrap(), &user).await.unwrap();
        }
    }
    let refused = promoctl(&data, &["campaign", "rollback", "black-friday", "--to", "1"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    assert!(text(&refused.stderr).contains("below the 5 already issued"), "{}", text(&refused.stderr));
    assert_eq!(versions(&data).await, 4, "the refused rollback wrote nothing (v4 is the resume)");

    // Version 2 again after a third deploy: its name comes back; again, nothing changes.
    ok(promoctl(&data, &["campaign", "deploy", &file(dir.path(), "Black Friday Last Call", 10)]));
    let back = ok(promoctl(&data, &["campaign", "rollback", "black-friday", "--to", "2"]));
    assert!(back.contains("deployed version 2 again as version 6"), "{back}");
    let again = ok(promoctl(&data, &["campaign", "rollback", "black-friday", "--to", "2"]));
    assert!(again.contains("no changes"), "{again}");
    let show = ok(promoctl(&data, &["campaign", "show", "black-friday"]));
    assert!(show.contains("Black Friday Extended"), "{show}");
    let history = ok(promoctl(&data, &["campaign", "history", "black-friday", "--json"]));
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 6);
    assert_eq!(history[5]["by"], "ana (rollback to v2)");
}

/// A script that asks for `--json` gets its errors as JSON on stdout too (exit 1).
#[test]
fn json_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = promoctl(&dir.path().join(".promo"), &["campaign", "history", "nope", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["error"]["code"], "failed");
    assert!(answer["error"]["message"].as_str().unwrap().contains("never deployed"), "{answer}");
}

/// Preview and test send of an email with a Korean sender name and subject.
#[test]
fn preview_prints_the_email_as_sent_and_test_send_leaves_the_send_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".promo");
    let file = support::email_campaign_file(dir.path());
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("from = \"Shop <news@shop.example>\"", "from = \"홍길동 상점 <news@shop.example>\"")
        .replace(
            "subject = \"{{first_name}}, Black Friday starts now\"",
            "subject = \"{{first_name}}님, 블랙프라이데이\"",
        );
    assert!(
        text.contains("홍길동 상점") && text.contains("블랙프라이데이"),
        "the example's sender and subject were replaced"
    );
    std::fs::write(&file, text).unwrap();
    ok(promoctl(&data, &["campaign", "deploy", file.to_str().unwrap()]));

    let preview = ok(promoctl(
        &data,
        &["campaign", "preview", "black-friday", "--to", "jane@example.com", "--attr", "first_name=지수"],
    ));
    assert!(preview.contains("From: =?utf-8?b?7ZmN6ri464+ZIOyDgeygkA==?= <news@shop.example>"), "{preview}");
    assert!(preview.contains("To: jane@example.com"), "{preview}");
    // "지수님, 블랙프라이데이" as RFC 2047 words.
    assert!(preview.contains("Subject: =?utf-8?b?7KeA7IiY64uYLCDruJTrnpntlITrnbzsnbTrjbDsnbQ=?="), "{preview}");
    assert!(preview.contains("List-Unsubscribe: <http://127.0.0.1:8787/v1/unsubscribe?t="), "{preview}");
    assert!(preview.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{preview}");
    assert!(preview.contains("Hi =EC=A7=80=EC=88=98,"), "the attribute filled the body: {preview}");
    let bad = promoctl(&data, &["campaign", "preview", "black-friday", "--to", "not-an-address"]);
    assert_eq!(bad.status.code(), Some(1));

    let before = support::items(&data);
    let sent = ok(promoctl(&data, &["campaign", "test-send", "black-friday", "--to", "a@example.com,b@example.com"]));
    assert!(sent.contains("sent to a@example.com") && sent.contains("sent to b@example.com"), "{sent}");
    let mailed = std::fs::read_dir(data.join("outbox"))
        .unwrap()
        .filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|e| e == "eml"));
    assert_eq!(mailed.count(), 2, "one message per seed address in the outbox");
    assert_eq!(support::items(&data), before, "no delivery record, no count, no send state written");
}
