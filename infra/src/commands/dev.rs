//! `promoctl dev`: the whole platform in one process on embedded adapters.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use promo_shared::email::sender::{Sender, SenderConfig};
use promo_shared::pricing::catalog;
use promoctl::config::{self, DEFAULT_LISTEN};
use promoctl::portone_standin;
use promoctl::runtime::{self, Platform, RunOptions};

use promoctl::target::Env;

use super::TargetArgs;

#[derive(Args)]
pub struct Dev {
    /// Address to serve the edge routes on.
    #[arg(long, env = "PROMO_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
}

impl Dev {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        anyhow::ensure!(target.env == Env::Local, "promoctl dev runs the local platform only (--env local)");
        let data_dir = target.data_dir.clone();
        let (mut edge_config, dev_secret) = config::edge_config(true)?;
        // PortOne's payment API: the stand-in on this address unless a real one is configured.
        let portone = portone_standin_base(self.listen);
        if let Some(base) = &portone {
            edge_config.portone_api_base = base.clone();
            edge_config.portone_api_secret =
                Some(promo_shared::domain::secret::SecretString::new(portone_standin::DEV_PORTONE_API_SECRET));
        }
        let tick = config::tick()?;
        let consumers = config::consumers()?;
        let (_, dev_shopper_secret) = config::shopper_jwt_secret(true)?;
        let mut platform = Platform::open(&data_dir, edge_config)?;
        if let Some(url) = config::unsubscribe_url_on(self.listen) {
            link_unsubscribe_to(&mut platform, url);
        }
        let platform = Arc::new(platform);
        // Campaigns may have ended or been deployed by an older build since the last run.
        let s = &platform.prices;
        catalog::publish_price_book(&*platform.store, platform.clock.now(), s.rounding_unit, Some(s.mileage))
            .await
            .context("publishing the price book")?;
        let email_consumers = platform.email.consumers;
        let (demo_auth, _) = config::shopper_auth(true)?;
        let mut extra = promoctl::demo::router(platform.clone(), demo_auth);
        if portone.is_some() {
            extra = extra.nest(portone_standin::PATH, portone_standin::router(&data_dir.join("portone")));
        }
        let opts = RunOptions { tick, consumers, email_consumers };
        let running = runtime::start_with(platform, self.listen, opts, extra).await?;
        eprintln!("promoctl dev: serving http://{} (data in {})", running.addr, data_dir.display());
        eprintln!("  demo shop: http://{}/demo (open it in your browser)", running.addr);
        if dev_secret {
            eprintln!(
                "  webhooks: PROMO_WEBHOOK_SECRET_STANDARD is unset; using the development secret {}",
                config::DEV_WEBHOOK_SECRET
            );
        }
        if dev_shopper_secret {
            eprintln!(
                "  shoppers: PROMO_SHOPPER_JWT_SECRET is unset; tokens from `promoctl token --user U` are accepted"
            );
        }
        if std::env::var("PROMO_UNSUBSCRIBE_SECRETS").map_or(true, |v| v.trim().is_empty()) {
            eprintln!(
                "  email: PROMO_UNSUBSCRIBE_SECRETS is unset; unsubscribe links are signed with the development secret"
            );
        }
        eprintln!("  email: campaign email goes to {}/outbox/", data_dir.display());
        match &portone {
            Some(base) => eprintln!(
                "  payments: PortOne's API stands in at {base} (the payments of `promoctl webhook trigger --provider \
                 portone`); set PROMO_PORTONE_API_SECRET to use PortOne's"
            ),
            None if self.listen.port() == 0 => {
                eprintln!(
                    "  payments: no PortOne stand-in on port 0 (its address must be known first): --listen a port"
                )
            }
            None => {}
        }
        eprintln!("  press Ctrl-C to stop (queued work is kept and resumed on the next start)");
        shutdown_signal().await;
        eprintln!("promoctl dev: stopping...");
        running.shutdown().await?;
        eprintln!("promoctl dev: stopped");
        Ok(())
    }
}

/// The PortOne stand-in's base on `listen`, unless PortOne's API is configured
/// (`PROMO_PORTONE_API_SECRET` or `PROMO_PORTONE_API_BASE`) or the port is not known yet.
fn portone_standin_base(listen: SocketAddr) -> Option<String> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if set("PROMO_PORTONE_API_SECRET") || set("PROMO_PORTONE_API_BASE") || listen.port() == 0 {
        return None;
    }
    let host = if listen.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { listen.ip() };
    Some(format!("http://{}{}", SocketAddr::new(host, listen.port()), portone_standin::PATH))
}

/// Campaign email links to `url` (the address actually served) instead of the environment's
/// default.
fn link_unsubscribe_to(platform: &mut Platform, url: String) {
    let s = &platform.sender;
    platform.sender = Arc::new(Sender {
        store: s.store.clone(),
        mailer: s.mailer.clone(),
        rate: s.rate.clone(),
        clock: s.clock.clone(),
        ids: s.ids.clone(),
        keys: s.keys.clone(),
        config: SenderConfig { unsubscribe_url: url.clone(), ..s.config.clone() },
    });
    platform.email.unsubscribe_url = url;
}

/// Ctrl-C or SIGTERM.
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
