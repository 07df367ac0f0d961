//! promoctl: run the platform locally, and drive campaigns.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use promo_shared::app::campaigns;
use promo_shared::app::catalog;
use promo_shared::app::wallet;
use promo_shared::app::webhooks::standard::Secret;
use promo_shared::domain::ids::UserId;
use promo_shared::ports::clock::Clock;
use promoctl::config::{self, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use promoctl::runtime::{self, Platform, RunOptions};
use promoctl::{campaign_file, embedded::SystemClock};

#[derive(Parser)]
#[command(name = "promoctl", version, about = "Run the promotions platform locally and drive its campaigns.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in one process on embedded adapters (no services needed).
    Dev {
        /// Address to serve the edge routes on.
        #[arg(long, env = "PROMO_LISTEN", default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        #[command(flatten)]
        data: DataDir,
    },
    /// Validate, deploy and list campaigns.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Shoppers' coupons.
    #[command(subcommand)]
    Coupons(CouponsCommand),
    /// Sign and send webhooks as a payment provider would (to test an integration).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Publish the shop's products for max-benefit price reads.
    #[command(subcommand)]
    Products(ProductsCommand),
    /// Shoppers' mileage.
    #[command(subcommand)]
    Mileage(MileageCommand),
    /// Price a product or a cart at its best: reads the quote request JSON (SPEC.md "Pricing
    /// rules") on stdin, prints the answer JSON on stdout. Exit 1 with the problems on stderr
    /// for an invalid request.
    Quote {
        /// Print the answer on one line instead of indented.
        #[arg(long)]
        compact: bool,
    },
    /// Print a shopper bearer token (HS256, signed with PROMO_SHOPPER_JWT_SECRET or the
    /// development secret of `promoctl dev`), for `Authorization: Bearer <token>`.
    Token {
        /// The shopper's user id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// How long the token is valid.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..=31_536_000))]
        ttl_seconds: u32,
    },
}

