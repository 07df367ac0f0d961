//! Configuration of the local runtime: the one place that reads environment variables
//! (command-line flags override them; clap reads the flags' variables). On a deployed stage
//! (`--env staging|prod`) a variable that is not set falls back to the stage's profile, as
//! `promoctl env add` recorded it from the stack's outputs ([`crate::stages`]).
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `PROMO_LISTEN` | `127.0.0.1:8787` | address `promoctl dev` serves on |
//! | `PROMO_DATA_DIR` | `./.promo` | store, queue and outbox of the local runtime |
//! | `PROMO_TICK_SECONDS` | `60` | period of the schedule timer (EventBridge: every minute): TTL sweeps and the limited events' tick |
//! | `PROMO_CONSUMERS` | `2` | in-process issuer consumers of the payment event queue (0: accept only) |
//! | `PROMO_LOG` | `info` | log filter (`tracing` env-filter syntax) |
//! | `PROMO_LOG_FORMAT` | `text` | `text` or `json` |
//! | `PROMO_WEBHOOK_*` | see `promo_shared::config` | webhook secrets, tolerance, body limit |
//! | `PROMO_SHOPPER_JWT_SECRET` | `promoctl dev`/`token`: [`DEV_SHOPPER_JWT_SECRET`] | HS256 secret of shoppers' bearer tokens (≥ 32 bytes) |
//! | `PROMO_SHOPPER_JWT_ISSUER` / `_AUDIENCE` | `shop` / `promo-platform` | the `iss` and `aud` shopper tokens must carry (and `promoctl token` writes) |
//! | `PROMO_ENV` | `local` | the target of every command: `local`, `staging` or `prod` (`--env`) |
//! | `PROMO_STAGES_FILE` | `$XDG_CONFIG_HOME/promoctl/stages.toml` | the stages' profiles `promoctl env add` writes |
//! | `PROMO_TABLE_NAME` | (the stage's profile; required with `--env staging` or `prod`) | the stage's DynamoDB table (the stack's `PromoTableName` output) |
//! | `PROMO_DYNAMODB_ENDPOINT` | AWS | a DynamoDB stand-in instead of AWS (`--env prod`) |
//! | `PROMO_CF_ACCOUNT_ID`, `PROMO_CF_KV_NAMESPACE_ID`, `PROMO_CF_API_TOKEN` | unset (required with `--env prod`) | the Worker's KV namespace, written with `--env prod` only (ignored locally); `PROMO_CF_API_BASE` for a stand-in |
//! | `PROMO_OPERATOR` | `$USER` | who a deploy, pause, resume or end is recorded as |
//! | `PROMO_PAYMENT_QUEUE_URL`, `PROMO_PAYMENT_DLQ_URL`, `PROMO_EMAIL_QUEUE_URL`, `PROMO_EMAIL_DLQ_URL` | unset | `dlq` with `--env prod`: the stack's queues |
//! | `PROMO_SQS_ENDPOINT` | AWS | an SQS stand-in instead of AWS (`--env prod`) |
//! | `PROMO_PUBLIC_URL` | `http://<PROMO_LISTEN>` (`promoctl dev --listen`'s address) | the shop's public origin: campaign email links to `<it>/v1/unsubscribe` |
//! | `PROMO_UNSUBSCRIBE_SECRETS` | `promoctl dev`: [`DEV_UNSUBSCRIBE_SECRET`] | comma-separated secrets (≥ 32 bytes) of unsubscribe links; the first signs |
//! | `PROMO_EMAIL_RATE` | `0` (no limit) locally | campaign email messages per second (the SES account's `MaxSendRate` where `GetAccount` answers) |
//! | `PROMO_EMAIL_CONSUMERS` | `2` | in-process senders of campaign email jobs (0: queue only) |
//! | `PROMO_EVENTS_MAIL_FROM` | `events@shop.example` locally | the sender of the limited events' notices (a place came free, the waitlist closed) |
//! | `PROMO_SES_ENDPOINT` | AWS | an SES v2 stand-in instead of AWS (`--env prod` trigger: the stored template) |

