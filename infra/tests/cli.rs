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