#[derive(Args)]
struct SignArgs {
    /// The provider scheme to sign for.
    #[arg(long, default_value = "standard", value_parser = ["standard", "portone", "stripe"])]
    provider: String,
    /// The signing secret; default: the first of `PROMO_WEBHOOK_SECRET_<PROVIDER>`, else (for
    /// `standard`) the development secret of `promoctl dev`.
    #[arg(long)]
    secret: Option<String>,
    /// The delivery id (default: a new unique id).
    #[arg(long)]
    id: Option<String>,
    /// Epoch seconds (default: now).
    #[arg(long)]
    timestamp: Option<i64>,
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Read a body on stdin and print the headers a provider would send with it.
    Sign {
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Read a body on stdin, sign it and POST it to the platform; prints the answer.
    Send {
        #[command(flatten)]
        sign: SignArgs,
        /// Base URL of the platform.
        #[arg(long, default_value = "http://127.0.0.1:8787")]
        url: String,
    },
}

#[derive(Args)]
struct DataDir {
    /// Directory of the local platform's store, queue and outbox.
    #[arg(long, env = "PROMO_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Check a campaign file (.toml or .json) and print every problem found.
    Validate {
        /// The campaign file.
        file: PathBuf,
    },
    /// Validate and deploy a campaign file to the local platform's store.
    Deploy {
        /// The campaign file.
        file: PathBuf,
        #[command(flatten)]
        data: DataDir,
    },
    /// List deployed campaigns and their status now.
    List {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ProductsCommand {
    /// Print what the edge's KV must hold (the price book and every product) in the format
    /// of `wrangler kv bulk put --binding PROMO_KV FILE`; run after deploys and publishes.
    ExportKv {
        #[command(flatten)]
        data: DataDir,
    },
    /// Publish (create or replace) products from a JSON file: an array of
    /// `{"id","brand","category","currency","list_price","sale_price"}`.
    Publish {
        file: PathBuf,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum MileageCommand {
    /// Set a shopper's mileage balance (minor units).
    Set {
        #[arg(long)]
        user: String,
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
        balance: i64,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum CouponsCommand {
    /// List a shopper's coupons.
    List {
        /// The shopper's user id.
        #[arg(long)]
        user: String,
        #[command(flatten)]
        data: DataDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_new(config::log_filter())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config::log_json() {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev { listen, data } => dev(listen, data.data_dir).await,
        Command::Campaign(CampaignCommand::Validate { file }) => {
            let c = campaign_file::load(&file)?;
            println!(
                "{}: campaign `{}` is valid ({} coupons, {} reward rules{})",
                file.display(),
                c.id,
                c.coupons.len(),
                c.rewards.len(),
                if c.claim.is_some() { ", claims" } else { "" }
            );
            Ok(())
        }
        Command::Campaign(CampaignCommand::Deploy { file, data }) => {
            let c = campaign_file::load(&file)?;
            let edge = config::edge_kv()?; // a partial setting fails before anything is written
            let store = runtime::open_store(&data.data_dir)?;
            let now = SystemClock.now();
            let version = campaigns::deploy(&*store, &SystemClock, &c).await.context("deploying the campaign")?;
            let s = config::price_settings()?;
            let book = catalog::publish_price_book(&*store, now, s.rounding_unit, Some(s.mileage))
                .await
                .context("publishing the price book")?;
            println!("deployed campaign `{}` version {version} ({:?} now)", c.id, c.status_at(now));
            println!(
                "published the price book: {} public coupons, {} payment promotions",
                book.coupons.len(),
                book.payment_promotions.len()
            );
            if let Some(kv) = edge {
                kv.put_price_book(&book).await.context("publishing the price book to the edge")?;
                println!("published the price book to the edge's KV");
            }
            Ok(())
        }
        Command::Campaign(CampaignCommand::List { data, json }) => {
            let store = runtime::open_store(&data.data_dir)?;
            let all = campaigns::list(&*store).await?;
            let now = SystemClock.now();
            let mut stocks = Vec::with_capacity(all.len());
            for c in &all {
                stocks.push(stock_of(&*store, c).await?);
            }
            if json {
                let out: Vec<_> = all
                    .iter()
                    .zip(&stocks)
                    .map(|(c, stock)| serde_json::json!({"campaign": c, "status": c.status_at(now), "stock": stock}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{:<24} {:<10} {:<26} {:<26} {:<24} NAME", "ID", "STATUS", "STARTS", "ENDS", "STOCK LEFT");
                for (c, stock) in all.iter().zip(&stocks) {
                    let left: Vec<String> =
                        stock.iter().map(|(rule, s)| format!("{rule} {}/{}", s["left"], s["total"])).collect();
                    println!(
                        "{:<24} {:<10} {:<26} {:<26} {:<24} {}",
                        c.id.as_str(),
                        format!("{:?}", c.status_at(now)).to_uppercase(),
                        rfc3339(c.starts_at),
                        rfc3339(c.ends_at),
                        if left.is_empty() { "-".to_string() } else { left.join(", ") },
                        c.name
                    );
                }
            }
            Ok(())
        }
        Command::Webhook(WebhookCommand::Sign { sign }) => {
            let body = read_stdin()?;
            for (k, v) in webhook_headers(&sign, &body)? {
                println!("{k}: {v}");
            }
            Ok(())
        }
        Command::Webhook(WebhookCommand::Send { sign, url }) => {
            let body = read_stdin()?;
            let target = format!("{}/v1/webhooks/{}", url.trim_end_matches('/'), sign.provider);
            let mut req = reqwest::Client::new().post(&target).header("content-type", "application/json");
            for (k, v) in webhook_headers(&sign, &body)? {
                req = req.header(k, v);
            }
            let resp = req.body(body).send().await.with_context(|| format!("POST {target}"))?;
            let status = resp.status();
            println!("{status}");
            println!("{}", resp.text().await.unwrap_or_default());
            anyhow::ensure!(status.is_success(), "the platform answered {status}");
            Ok(())
        }
        Command::Products(ProductsCommand::Publish { file, data }) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let raw: Vec<serde_json::Value> = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a JSON array of products", file.display()))?;
            // Parsed once into the domain's types: an invalid product is named with its
            // position and nothing is written.
            let products = raw
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let id = v.get("id").and_then(|id| id.as_str()).unwrap_or("?").to_string();
                    serde_json::from_value::<promo_shared::domain::price_book::CatalogProduct>(v)
                        .with_context(|| format!("{}: products[{i}] (`{id}`)", file.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let edge = config::edge_kv()?; // a partial setting fails before anything is written
            let store = runtime::open_store(&data.data_dir)?;
            catalog::publish_products(&*store, &products).await?;
            println!("published {} products", products.len());
            if let Some(kv) = edge {
                let entries = products
                    .iter()
                    .map(|p| {
                        Ok(serde_json::json!({"key": format!("product:{}", p.id), "value": serde_json::to_string(p)?}))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                kv.put_all(&entries).await.context("publishing products to the edge")?;
                println!("published {} products to the edge's KV", entries.len());
            }
            Ok(())
        }
        Command::Products(ProductsCommand::ExportKv { data }) => {
            let store = runtime::open_store(&data.data_dir)?;
            println!("{}", serde_json::to_string_pretty(&catalog::kv_bulk(&*store).await?)?);
            Ok(())
        }
        Command::Mileage(MileageCommand::Set { user, balance, data }) => {
            let user = UserId::parse(user)?;
            let store = runtime::open_store(&data.data_dir)?;
            catalog::set_mileage(&*store, &user, balance).await?;
            println!("mileage of `{user}`: {balance}");
            Ok(())
        }
        Command::Quote { compact } => {
            let mut request = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut request).context("reading stdin")?;
            anyhow::ensure!(!request.trim().is_empty(), "no quote request on stdin (see SPEC.md \"Pricing rules\")");
            let answer = promo_shared::domain::pricing::quote_json(&request)?;
            let out = if compact { serde_json::to_string(&answer)? } else { serde_json::to_string_pretty(&answer)? };
            println!("{out}");
            Ok(())
        }
        Command::Token { user, ttl_seconds } => {
            let user = UserId::parse(user)?;
            let (auth, dev) = config::shopper_auth(true)?;
            if dev {
                eprintln!("note: PROMO_SHOPPER_JWT_SECRET is unset; signing with the development secret");
            }
            println!("{}", auth.mint(&user, SystemClock.now(), chrono::Duration::seconds(i64::from(ttl_seconds))));
            Ok(())
        }
        Command::Coupons(CouponsCommand::List { user, data, json }) => {
            let user = UserId::parse(user)?;
            let store = runtime::open_store(&data.data_dir)?;
            let coupons = wallet::list(&*store, &user).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&coupons)?);
            } else {
                println!("{:<16} {:<20} {:<16} {:<9} ENDS", "CODE", "CAMPAIGN", "COUPON", "STATUS");
                for c in coupons {
                    println!(
                        "{:<16} {:<20} {:<16} {:<9} {}",
                        c.code.as_str(),
                        c.campaign_id.as_str(),
                        c.template.id.as_str(),
                        format!("{:?}", c.status).to_uppercase(),
                        rfc3339(c.ends_at)
                    );
                }
            }
            Ok(())
        }
    }
}

/// What is left of a campaign's limited stocks, by rule (`claim`, then each reward rule with
/// a stock): `{"left", "total"}`.
async fn stock_of(
    store: &dyn promo_shared::ports::store::Store,
    campaign: &promo_shared::domain::campaign::Campaign,
) -> anyhow::Result<std::collections::BTreeMap<String, serde_json::Value>> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(claim) = &campaign.claim {
        let left: i64 = promo_shared::app::claims::stock_left(store, campaign).await?.iter().sum();
        out.insert("claim".to_string(), serde_json::json!({"left": left, "total": claim.stock}));
    }
    for rule in &campaign.rewards {
        if let Some(total) = rule.stock {
            let left: i64 = promo_shared::app::issuer::reward_stock_left(store, campaign, rule).await?.iter().sum();
            out.insert(format!("reward {}", rule.id), serde_json::json!({"left": left, "total": total}));
        }
    }
    Ok(out)
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).context("reading the body from stdin")?;
    anyhow::ensure!(!body.is_empty(), "no body on stdin: pipe the webhook body in, e.g. < event.json");
    Ok(body)
}

fn webhook_headers(sign: &SignArgs, body: &[u8]) -> anyhow::Result<Vec<(&'static str, String)>> {
    let secret = match &sign.secret {
        Some(s) => s.clone(),
        None => config::webhook_signing_secret(&sign.provider).ok_or_else(|| {
            anyhow::anyhow!(
                "no secret for `{}`: pass --secret or set PROMO_WEBHOOK_SECRET_{}",
                sign.provider,
                sign.provider.to_ascii_uppercase()
            )
        })?,
    };
    let ts = sign.timestamp.unwrap_or_else(|| SystemClock.now().timestamp());
    if sign.provider == "stripe" {
        // Stripe's delivery id is the event id inside the body; only the signature is a header.
        let secret = promo_shared::app::webhooks::stripe::Secret::parse(&secret)
            .map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
        return Ok(vec![("stripe-signature", secret.sign(ts, body))]);
    }
    let secret = Secret::parse(&secret).map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
    let id = sign.id.clone().unwrap_or_else(|| format!("msg_{}", uuid::Uuid::now_v7().simple()));
    Ok(vec![
        ("webhook-id", id.clone()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", secret.sign(&id, ts, body)),
    ])
}

async fn dev(listen: SocketAddr, data_dir: PathBuf) -> anyhow::Result<()> {
    let (edge_config, dev_secret) = config::edge_config(true)?;
    let tick = config::tick()?;
    let consumers = config::consumers()?;
    let (_, dev_shopper_secret) = config::shopper_jwt_secret(true)?;
    let platform = Arc::new(Platform::open(&data_dir, edge_config)?);
    // Campaigns may have ended or been deployed by an older build since the last run.
    let s = &platform.prices;
    catalog::publish_price_book(&*platform.store, platform.clock.now(), s.rounding_unit, Some(s.mileage))
        .await
        .context("publishing the price book")?;
    let running = runtime::start(platform, listen, RunOptions { tick, consumers }).await?;
    eprintln!("promoctl dev: serving http://{} (data in {})", running.addr, data_dir.display());
    if dev_secret {
        eprintln!(
            "  webhooks: PROMO_WEBHOOK_SECRET_STANDARD is unset; using the development secret {}",
            config::DEV_WEBHOOK_SECRET
        );
    }
    if dev_shopper_secret {
        eprintln!("  shoppers: PROMO_SHOPPER_JWT_SECRET is unset; tokens from `promoctl token --user U` are accepted");
    }
    eprintln!("  press Ctrl-C to stop (queued work is kept and resumed on the next start)");
    shutdown_signal().await;
    eprintln!("promoctl dev: stopping...");
    running.shutdown().await?;
    eprintln!("promoctl dev: stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
