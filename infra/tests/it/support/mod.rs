//! What the end-to-end tests share: the example campaign, and the runtime on a free loopback
//! port, and the log capture.

use std::sync::Arc;
use std::time::Duration;

use promo_shared::domain::campaign::Campaign;
use promoctl::campaign_file;
use promoctl::runtime::{self, Platform, RunOptions, Running};

/// `tests/fixtures/black-friday-2026.toml`: the README's example campaign with a fixed window.
pub fn example_campaign() -> Campaign {
    campaign_file::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/black-friday-2026.toml"),
        chrono::Utc::now(),
    )
    .unwrap()
}

/// The secret of the shoppers' tokens the end-to-end tests mint.
pub const SHOPPER_SECRET: &str = "e2e-shopper-secret-0123456789abcdef";

/// A local platform in `dir` on `clock`, verifying shoppers' tokens signed with [`SHOPPER_SECRET`].
pub fn shoppers_platform(dir: &std::path::Path, clock: Arc<dyn promo_shared::ports::clock::Clock>) -> Arc<Platform> {
    let edge = promo_shared::config::EdgeConfig::from_lookup(|_| None).unwrap();
    let platform = Platform::open_with(dir, edge, clock, Arc::new(promoctl::embedded::OsIds)).unwrap();
    Arc::new(platform.with_shopper_secret(SHOPPER_SECRET).unwrap())
}

/// A bearer token of `user`, valid from `now` for 15 minutes.
pub fn shopper_token(user: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    promo_lambdas::auth::ShopperAuth::new(SHOPPER_SECRET.as_bytes()).unwrap().mint(
        &promo_shared::domain::ids::UserId::parse(user).unwrap(),
        now,
        chrono::Duration::minutes(15),
    )
}

