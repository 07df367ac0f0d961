//! `promoctl webhook sign|send|trigger`: a body from stdin (or built by `trigger`), signed as
//! a provider would sign it.

use anyhow::Context;
use clap::{Args, Subcommand};
use promo_shared::payments::webhooks::{standard, stripe};
use promo_shared::ports::clock::Clock;
use promoctl::config;
use promoctl::embedded::SystemClock;
use promoctl::target::Env;
use promoctl::webhook_events::{self, Kind, Payment};

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Read a body on stdin and print the headers a provider would send with it.
    Sign {
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Read a body on stdin, sign it and POST it to the platform; prints the answer.
    Send {
        #[command(flatten)]
        sign: SignArgs,
        /// Base URL of the platform (`--env local` default: http://127.0.0.1:8787; `--env prod`:
        /// required).
        #[arg(long, env = "PROMO_URL")]
        url: Option<String>,
    },
    /// Build a correct event of the provider (no JSON to write), sign it and POST it: `paid`,
    /// `cancelled` or `refunded` (`--refunded N` for a partial refund). A PortOne webhook only
    /// names the payment: the platform then looks it up at PortOne's API (locally at `promoctl
    /// dev`'s stand-in, where the payment is recorded first).
    Trigger(Trigger),
}

#[derive(Args)]
pub struct Trigger {
    /// What happened to the payment.
    #[arg(value_enum)]
    kind: Kind,
    #[command(flatten)]
    sign: SignArgs,
    /// The shopper who paid.
    #[arg(long, default_value = "u-1")]
    user: String,
    /// The amount paid, in minor units of the currency.
    #[arg(long, default_value_t = 52000)]
    amount: i64,
    #[arg(long, default_value = "KRW")]
    currency: String,
    /// The payment's id (default: a new one; give the same to cancel or refund it).
    #[arg(long)]
    payment_id: Option<String>,
    /// The order's id (default: `order-<payment id>`).
    #[arg(long)]
    order_id: Option<String>,
    /// For `refunded`: the amount refunded (default: all of it).
    #[arg(long)]
    refunded: Option<i64>,
    /// The limited-event reservation the payment pays for (`standard` and `stripe`; locally
    /// `portone` too, in the stand-in payment's `customData`: at PortOne the shop sets it).
    #[arg(long)]
    reservation_id: Option<String>,
    /// Print the body and headers instead of sending them.
    #[arg(long)]
    print: bool,
    /// Base URL of the platform (`--env local` default: http://127.0.0.1:8787; `--env prod`:
    /// required).
    #[arg(long, env = "PROMO_URL")]
    url: Option<String>,
}

/// The local platform `promoctl dev` serves by default.
const LOCAL_URL: &str = "http://127.0.0.1:8787";

/// Where a webhook goes: `--url`/`PROMO_URL`, else the local platform; production has no
/// default (never silently localhost).
fn platform_url(url: Option<String>, env: Env) -> anyhow::Result<String> {
    match (url.filter(|u| !u.trim().is_empty()), env) {
        (Some(url), _) => Ok(url),
        (None, Env::Local) => Ok(LOCAL_URL.to_string()),
        // A deployed stage's public origin, as `promoctl env add` recorded it (PROMO_PUBLIC_URL).
        (None, env) => config::public_url().ok_or_else(|| {
            anyhow::anyhow!(
                "--env {0} sends the webhook to {1}: set PROMO_URL (or pass --url) to the platform's public origin, \
                 e.g. https://shop.example (`promoctl env add {0}` records it from the stack)",
                env.stage().unwrap_or("prod"),
                env.human()
            )
        }),
    }
}

#[derive(Args)]
pub struct SignArgs {
    /// The provider scheme to sign for.
    #[arg(long, default_value = "standard", value_parser = ["standard", "portone", "stripe"])]
    provider: String,
    /// The signing secret; default: the first of `PROMO_WEBHOOK_SECRET_<PROVIDER>`, else (for
    /// `standard`) the development secret of `promoctl dev`.
    #[arg(long)]
    secret: Option<String>,
    /// The delivery id (default: a new unique id); for Stripe, the event's `id` in the body.
    #[arg(long)]
    id: Option<String>,
    /// Epoch seconds (default: now).
    #[arg(long)]
    timestamp: Option<i64>,
}

impl WebhookCommand {
    pub async fn run(self, env: Env) -> anyhow::Result<()> {
        match self {
            WebhookCommand::Sign { sign } => {
                let body = with_stripe_id(&sign, read_stdin()?)?;
                if sign.provider == "stripe" && sign.id.is_some() {
                    println!("{}", String::from_utf8_lossy(&body));
                }
                for (k, v) in headers(&sign, &body)? {
                    println!("{k}: {v}");
                }
                Ok(())
            }
            WebhookCommand::Send { sign, url } => {
                let url = platform_url(url, env)?;
                production_secret(&sign, env)?;
                let body = read_stdin()?;
                send(&url, &sign, body).await
            }
            WebhookCommand::Trigger(t) => {
                production_secret(&t.sign, env)?;
                t.run(env).await
            }
        }
    }
}

