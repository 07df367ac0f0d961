//! The local platform's logs never carry a shopper's raw user id or email address: a whole
//! run of `promoctl dev` (claims, wallets, a campaign email sent and unsubscribed from, a
//! limited event's reservation, listed and cancelled, a payment webhook) with distinctive ids
//! and addresses, its debug logs captured as JSON, and none of them found there, masked or
//! not (issue 25, item 15).

use crate::support;

use std::process::Stdio;

use serde_json::Value;

/// Users and addresses nothing else in a log could contain by chance.
const CLAIMER: &str = "zq-claimer-5521";
const RESERVER: &str = "zq-reserver-8830";
const PAYER: &str = "zq-payer-6612";
const MAILEES: [(&str, &str); 2] =
    [("zq-mailee-4417", "qx.mailee.4417@logscan.example"), ("zq-mailee-9034", "qx.mailee.9034@logscan.example")];

fn cli(data: &std::path::Path, url: &str, args: &[&str]) -> String {
    let out = support::promoctl_in(data).env("PROMO_URL", url).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_logs_carry_no_raw_user_id_or_address() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("dev.log");
    let mut dev = support::promoctl_in(&data);
    dev.env("PROMO_LOG", "debug")
        .env("PROMO_LOG_FORMAT", "json")
        .env("PROMO_TICK_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap());
    let mut dev = support::DevProcess::start(dev);
    let url = dev.url();
    let http = reqwest::Client::new();
    let token = |user: &str| cli(&data, &url, &["token", "--user", user]).trim().to_string();

    // A claim and the claimer's wallet.
    cli(&data, &url, &["campaign", "deploy", support::email_campaign_file(dir.path()).to_str().unwrap()]);
    let claimed =
        http.post(format!("{url}/v1/campaigns/black-friday/claims")).bearer_auth(token(CLAIMER)).send().await.unwrap();
    assert_eq!(claimed.status(), 201, "{}", claimed.text().await.unwrap());
    let wallet =
        http.get(format!("{url}/v1/users/{CLAIMER}/coupons")).bearer_auth(token(CLAIMER)).send().await.unwrap();
    assert_eq!(wallet.status(), 200);
    let refused = http.get(format!("{url}/v1/users/{PAYER}/coupons")).bearer_auth(token(CLAIMER)).send().await.unwrap();
    assert_eq!(refused.status(), 403, "another's wallet");

    // A campaign email to two members, and one of them unsubscribing by the link.
    let csv = dir.path().join("audience.csv");
    let mut rows = String::from("email,user_id,opted_in,tier,first_name\n");
    for (user, address) in MAILEES {
        rows.push_str(&format!("{address},{user},true,gold,Zq\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    cli(&data, &url, &["audience", "import", csv.to_str().unwrap()]);
    cli(&data, &url, &["campaign", "trigger", "black-friday", "--detach"]);
    let messages = support::wait_for_outbox(&data.join("outbox"), 2);
    let unfolded = messages[0].replace("\r\n ", " ").replace("\r\n\t", " ").replace("\n ", " ");
    let link = unfolded.lines().find_map(|l| l.strip_prefix("List-Unsubscribe: <")).unwrap();
    let link = link.split('>').next().unwrap();
    let unsubscribed = http.post(link).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(unsubscribed.status(), 200, "{}", unsubscribed.text().await.unwrap());

    // A limited event: a reservation, the reserver's list, the cancellation.
    cli(&data, &url, &["campaign", "deploy", concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/drop.toml")]);
    let reserved: Value = http
        .post(format!("{url}/v1/events/signed-100/reservations"))
        .bearer_auth(token(RESERVER))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rid = reserved["reservation_id"].as_str().unwrap_or_else(|| panic!("{reserved}")).to_string();
    let again = http
        .post(format!("{url}/v1/events/signed-100/reservations"))
        .bearer_auth(token(RESERVER))
        .send()
        .await
        .unwrap();
    assert!(again.status().is_client_error(), "the limit of one: {}", again.status());
    let mine =
        http.get(format!("{url}/v1/users/{RESERVER}/reservations")).bearer_auth(token(RESERVER)).send().await.unwrap();
    assert_eq!(mine.status(), 200);
    let cancelled = http
        .delete(format!("{url}/v1/events/signed-100/reservations/{rid}"))
        .bearer_auth(token(RESERVER))
        .send()
        .await
        .unwrap();
    assert!(cancelled.status().is_success(), "{}", cancelled.status());

    // A payment webhook for another shopper.
    cli(&data, &url, &["webhook", "trigger", "paid", "--user", PAYER]);

    // Stopped cleanly: every line is written.
    dev.stop();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    for expected in ["coupon claimed", "unsubscribed", "\"path\""] {
        assert!(logs.contains(expected), "the run's logs have no {expected:?}: were they captured?\n{logs}");
    }
    let mut secrets: Vec<&str> = vec![CLAIMER, RESERVER, PAYER];
    for (user, address) in MAILEES {
        secrets.extend([user, address]);
    }
    let leaks: Vec<String> = logs
        .lines()
        .filter_map(|line| {
            let found: Vec<&&str> = secrets.iter().filter(|s| line.contains(**s)).collect();
            (!found.is_empty()).then(|| format!("{found:?} in {line}"))
        })
        .collect();
    assert!(leaks.is_empty(), "raw user ids or addresses in the logs:\n{}", leaks.join("\n"));
}