/// `promoctl --env prod` on the stand-ins: the DynamoDB table `table` at `endpoint`, the
/// Worker's KV API at `kv_api`, test credentials, operator `mina`, and a local data directory
/// under `dir` that must stay untouched. Callers add the variables of their own services.
pub fn prod_promoctl(table: &str, endpoint: &str, kv_api: &str, dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_promoctl"));
    cmd.args(["--env", "prod"])
        .env("PROMO_TABLE_NAME", table)
        .env("PROMO_DYNAMODB_ENDPOINT", endpoint)
        .env("PROMO_CF_API_BASE", kv_api)
        .env("PROMO_CF_ACCOUNT_ID", "acct-1")
        .env("PROMO_CF_KV_NAMESPACE_ID", "ns-1")
        .env("PROMO_CF_API_TOKEN", "cf-token")
        .env("PROMO_OPERATOR", "mina")
        .env("PROMO_DATA_DIR", dir.join("no-local-store"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1");
    cmd
}

/// A fresh table on the DynamoDB stand-in (moto, `PROMO_TEST_DYNAMODB_ENDPOINT`) for
/// `promoctl --env prod`: its name (`<prefix>-<uuid>`) and the stand-in's endpoint.
pub async fn prod_table(prefix: &str) -> (String, String) {
    #[cfg(not(feature = "prod"))]
    panic!("{prefix}: this test runs promoctl --env prod: run it with `--features prod` (infra/test.sh does)");
    #[cfg(feature = "prod")]
    {
        let endpoint = std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT")
            .expect("PROMO_TEST_DYNAMODB_ENDPOINT is not set: run infra/test.sh (or source its env file)");
        let table = format!("{prefix}-{}", uuid::Uuid::now_v7().simple());
        let store = promo_lambdas::dynamodb::DynamoStore::from_env(table.clone(), Some(&endpoint)).await;
        promo_lambdas::dynamodb::create_table(store.client(), &table).await.unwrap();
        (table, endpoint)
    }
}

/// Starts `platform`'s runtime (HTTP API, schedules every `tick`, `consumers` payment
/// consumers) on a free loopback port.
pub async fn serve(platform: Arc<Platform>, tick: Duration, consumers: usize) -> Running {
    runtime::start(platform, "127.0.0.1:0".parse().unwrap(), RunOptions { tick, consumers, email_consumers: 2 })
        .await
        .unwrap()
}

/// Every item of a local platform's store, read straight from its SQLite file in `dir`: equal
/// snapshots around requests prove they wrote nothing, whatever they could have touched.
pub fn items(dir: &std::path::Path) -> Vec<(String, String, String)> {
    let db = rusqlite::Connection::open(dir.join("store.db")).unwrap();
    let mut stmt = db.prepare("SELECT pk, sk, body FROM items ORDER BY pk, sk").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

/// An HTTP answer read off the wire.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends `request` exactly as given (no URL normalisation, any header bytes) over a new
/// connection and reads the answer until the server closes it: what an HTTP client library
/// would refuse to send, such as `/v1/payments/./complete` or a header value in Latin-1.
/// `Connection: close` is added after the request line's headers.
pub async fn raw_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&out).await.unwrap();
    let mut answer = Vec::new();
    // A server may close before it has read everything (an early 413): what it answered counts.
    let _ = stream.read_to_end(&mut answer).await;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = answer[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    RawAnswer { status, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

/// The example campaign (`examples/black-friday.toml`) as `id`: active from a day ago for a
/// week, its email sent at any hour to the opted-in members whose `tier` is one of `tiers`
/// (`None`: the example's own segment).
pub async fn email_campaign(
    store: &dyn promo_shared::ports::store::Store,
    id: &str,
    tiers: Option<&[&str]>,
) -> promo_shared::domain::ids::CampaignId {
    use promo_shared::domain::email::OneOrMany;
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/black-friday.toml");
    let mut spec = campaign_file::load(&example, chrono::Utc::now()).unwrap().spec().clone();
    spec.id = promo_shared::domain::ids::CampaignId::parse(id).unwrap();
    let email = spec.email.as_mut().expect("the example has an [email] section");
    email.send_window = None;
    if let Some(tiers) = tiers {
        email.segment =
            [("tier".to_string(), OneOrMany::Many(tiers.iter().map(|t| (*t).to_string()).collect()))].into();
    }
    let now = chrono::Utc::now();
    spec.starts_at = now - chrono::Duration::days(1);
    spec.ends_at = now + chrono::Duration::days(7);
    let campaign = Campaign::new(spec).unwrap();
    promo_shared::campaigns::deploy(store, &promoctl::embedded::SystemClock, &campaign).await.unwrap();
    campaign.id.clone()
}

/// Writes audience members straight into the store, 100 to a transaction (an import reads
/// each member first: too slow for the large audiences of the fan-out tests).
pub async fn put_members(
    store: &dyn promo_shared::ports::store::Store,
    members: impl IntoIterator<Item = promo_shared::domain::audience::Member>,
) {
    use promo_shared::ports::store::TxOp;
    let mut ops = Vec::new();
    for m in members {
        ops.push(TxOp::Put { item: promo_shared::email::items::audience::to_item(&m).unwrap(), cond: None });
        if ops.len() == 100 {
            store.transact(std::mem::take(&mut ops), None).await.unwrap();
        }
    }
    if !ops.is_empty() {
        store.transact(ops, None).await.unwrap();
    }
}

/// How many messages each address has in an outbox directory (`.eml` files).
pub fn outbox_by_address(dir: &std::path::Path) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "eml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let to = text.lines().find_map(|l| l.strip_prefix("To: ")).unwrap().trim().to_string();
            *out.entry(to).or_default() += 1;
        }
    }
    out
}

/// `promoctl` (this build) with no `PROMO_*` variable of the caller's environment, working on
/// the local platform in `data_dir`.
pub fn promoctl_in(data_dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_promoctl"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PROMO_")) {
        cmd.env_remove(k);
    }
    cmd.env("PROMO_DATA_DIR", data_dir);
    cmd
}

/// A `promoctl dev` subprocess, stopped (SIGTERM, then killed) when dropped.
pub struct DevProcess {
    pub child: std::process::Child,
    pub port: u16,
}

impl DevProcess {
    /// Starts `cmd` (a [`promoctl_in`] with `dev --listen 127.0.0.1:<a free port>` added) and
    /// waits until it listens.
    pub fn start(mut cmd: std::process::Command) -> DevProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = cmd.args(["dev", "--listen", &format!("127.0.0.1:{port}")]).spawn().unwrap();
        let mut dev = DevProcess { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(dev.child.try_wait().unwrap().is_none(), "promoctl dev exited");
            assert!(std::time::Instant::now() < deadline, "promoctl dev did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        dev
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops it as Ctrl-C would (SIGTERM: a clean shutdown that flushes its logs).
    pub fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while self.child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `examples/black-friday.toml` with its email sent at any hour, written into `dir`.
pub fn email_campaign_file(dir: &std::path::Path) -> std::path::PathBuf {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/black-friday.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let file = dir.join("black-friday.toml");
    std::fs::write(&file, text.lines().filter(|l| !l.starts_with("send_window")).collect::<Vec<_>>().join("\n"))
        .unwrap();
    file
}

/// The `.eml` files of an outbox directory once there are `n` of them (within 60 s).
pub fn wait_for_outbox(dir: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let messages: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        if messages.len() >= n {
            return messages;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {n} messages in {}", messages.len(), dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The log lines of this test binary, captured by the one global subscriber (a process has one
/// global default), installed on first use at info level. Tests search it for their own lines.
#[derive(Clone)]
pub struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn captured_logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs(Arc::default());
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
    .clone()
}
