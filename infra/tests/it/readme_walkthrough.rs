//! README.md's "Try it" walkthrough, run as written on today's date, so it can never go
//! stale: the shell block is taken from the README itself, `promoctl dev` serves on a free
//! port with a fresh data directory, and `promoctl` is this build's binary.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first ```sh block after the heading `## Try it`.
fn walkthrough(readme: &str) -> String {
    let section = readme.split("\n## Try it").nth(1).expect("README.md has a `## Try it` section");
    let block = section.split("```sh\n").nth(1).expect("a ```sh block in `## Try it`");
    block.split("\n```").next().unwrap().to_string()
}

#[test]
fn the_readme_walkthrough_works_today() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let script = walkthrough(&std::fs::read_to_string(root.join("README.md")).unwrap());
    assert!(script.contains("promoctl campaign deploy examples/black-friday.toml"), "{script}");
    let bin = env!("CARGO_BIN_EXE_promoctl");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let clean_env = |cmd: &mut Command| {
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PROMO_")) {
            cmd.env_remove(k);
        }
        cmd.env("PROMO_DATA_DIR", dir.path()).env("PROMO_URL", format!("http://127.0.0.1:{port}"));
    };
    let mut dev = Command::new(bin);
    clean_env(&mut dev);
    let _dev = Dev(dev
        .arg("dev")
        .env("PROMO_LISTEN", format!("127.0.0.1:{port}"))
        .env("PROMO_TICK_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "promoctl dev did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    // As written, except: `promoctl` is this build (not `cargo run`), and the platform is on
    // the test's port. Every command must succeed.
    let script = script
        .lines()
        .filter(|l| !l.starts_with("alias promoctl="))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("localhost:8787", &format!("127.0.0.1:{port}"));
    let mut sh = Command::new("bash");
    clean_env(&mut sh);
    let out = sh
        .args(["-euo", "pipefail", "-c", &format!("promoctl() {{ {bin:?} \"$@\"; }}\n{script}")])
        .current_dir(root)
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the walkthrough failed:\n{stdout}\n{stderr}");
    for expected in [
        "campaign `black-friday` is valid",
        "deployed campaign `black-friday` version 1",
        "\"campaign_id\":\"black-friday\"", // the claim
        "\"status\":\"ok\"",                // /healthz
        "\"status\":\"RESERVED\"",          // the limited event's reservation
        "\"available\":99",
        "published 2 products",
        "x-cache: MISS",
        "thanks-5000",            // u-1's reward, in `coupons list`
        "\"final_price\": 37800", // `promoctl quote`: the example's answer
        "imported 4 members",     // the audience import
        "state      SENDING",     // the email send, triggered
        "<promo-price locale=",   // the demo shop's page: the fragment, for the embed to upgrade
    ] {
        assert!(stdout.to_lowercase().contains(&expected.to_lowercase()), "{expected:?} missing in:\n{stdout}");
    }
    assert!(!stdout.contains("campaign_not_active"), "{stdout}");
    // The paid webhook earned u-1 exactly one coupon (the consumer may finish after the
    // walkthrough's `coupons list`).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut list = Command::new(bin);
        clean_env(&mut list);
        let out = list.args(["coupons", "list", "--user", "u-1", "--json"]).output().unwrap();
        let coupons: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if coupons.as_array().unwrap().len() == 1 {
            assert_eq!(coupons[0]["campaign_id"], "black-friday");
            break;
        }
        assert!(Instant::now() < deadline, "u-1 has {coupons} after the walkthrough");
        std::thread::sleep(Duration::from_millis(100));
    }
}