use std::time::Duration;

use anyhow::Context;
use promo_shared::config::EdgeConfig;
use promo_shared::config::Provider;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DEFAULT_DATA_DIR: &str = ".promo";

/// The Standard Webhooks secret `promoctl dev` uses when none is configured, so the local
/// platform works out of the box. Never accepted by the deployed edge (it has no default).
pub const DEV_WEBHOOK_SECRET: &str = "whsec_cHJvbW8tZGV2LXNlY3JldC1kby1ub3QtdXNlLWluLXByb2Q=";

/// The shopper token secret `promoctl dev` and `promoctl token` use when none is configured.
/// Development only: anyone can mint tokens with it.
pub const DEV_SHOPPER_JWT_SECRET: &str = "promo-dev-shopper-jwt-secret-do-not-use-in-prod";

/// The unsubscribe link secret `promoctl dev` uses when none is configured. Development only.
pub const DEV_UNSUBSCRIBE_SECRET: &str = "promo-dev-unsubscribe-secret-do-not-use-in-prod";

/// The events' notices' sender when `PROMO_EVENTS_MAIL_FROM` is not set (the local outbox).
pub const DEV_EVENTS_MAIL_FROM: &str = "events@shop.example";

/// How campaign email is sent locally, and how its links are signed.
#[derive(Clone, Debug)]
pub struct EmailSettings {
    pub keys: promo_shared::email::unsubscribe::UnsubscribeKeys,
    /// `<PROMO_PUBLIC_URL>/v1/unsubscribe`.
    pub unsubscribe_url: String,
    /// Messages per second; `None`: no limit.
    pub rate: Option<f64>,
    pub consumers: usize,
    /// The sender of the limited events' notices.
    pub events_from: promo_shared::domain::email::EmailAddress,
}

/// The email settings (`PROMO_PUBLIC_URL`, `PROMO_UNSUBSCRIBE_SECRETS`, `PROMO_EMAIL_RATE`,
/// `PROMO_EMAIL_CONSUMERS`); with `dev_defaults` the development secret when none is set.
pub fn email_settings(dev_defaults: bool) -> anyhow::Result<EmailSettings> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let secrets: Vec<String> = match set("PROMO_UNSUBSCRIBE_SECRETS") {
        Some(v) => v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        None if dev_defaults => vec![DEV_UNSUBSCRIBE_SECRET.to_string()],
        None => anyhow::bail!("PROMO_UNSUBSCRIBE_SECRETS is not set"),
    };
    let refs: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
    let keys = promo_shared::email::unsubscribe::UnsubscribeKeys::new(&refs)
        .map_err(|e| anyhow::anyhow!("PROMO_UNSUBSCRIBE_SECRETS: {e}"))?;
    let public = public_url()
        .unwrap_or_else(|| format!("http://{}", set("PROMO_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into())));
    let rate = match set("PROMO_EMAIL_RATE") {
        None => None,
        Some(v) => {
            let r: f64 = v.trim().parse().with_context(|| format!("PROMO_EMAIL_RATE: `{v}` is not a number"))?;
            anyhow::ensure!(r.is_finite() && r >= 0.0, "PROMO_EMAIL_RATE must be 0 (no limit) or more");
            (r > 0.0).then_some(r)
        }
    };
    let consumers = match set("PROMO_EMAIL_CONSUMERS") {
        None => 2,
        Some(v) => v.trim().parse().with_context(|| format!("PROMO_EMAIL_CONSUMERS: `{v}` is not a whole number"))?,
    };
    let events_from = set("PROMO_EVENTS_MAIL_FROM").unwrap_or_else(|| DEV_EVENTS_MAIL_FROM.into());
    let events_from = promo_shared::domain::email::EmailAddress::parse(&events_from)
        .map_err(|e| anyhow::anyhow!("PROMO_EVENTS_MAIL_FROM: {e}"))?;
    Ok(EmailSettings { keys, unsubscribe_url: unsubscribe_url(&public), rate, consumers, events_from })
}

/// `PROMO_PUBLIC_URL`, when set.
pub fn public_url() -> Option<String> {
    env("PROMO_PUBLIC_URL").filter(|v| !v.trim().is_empty())
}

/// The unsubscribe route under the public origin `public`.
pub fn unsubscribe_url(public: &str) -> String {
    format!("{}/v1/unsubscribe", public.trim_end_matches('/'))
}

/// The unsubscribe links of a platform served on `listen` when `PROMO_PUBLIC_URL` is not set
/// (`promoctl dev --listen` overrides `PROMO_LISTEN`, so the links follow the flag).
pub fn unsubscribe_url_on(listen: std::net::SocketAddr) -> Option<String> {
    public_url().is_none().then(|| unsubscribe_url(&format!("http://{listen}")))
}

/// The recorded profile of the deployed stage this run works on (`--env staging|prod`).
static STAGE_VARS: std::sync::OnceLock<std::collections::BTreeMap<String, String>> = std::sync::OnceLock::new();

/// Makes `vars` (a stage's profile) the fallback of every variable read here; once per run.
pub fn use_stage_vars(vars: std::collections::BTreeMap<String, String>) {
    let _ = STAGE_VARS.set(vars);
}

/// A variable: the environment's when set and not blank, else the stage's profile's.
fn env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        set => STAGE_VARS.get().and_then(|vars| vars.get(name).cloned()).or(set.ok()),
    }
}

