//! infra/deploy.sh, offline: `--dry-run` prints every step of the runbook and what it would
//! run, and calls none of the tools that need an account (aws, sam, wrangler, cargo lambda
//! are stand-ins here that record any call); a missing prerequisite (a tool, a parameter,
//! credentials) stops it with a clear message before anything changes.

use std::path::{Path, PathBuf};
use std::process::Output;

const TOOLS: [&str; 4] = ["aws", "sam", "wrangler", "cargo-lambda"];

/// A directory of stand-ins for `tools`, each appending its command line to `calls` and
/// failing (as with no credentials, no network).
fn stubs(dir: &Path, tools: &[&str]) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("calls");
    for tool in tools {
        let path = bin.join(tool);
        std::fs::write(&path, format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 1\n", calls.display())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (bin, calls)
}

fn deploy(bin: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy.sh");
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(script).args(args).env_clear().env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    cmd.env("HOME", bin).stdin(std::process::Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PARAMS: [(&str, &str); 3] = [
    ("AWS_REGION", "ap-northeast-2"),
    ("PUBLIC_URL", "https://promo-staging.shop.example"),
    ("CLOUDFLARE_ACCOUNT_ID", "acct-1"),
];

#[test]
fn a_dry_run_prints_every_step_and_calls_nothing_that_needs_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, calls) = stubs(dir.path(), &TOOLS);
    for stage in promoctl::stages::STAGES {
        let out = deploy(&bin, &["--stage", stage, "--dry-run"], &PARAMS);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stage}: {stdout}\n{}", text(&out.stderr));
        let stack = promoctl::stages::stack_name(stage);
        for want in [
            "would run: aws sts get-caller-identity".to_string(),
            format!("would check: aws secretsmanager describe-secret --secret-id promo/{stage}/issuer-secret"),
            "would run: sam build --template-file template.yaml".to_string(),
            format!("would run: sam deploy --stack-name {stack} --region ap-northeast-2 --resolve-s3"),
            "CAPABILITY_NAMED_IAM".to_string(),
            format!("Stage={stage} PublicUrl=https://promo-staging.shop.example"),
            format!("CloudflareApiTokenSecretName=promo/{stage}/cloudflare-api-token"),
            format!("would run: wrangler deploy --env {stage}"),
            format!("promoctl env add {stage}"),
            "would run: curl -fsS https://promo-staging.shop.example/healthz".to_string(),
            "Manual steps left".to_string(),
        ] {
            assert!(stdout.contains(&want), "{stage}: no `{want}` in\n{stdout}");
        }
        // Secrets are generated, never shown.
        assert!(!stdout.contains("--secret-string"), "{stdout}");
    }
    assert!(!calls.exists(), "a dry run called {}", std::fs::read_to_string(&calls).unwrap_or_default());

    let torn = deploy(&bin, &["--stage", "prod", "--teardown", "--dry-run"], &PARAMS[..1]);
    let stdout = text(&torn.stdout);
    assert!(torn.status.success(), "{stdout}\n{}", text(&torn.stderr));
    assert!(stdout.contains("would run: sam delete --stack-name promo-prod"), "{stdout}");
    assert!(stdout.contains("would run: wrangler delete --env prod"), "{stdout}");
    assert!(stdout.contains("the table promo-prod") && stdout.contains("retained"), "{stdout}");
    assert!(!calls.exists(), "a dry teardown called {}", std::fs::read_to_string(&calls).unwrap_or_default());
}

#[test]
fn the_first_missing_prerequisite_stops_it_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // A stage that is not one.
    let (bin, calls) = stubs(dir.path(), &TOOLS);
    let out = deploy(&bin, &["--stage", "production", "--dry-run"], &PARAMS);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a stage: one of staging prod"), "{}", text(&out.stderr));
    // No stage at all.
    let out = deploy(&bin, &["--dry-run"], &PARAMS);
    assert!(text(&out.stderr).contains("--stage is required"), "{}", text(&out.stderr));
    // A parameter.
    let out = deploy(&bin, &["--stage", "staging", "--dry-run"], &PARAMS[..1]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("STOPPED: PUBLIC_URL is not set"), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("step 3"), "it went on: {}", text(&out.stdout));
    // Credentials, on a real run: the first call fails, nothing after it runs.
    let out = deploy(&bin, &["--stage", "staging"], &PARAMS);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("STOPPED: no AWS credentials"), "{}", text(&out.stderr));
    let called = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(called.lines().collect::<Vec<_>>(), ["aws sts get-caller-identity --output text --query Account"]);

    // A tool: without sam it stops at the tools, before anything else.
    let bare = tempfile::tempdir().unwrap();
    let (bin, _) = stubs(bare.path(), &["aws", "wrangler", "cargo-lambda"]);
    let out = deploy(&bin, &["--stage", "staging", "--dry-run"], &PARAMS);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("STOPPED: sam is not on PATH"), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("step 2"), "it went on: {}", text(&out.stdout));
}
