//! Campaign email under crashes, on the local platform's real processes: `promoctl dev` (one
//! email consumer) sends a 12,000-recipient campaign from the embedded queue into the outbox
//! and is SIGKILLed mid-stream, twice, and restarted each time; then, on another send, it
//! is stopped cleanly (SIGTERM) mid-stream and restarted. After each: nobody mailed twice,
//! nobody never attempted, at most the consumer's in-hand batch (4 jobs of 50) UNCERTAIN per
//! kill, and none after a clean stop.

use crate::support;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use promo_shared::domain::ids::CampaignId;
use promo_shared::email::delivery::LEASE;
use promo_shared::email::send::{self as email_send, Progress};
use promoctl::embedded::SqliteStore;

const N: usize = 12_000;
/// The consumer's receive batch (4 jobs) of 50 recipients: what one kill may leave uncertain.
const IN_HAND: u64 = 4 * 50;

struct Platform {
    dir: tempfile::TempDir,
    bin: &'static str,
}

impl Platform {
    fn new() -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let p = Platform { dir, bin: env!("CARGO_BIN_EXE_promoctl") };
        let mut csv = String::from("email,user_id,opted_in,tier,first_name\n");
        for i in 0..N {
            csv.push_str(&format!("s{i}@example.com,u-{i:06},true,gold,N{i}\n"));
        }
        std::fs::write(p.dir.path().join("audience.csv"), csv).unwrap();
        let example =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/black-friday.toml"))
                .unwrap();
        let any_hour: String = example.lines().filter(|l| !l.starts_with("send_window")).collect::<Vec<_>>().join("\n");
        for id in ["chaos-kill", "chaos-stop"] {
            let file = any_hour.replacen("id = \"black-friday\"", &format!("id = \"{id}\""), 1);
            std::fs::write(p.dir.path().join(format!("{id}.toml")), file).unwrap();
        }
        p.cli(&["audience", "import", "audience.csv"]);
        p
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(self.bin);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PROMO_")) {
            cmd.env_remove(k);
        }
        cmd.current_dir(self.dir.path()).env("PROMO_DATA_DIR", self.dir.path().join("data"));
        cmd
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert!(out.status.success(), "promoctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `promoctl dev` with one email consumer sending at `rate` messages a second.
    fn dev(&self, rate: u32) -> Child {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = self
            .command()
            .arg("dev")
            .env("PROMO_LISTEN", format!("127.0.0.1:{port}"))
            .env("PROMO_EMAIL_CONSUMERS", "1")
            .env("PROMO_CONSUMERS", "0")
            .env("PROMO_EMAIL_RATE", rate.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "promoctl dev did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Messages in the outbox by address.
    fn outbox(&self) -> HashMap<String, usize> {
        support::outbox_by_address(&self.dir.path().join("data/outbox"))
    }

    /// The send's progress as it will read once every lease has passed (a claim still
    /// unsettled then is UNCERTAIN), read from the store file the processes share.
    async fn progress(&self, id: &CampaignId) -> Progress {
        let store = SqliteStore::open(&self.dir.path().join("data/store.db")).unwrap();
        email_send::progress(&store, id, chrono::Utc::now() + LEASE + chrono::Duration::seconds(1)).await.unwrap()
    }
}

fn signal(child: &mut Child, sig: &str) {
    let status = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    child.wait().unwrap();
}

/// Waits until more than `n` messages are in the outbox.
fn until_mailed(p: &Platform, n: usize) {
    let count = || {
        std::fs::read_dir(p.dir.path().join("data/outbox"))
            .map(|d| d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))).count())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while count() <= n {
        assert!(Instant::now() < deadline, "the consumer sent no more than {n} in two minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the send is finished as it will read after the leases, i.e. every recipient
/// settled or uncertain (the killed consumer's jobs come back after the queue's 30 s lease).
async fn until_finished(p: &Platform, id: &CampaignId) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let pr = p.progress(id).await;
        assert_eq!(pr.audience, pr.sent + pr.skipped + pr.failed + pr.uncertain + pr.pending, "{pr:?}");
        if pr.finished {
            return;
        }
        assert!(Instant::now() < deadline, "not finished in 5 minutes: {pr:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn nobody_twice_nobody_missed(p: &Platform, pr: &Progress) {
    let mail = p.outbox();
    let twice: Vec<_> = mail.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "mailed twice: {twice:?}");
    assert_eq!(pr.audience, N as u64, "every recipient was enqueued");
    // Every recipient has a record: sent (in the outbox) or uncertain (maybe in it).
    assert_eq!(pr.sent + pr.uncertain, N as u64, "{pr:?}");
    assert!(mail.len() as u64 >= pr.sent, "each SENT recipient is in the outbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_consumer_never_mails_twice_and_leaves_at_most_its_batch_uncertain() {
    let p = Platform::new();
    let id = CampaignId::parse("chaos-kill").unwrap();
    p.cli(&["campaign", "deploy", "chaos-kill.toml"]);
    p.cli(&["campaign", "trigger", "chaos-kill", "--detach", "--json"]);
    let mut dev = p.dev(2000);
    for round in 1..=2 {
        until_mailed(&p, round * 2500);
        signal(&mut dev, "-KILL");
        dev = p.dev(2000);
    }
    until_finished(&p, &id).await;
    // A clean stop lets the live consumer settle what it holds; then the final counts.
    signal(&mut dev, "-TERM");
    let pr = p.progress(&id).await;
    nobody_twice_nobody_missed(&p, &pr);
    assert!(pr.uncertain <= 2 * IN_HAND, "two kills left {} uncertain (at most {IN_HAND} each)", pr.uncertain);
    eprintln!("two SIGKILLs: {} sent, {} uncertain", pr.sent, pr.uncertain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanly_stopped_consumer_leaves_nothing_uncertain() {
    let p = Platform::new();
    let id = CampaignId::parse("chaos-stop").unwrap();
    p.cli(&["campaign", "deploy", "chaos-stop.toml"]);
    p.cli(&["campaign", "trigger", "chaos-stop", "--detach", "--json"]);
    let mut dev = p.dev(2000);
    until_mailed(&p, 3000);
    signal(&mut dev, "-TERM");
    let mut dev = p.dev(4000);
    until_finished(&p, &id).await;
    signal(&mut dev, "-TERM");
    let pr = p.progress(&id).await;
    nobody_twice_nobody_missed(&p, &pr);
    assert_eq!(pr.uncertain, 0, "a clean stop finishes the jobs in hand");
}