/// The edge's configuration from the environment. With `dev_defaults`, a provider without
/// secrets gets [`DEV_WEBHOOK_SECRET`].
pub fn edge_config(dev_defaults: bool) -> anyhow::Result<(EdgeConfig, bool)> {
    let standard = Provider::Standard.secret_var();
    let missing = env(&standard).is_none_or(|v| v.trim().is_empty());
    let use_dev = dev_defaults && missing;
    let cfg =
        EdgeConfig::from_lookup(
            |k| {
                if use_dev && k == standard { Some(DEV_WEBHOOK_SECRET.to_string()) } else { env(k) }
            },
        )?;
    Ok((cfg, use_dev))
}

/// The HS256 secret of shopper tokens (`PROMO_SHOPPER_JWT_SECRET`). With `dev_defaults`, an
/// unset or empty variable gives [`DEV_SHOPPER_JWT_SECRET`]; the flag says whether it did.
pub fn shopper_jwt_secret(dev_defaults: bool) -> anyhow::Result<(String, bool)> {
    match env("PROMO_SHOPPER_JWT_SECRET").filter(|v| !v.trim().is_empty()) {
        Some(v) => Ok((v, false)),
        None if dev_defaults => Ok((DEV_SHOPPER_JWT_SECRET.to_string(), true)),
        None => anyhow::bail!("PROMO_SHOPPER_JWT_SECRET is not set"),
    }
}

