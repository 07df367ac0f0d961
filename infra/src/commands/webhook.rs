//! `promoctl webhook sign|send`: a body from stdin, signed as a provider would sign it.

use anyhow::Context;
use clap::{Args, Subcommand};
use promo_shared::app::webhooks::{standard, stripe};
use promo_shared::ports::clock::Clock;
use promoctl::config;
use promoctl::embedded::SystemClock;

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
        /// Base URL of the platform.
        #[arg(long, default_value = "http://127.0.0.1:8787")]
        url: String,
    },
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
    /// The delivery id (default: a new unique id).
    #[arg(long)]
    id: Option<String>,
    /// Epoch seconds (default: now).
    #[arg(long)]
    timestamp: Option<i64>,
}

impl WebhookCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            WebhookCommand::Sign { sign } => {
                let body = read_stdin()?;
                for (k, v) in headers(&sign, &body)? {
                    println!("{k}: {v}");
                }
                Ok(())
            }
            WebhookCommand::Send { sign, url } => {
                let body = read_stdin()?;
                let target = format!("{}/v1/webhooks/{}", url.trim_end_matches('/'), sign.provider);
                let mut req = reqwest::Client::new().post(&target).header("content-type", "application/json");
                for (k, v) in headers(&sign, &body)? {
                    req = req.header(k, v);
                }
                let resp = req.body(body).send().await.with_context(|| format!("POST {target}"))?;
                let status = resp.status();
                println!("{status}");
                println!("{}", resp.text().await.unwrap_or_default());
                anyhow::ensure!(status.is_success(), "the platform answered {status}");
                Ok(())
            }
        }
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
