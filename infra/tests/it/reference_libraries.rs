//! Our webhook signatures against the providers' own reference libraries, both ways:
//! headers `promoctl webhook sign` prints are accepted by the reference verifier, and
//! headers the reference library generates are accepted by ours. The tampered cases prove
//! each check can fail.
//!
//! The reference libraries are the Python SDKs `stripe` (Stripe's official SDK,
//! `stripe.Webhook.construct_event` / `WebhookSignature`) and `standardwebhooks` (the
//! Standard Webhooks reference implementation), installed into the tools venv by
//! `infra/test.sh` (infra/requirements-tools.txt); that venv's `python3` comes first on PATH
//! once `infra/services/env.sh` is sourced. A missing library fails the test loudly.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use promo_shared::http::Request;
use promo_shared::payments::webhooks::standard;
use promo_shared::payments::webhooks::stripe;

const STRIPE_SECRET: &str = "whsec_test_secret";
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"id":"evt_test_webhook","object":"event","type":"payment_intent.succeeded"}"#;

fn run(program: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (run the suite through infra/test.sh)"));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a Python snippet with the reference library; `Ok(stdout)` on exit 0.
fn python(script: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let out = run("python3", &all, "");
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the reference library is not installed (infra/test.sh installs it into the tools venv): {stderr}"
    );
    if out.status.success() { Ok(text(&out.stdout)) } else { Err(stderr) }
}

fn promoctl_sign(provider: &str, secret: &str, extra: &[&str], body: &str) -> Vec<(String, String)> {
    let mut args = vec!["webhook", "sign", "--provider", provider, "--secret", secret];
    args.extend_from_slice(extra);
    let out = run(env!("CARGO_BIN_EXE_promoctl"), &args, body);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

const STRIPE_VERIFY: &str = r#"
import sys, stripe
stripe.Webhook.construct_event(sys.argv[1], sys.argv[2], sys.argv[3])
"#;

#[test]
fn stripe_sdk_accepts_what_promoctl_signs() {
    let headers = promoctl_sign("stripe", STRIPE_SECRET, &[], BODY);
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, "stripe-signature");
    let sig = headers[0].1.as_str();
    python(STRIPE_VERIFY, &[BODY, sig, STRIPE_SECRET]).unwrap();
    let tampered = BODY.replace("succeeded", "failed");
    let err = python(STRIPE_VERIFY, &[&tampered, sig, STRIPE_SECRET]).unwrap_err();
    assert!(err.contains("SignatureVerificationError"), "{err}");
    let err = python(STRIPE_VERIFY, &[BODY, sig, "whsec_another_secret"]).unwrap_err();
    assert!(err.contains("SignatureVerificationError"), "{err}");
}

#[test]
fn we_accept_what_the_stripe_sdk_signs() {
    // The header exactly as the SDK's own tests build it (`WebhookSignature._compute_signature`
    // over "<t>.<payload>"), with the SDK choosing the timestamp.
    let header = python(
        r#"
import sys, time, stripe
t = int(time.time())
sig = stripe.WebhookSignature._compute_signature(f"{t}.{sys.argv[1]}", sys.argv[2])
print(f"t={t},v1={sig}", end="")
"#,
        &[BODY, STRIPE_SECRET],
    )
    .unwrap();
    let t: i64 = header.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
    let secrets = [stripe::Secret::parse(STRIPE_SECRET).unwrap()];
    let req = |body: &str| Request::new("POST", "/v1/webhooks/stripe").header(stripe::HEADER, &header).body(body);
    assert_eq!(stripe_verify(&secrets, &req(BODY), t, 300).unwrap(), t);
    assert!(stripe_verify(&secrets, &req(&BODY.replace("succeeded", "failed")), t, 300).is_err());
    let other = [stripe::Secret::parse("whsec_another_secret").unwrap()];
    assert!(stripe_verify(&other, &req(BODY), t, 300).is_err());
}

const STANDARD_VERIFY: &str = r#"
import sys
from standardwebhooks.webhooks import Webhook
Webhook(sys.argv[1]).verify(sys.argv[2], {"webhook-id": sys.argv[3], "webhook-timestamp": sys.argv[4], "webhook-signature": sys.argv[5]})
"#;

#[test]
fn standard_webhooks_library_accepts_what_promoctl_signs() {
    let headers = promoctl_sign("standard", STANDARD_SECRET, &["--id", "msg_reference_check"], BODY);
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap();
    let (id, ts, sig) = (get("webhook-id"), get("webhook-timestamp"), get("webhook-signature"));
    assert_eq!(id, "msg_reference_check");
    python(STANDARD_VERIFY, &[STANDARD_SECRET, BODY, id, ts, sig]).unwrap();
    let err =
        python(STANDARD_VERIFY, &[STANDARD_SECRET, &BODY.replace("succeeded", "failed"), id, ts, sig]).unwrap_err();
    assert!(err.contains("WebhookVerificationError"), "{err}");
    let err = python(STANDARD_VERIFY, &[STANDARD_SECRET, BODY, "msg_other", ts, sig]).unwrap_err();
    assert!(err.contains("WebhookVerificationError"), "{err}");
}

#[test]
fn we_accept_what_the_standard_webhooks_library_signs() {
    let out = python(
        r#"
import sys, time
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
t = int(time.time())
print(t, Webhook(sys.argv[1]).sign("msg_from_reference", datetime.fromtimestamp(t, tz=timezone.utc), sys.argv[2]), end="")
"#,
        &[STANDARD_SECRET, BODY],
    )
    .unwrap();
    let (t, sig) = out.split_once(' ').unwrap();
    let now: i64 = t.parse().unwrap();
    let secrets = [standard::Secret::parse(STANDARD_SECRET).unwrap()];
    let req = |id: &str, body: &str| {
        Request::new("POST", "/v1/webhooks/standard")
            .header("webhook-id", id)
            .header("webhook-timestamp", t)
            .header("webhook-signature", sig)
            .body(body)
    };
    let verified = standard_verify(&secrets, &req("msg_from_reference", BODY), now, 300).unwrap();
    assert_eq!(verified.delivery_id, "msg_from_reference");
    assert!(
        standard_verify(&secrets, &req("msg_from_reference", &BODY.replace("succeeded", "failed")), now, 300).is_err()
    );
    assert!(standard_verify(&secrets, &req("msg_other", BODY), now, 300).is_err());
}

fn stripe_verify(
    secrets: &[stripe::Secret],
    r: &promo_shared::http::Request,
    now: i64,
    tolerance: i64,
) -> Result<i64, promo_shared::payments::webhooks::SignatureError> {
    stripe::verify(secrets, &r.headers, &r.body, now, tolerance)
}

fn standard_verify(
    secrets: &[standard::Secret],
    r: &promo_shared::http::Request,
    now: i64,
    tolerance: i64,
) -> Result<standard::Verified, promo_shared::payments::webhooks::SignatureError> {
    standard::verify(secrets, &r.headers, &r.body, now, tolerance)
}