/// The shoppers' token verifier and minter: the secret of [`shopper_jwt_secret`] and the
/// issuer and audience tokens must name (`PROMO_SHOPPER_JWT_ISSUER`, `_AUDIENCE`). The flag
/// says whether the development secret is in use.
pub fn shopper_auth(dev_defaults: bool) -> anyhow::Result<(promo_lambdas::auth::ShopperAuth, bool)> {
    use promo_lambdas::auth::DEFAULT_AUDIENCE;
    use promo_lambdas::auth::DEFAULT_ISSUER;
    use promo_lambdas::auth::ShopperAuth;
    use promo_lambdas::auth::TokenScope;
    let (secret, dev) = shopper_jwt_secret(dev_defaults)?;
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let scope = TokenScope {
        issuer: set("PROMO_SHOPPER_JWT_ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.into()),
        audience: set("PROMO_SHOPPER_JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
    };
    Ok((ShopperAuth::scoped(secret.as_bytes(), scope)?, dev))
}

/// The secret `promoctl webhook sign|send` signs with for a provider: the first of
/// `PROMO_WEBHOOK_SECRET_<PROVIDER>`, else for `standard` the development secret.
/// Whether `PROMO_WEBHOOK_SECRET_<PROVIDER>` is set (no development fallback).
pub fn webhook_secret_configured(provider: &str) -> bool {
    env(&format!("PROMO_WEBHOOK_SECRET_{}", provider.to_ascii_uppercase())).is_some_and(|v| !v.trim().is_empty())
}

pub fn webhook_signing_secret(provider: &str) -> Option<String> {
    let var = format!("PROMO_WEBHOOK_SECRET_{}", provider.to_ascii_uppercase());
    env(&var)
        .and_then(|v| v.split_whitespace().next().map(str::to_string))
        .or_else(|| (provider == "standard").then(|| DEV_WEBHOOK_SECRET.to_string()))
}

pub fn tick() -> anyhow::Result<Duration> {
    match env("PROMO_TICK_SECONDS") {
        None => Ok(Duration::from_secs(60)),
        Some(v) => {
            let n: u64 =
                v.trim().parse().with_context(|| format!("PROMO_TICK_SECONDS: `{v}` is not a whole number"))?;
            anyhow::ensure!(n > 0, "PROMO_TICK_SECONDS must be at least 1");
            Ok(Duration::from_secs(n))
        }
    }
}

pub fn consumers() -> anyhow::Result<usize> {
    match env("PROMO_CONSUMERS") {
        None => Ok(2),
        Some(v) => v.trim().parse().with_context(|| format!("PROMO_CONSUMERS: `{v}` is not a whole number")),
    }
}

pub fn log_filter() -> String {
    env("PROMO_LOG").unwrap_or_else(|| "info".into())
}

pub fn log_json() -> bool {
    env("PROMO_LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json"))
}

fn whole(name: &str, default: i64, min: i64) -> anyhow::Result<i64> {
    match env(name) {
        None => Ok(default),
        Some(v) => {
            let n: i64 = v.trim().parse().with_context(|| format!("{name}: `{v}` is not a whole number"))?;
            anyhow::ensure!(n >= min, "{name} must be at least {min}");
            Ok(n)
        }
    }
}

/// Max-benefit price settings: the quotes' rounding unit (`PROMO_PRICE_ROUNDING_UNIT`,
/// default 1), the mileage policy (`PROMO_MILEAGE_POLICY` = `max_ratio_percent,min_use,unit`,
/// default `100,0,1`), and the public answers' cache (`PROMO_PRICE_CACHE_TTL_SECONDS` 60,
/// `PROMO_PRICE_CACHE_STALE_SECONDS` 300, `PROMO_PRICE_CACHE_ENTRIES` 10000).
pub struct PriceSettings {
    pub rounding_unit: i64,
    pub mileage: promo_shared::domain::price_book::MileagePolicy,
    pub policy: promo_shared::pricing::prices::CachePolicy,
    pub cache_entries: usize,
}

pub fn price_settings() -> anyhow::Result<PriceSettings> {
    let mileage = match env("PROMO_MILEAGE_POLICY") {
        None => promo_shared::domain::price_book::MileagePolicy { max_ratio_percent: 100, min_use: 0, unit: 1 },
        Some(v) => {
            let parts: Vec<i64> = v
                .split(',')
                .map(|p| p.trim().parse::<i64>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("PROMO_MILEAGE_POLICY: `{v}` is not max_ratio_percent,min_use,unit"))?;
            let [ratio, min_use, unit] = parts[..] else {
                anyhow::bail!("PROMO_MILEAGE_POLICY: `{v}` is not max_ratio_percent,min_use,unit")
            };
            anyhow::ensure!(
                (0..=100).contains(&ratio) && min_use >= 0 && unit >= 1,
                "PROMO_MILEAGE_POLICY: `{v}` is out of range"
            );
            promo_shared::domain::price_book::MileagePolicy { max_ratio_percent: ratio, min_use, unit }
        }
    };
    Ok(PriceSettings {
        rounding_unit: whole("PROMO_PRICE_ROUNDING_UNIT", 1, 1)?,
        mileage,
        policy: promo_shared::pricing::prices::CachePolicy {
            ttl: chrono::Duration::seconds(whole("PROMO_PRICE_CACHE_TTL_SECONDS", 60, 1)?),
            stale: chrono::Duration::seconds(whole("PROMO_PRICE_CACHE_STALE_SECONDS", 300, 0)?),
        },
        cache_entries: usize::try_from(whole("PROMO_PRICE_CACHE_ENTRIES", 10_000, 1)?).unwrap_or(10_000),
    })
}

/// The Worker's KV namespace, written by `campaign deploy|pause|resume|end` and `products
/// publish` with `--env prod` (only: the local target never reads this), from
/// `PROMO_CF_ACCOUNT_ID`, `PROMO_CF_KV_NAMESPACE_ID` and `PROMO_CF_API_TOKEN`
/// (`PROMO_CF_API_BASE`, default `https://api.cloudflare.com/client/v4`). A partial setting
/// is an error, not a silent skip.
pub fn edge_kv() -> anyhow::Result<Option<crate::edge_kv::EdgeKv>> {
    Ok(crate::edge_kv::EdgeKv::from_vars(env)?)
}

/// Whether any of the KV namespace's variables is set (a local command says it ignores them).
pub fn edge_kv_configured() -> bool {
    ["PROMO_CF_ACCOUNT_ID", "PROMO_CF_KV_NAMESPACE_ID", "PROMO_CF_API_TOKEN"]
        .iter()
        .any(|name| env(name).is_some_and(|v| !v.trim().is_empty()))
}

/// The production table `promoctl --env prod` writes (the Lambdas' own variables).
pub struct ProdStore {
    pub table: String,
    pub endpoint: Option<String>,
}

pub fn prod_store(stage: &str) -> anyhow::Result<ProdStore> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    Ok(ProdStore {
        table: var("PROMO_TABLE_NAME").with_context(|| {
            format!(
                "--env {stage} needs the stage's table: run `promoctl env add {stage} --stack {}` once (it reads the \
                 stack's outputs), or set PROMO_TABLE_NAME",
                crate::stages::stack_name(stage)
            )
        })?,
        endpoint: var("PROMO_DYNAMODB_ENDPOINT"),
    })
}