impl Trigger {
    async fn run(self, env: Env) -> anyhow::Result<()> {
        let payment_id = self.payment_id.unwrap_or_else(|| format!("pay_{}", uuid::Uuid::now_v7().simple()));
        anyhow::ensure!(
            self.reservation_id.is_none() || self.sign.provider != "portone" || !env.is_remote(),
            "a PortOne webhook only names the payment: the reservation goes in the payment's customData at PortOne \
             (use --provider standard or stripe to pay a reservation here)"
        );
        let payment = Payment {
            provider: self.sign.provider.clone(),
            order_id: self.order_id.unwrap_or_else(|| format!("order-{payment_id}")),
            payment_id,
            user_id: self.user,
            amount: self.amount,
            currency: self.currency,
            refunded: self.refunded,
            at: SystemClock.now(),
            reservation_id: self.reservation_id,
        };
        let (body, id) = webhook_events::body(self.kind, &payment, self.sign.id.as_deref());
        let sign = SignArgs { id: Some(id), ..self.sign };
        let body = serde_json::to_vec(&body)?;
        if self.print {
            for (k, v) in headers(&sign, &body)? {
                println!("{k}: {v}");
            }
            println!("\n{}", String::from_utf8_lossy(&body));
            return Ok(());
        }
        let url = platform_url(self.url, env)?;
        if sign.provider == "portone" && !env.is_remote() {
            record_at_standin(&url, self.kind, &payment).await?;
        }
        eprintln!("{} {:?} of payment {} by {}", sign.provider, self.kind, payment.payment_id, payment.user_id);
        send(&url, &sign, body).await
    }
}

/// A PortOne webhook only names the payment: the local platform looks it up at `promoctl
/// dev`'s PortOne stand-in, where the payment is recorded first (as PortOne would have it).
async fn record_at_standin(url: &str, kind: Kind, payment: &Payment) -> anyhow::Result<()> {
    use promoctl::portone_standin;
    let target = format!(
        "{}{}/payments/{}",
        url.trim_end_matches('/'),
        portone_standin::PATH,
        promo_shared::http::encode_path_segment(&payment.payment_id)
    );
    let body = portone_standin::payment_json(kind, payment);
    let resp = reqwest::Client::new().put(&target).json(&body).send().await.with_context(|| format!("PUT {target}"))?;
    match resp.status().as_u16() {
        200..=299 => Ok(()),
        404 | 405 => {
            eprintln!(
                "note: the platform at {url} has no PortOne stand-in (PROMO_PORTONE_API_SECRET set?): it looks the \
                 payment up at PortOne"
            );
            Ok(())
        }
        s => anyhow::bail!("the PortOne stand-in refused the payment ({s}): {}", resp.text().await.unwrap_or_default()),
    }
}

/// Signs `body` and POSTs it to the platform's webhook route; prints the answer.
async fn send(url: &str, sign: &SignArgs, body: Vec<u8>) -> anyhow::Result<()> {
    let body = with_stripe_id(sign, body)?;
    let target = format!("{}/v1/webhooks/{}", url.trim_end_matches('/'), sign.provider);
    let mut req = reqwest::Client::new().post(&target).header("content-type", "application/json");
    for (k, v) in headers(sign, &body)? {
        req = req.header(k, v);
    }
    let resp = req.body(body).send().await.with_context(|| format!("POST {target}"))?;
    let status = resp.status();
    println!("{status}");
    println!("{}", resp.text().await.unwrap_or_default());
    anyhow::ensure!(status.is_success(), "the platform answered {status}");
    Ok(())
}

/// A Stripe delivery's id is its event's `id`: `--id` sets it in the body.
fn with_stripe_id(sign: &SignArgs, body: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    match (&sign.id, sign.provider.as_str()) {
        (Some(id), "stripe") => {
            let mut v: serde_json::Value = serde_json::from_slice(&body)
                .context("--id with Stripe sets the event's `id`: the body must be JSON")?;
            if v.get("id").and_then(|x| x.as_str()) == Some(id) {
                return Ok(body);
            }
            v["id"] = serde_json::Value::String(id.clone());
            Ok(serde_json::to_vec(&v)?)
        }
        _ => Ok(body),
    }
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).context("reading the body from stdin")?;
    anyhow::ensure!(!body.is_empty(), "no body on stdin: pipe the webhook body in, e.g. < event.json");
    Ok(body)
}

/// The headers the provider would send with `body`.
/// Production verifies with its own secret: the development one would only be refused there.
fn production_secret(sign: &SignArgs, env: Env) -> anyhow::Result<()> {
    if env.is_remote() && sign.secret.is_none() && !config::webhook_secret_configured(&sign.provider) {
        anyhow::bail!(
            "--env prod: production verifies `{}` webhooks with its own secret, not the development one: set \
             PROMO_WEBHOOK_SECRET_{} (or pass --secret)",
            sign.provider,
            sign.provider.to_ascii_uppercase()
        );
    }
    Ok(())
}

fn headers(sign: &SignArgs, body: &[u8]) -> anyhow::Result<Vec<(&'static str, String)>> {
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
        let secret = stripe::Secret::parse(&secret).map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
        return Ok(vec![("stripe-signature", secret.sign(ts, body))]);
    }
    let secret = standard::Secret::parse(&secret).map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
    let id = sign.id.clone().unwrap_or_else(|| format!("msg_{}", uuid::Uuid::now_v7().simple()));
    Ok(vec![
        ("webhook-id", id.clone()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", secret.sign(&id, ts, body)),
    ])
}