/// A production queue and its dead-letter queue (`dlq` with `--env prod`): the stack's
/// outputs, as `PROMO_PAYMENT_QUEUE_URL` / `PROMO_PAYMENT_DLQ_URL` (queue `payment-events`) or
/// `PROMO_EMAIL_QUEUE_URL` / `PROMO_EMAIL_DLQ_URL` (queue `email`); `PROMO_SQS_ENDPOINT` for a
/// stand-in.
pub struct ProdQueue {
    pub url: String,
    pub dlq_url: String,
    pub endpoint: Option<String>,
}

pub fn prod_queue(queue: &str) -> anyhow::Result<ProdQueue> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let prefix = match queue {
        "payment-events" => "PROMO_PAYMENT",
        "email" => "PROMO_EMAIL",
        other => anyhow::bail!("no queue `{other}`: the queues are `payment-events` and `email`"),
    };
    let need = |suffix: &str| {
        let name = format!("{prefix}_{suffix}");
        var(&name).with_context(|| {
            format!(
                "dlq {queue} on a deployed stage needs {name}: `promoctl env add <stage>` records it from the stack"
            )
        })
    };
    Ok(ProdQueue { url: need("QUEUE_URL")?, dlq_url: need("DLQ_URL")?, endpoint: var("PROMO_SQS_ENDPOINT") })
}

/// An SES v2 stand-in instead of AWS (`PROMO_SES_ENDPOINT`).
pub fn ses_endpoint() -> Option<String> {
    env("PROMO_SES_ENDPOINT").filter(|v| !v.trim().is_empty())
}

/// Who changes are recorded as: `PROMO_OPERATOR`, else the login name.
pub fn operator() -> String {
    ["PROMO_OPERATOR", "USER", "USERNAME"]
        .iter()
        .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}
