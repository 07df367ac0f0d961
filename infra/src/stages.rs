//! The deployed stages, named in one place: the list template.yaml's `Stage` allows and
//! wrangler.toml's `[env.*]` repeat (a test holds the three together), the names derived from a
//! stage (its stack, its table), and the profile file `promoctl env add` writes from a stack's
//! outputs so that `promoctl --env <stage>` finds its table, queues and KV namespace without
//! hand-copied variables (the `PROMO_*` variables still override it).
//!
//! The profile file: `PROMO_STAGES_FILE`, else `$XDG_CONFIG_HOME/promoctl/stages.toml`, else
//! `~/.config/promoctl/stages.toml`. One table per stage:
//!
//! ```toml
//! [prod]
//! stack = "promo-prod"
//! region = "ap-northeast-2"
//! [prod.vars]
//! PROMO_TABLE_NAME = "promo-prod"
//! PROMO_PAYMENT_QUEUE_URL = "https://sqs.ap-northeast-2.amazonaws.com/123456789012/promo-prod-payment-events"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;
use serde::Serialize;

/// Every deployed stage, in the order they are deployed: SAM's `Stage` parameter
/// (`AllowedValues`), wrangler.toml's environments and `promoctl --env` (besides `local`).
pub const STAGES: [&str; 2] = ["staging", "prod"];

/// The stack `sam deploy` makes for `stage` (docs/operators/deploy.md, infra/deploy.sh).
pub fn stack_name(stage: &str) -> String {
    format!("promo-{stage}")
}

/// The stage's DynamoDB table (template.yaml: `promo-${Stage}`).
pub fn table_name(stage: &str) -> String {
    format!("promo-{stage}")
}

/// The stack outputs a profile records, and the variable each stands for. The first ones are
/// required (`env add` fails naming any that is missing); the Cloudflare ones exist when the
/// stack was deployed with the KV namespace's parameters.
pub const OUTPUTS: [(&str, &str, bool); 8] = [
    ("PromoTableName", "PROMO_TABLE_NAME", true),
    ("PaymentEventsQueueUrl", "PROMO_PAYMENT_QUEUE_URL", true),
    ("PaymentEventsDeadLetterQueueUrl", "PROMO_PAYMENT_DLQ_URL", true),
    ("EmailQueueUrl", "PROMO_EMAIL_QUEUE_URL", true),
    ("EmailDeadLetterQueueUrl", "PROMO_EMAIL_DLQ_URL", true),
    ("PublicUrl", "PROMO_PUBLIC_URL", true),
    ("CloudflareAccountId", "PROMO_CF_ACCOUNT_ID", false),
    ("CloudflareKvNamespaceId", "PROMO_CF_KV_NAMESPACE_ID", false),
];

/// One stage's profile: where it was read from and the variables it sets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The CloudFormation stack the outputs were read from.
    pub stack: String,
    /// The AWS region of the stack (the SDK's when `env add` ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// When `env add` read the outputs (RFC 3339).
    #[serde(default)]
    pub added: String,
    /// `PROMO_*` variable → value.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Every output of the stack, for reference (`promoctl env show`).
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
}

/// Why a profile could not be made from a stack's outputs.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("`{0}` is not a stage: the stages are {list}", list = STAGES.join(", "))]
    UnknownStage(String),
    #[error(
        "stack `{stack}` lacks the output(s) {missing} promoctl needs: is it this project's template.yaml, deployed \
         (`infra/deploy.sh --stage <stage>`)?"
    )]
    MissingOutputs { stack: String, missing: String },
}

/// Checks `stage` is one of [`STAGES`].
pub fn check_stage(stage: &str) -> Result<(), ProfileError> {
    if STAGES.contains(&stage) { Ok(()) } else { Err(ProfileError::UnknownStage(stage.to_string())) }
}

/// A stage's profile from its stack's outputs (`OutputKey` → `OutputValue`).
pub fn profile_from_outputs(
    stack: &str,
    region: Option<String>,
    outputs: BTreeMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Profile, ProfileError> {
    let missing: Vec<&str> = OUTPUTS
        .iter()
        .filter(|(key, _, required)| *required && outputs.get(*key).is_none_or(|v| v.trim().is_empty()))
        .map(|(key, _, _)| *key)
        .collect();
    if !missing.is_empty() {
        return Err(ProfileError::MissingOutputs { stack: stack.to_string(), missing: missing.join(", ") });
    }
    let vars = OUTPUTS
        .iter()
        .filter_map(|(key, var, _)| {
            outputs.get(*key).filter(|v| !v.trim().is_empty()).map(|v| (var.to_string(), v.clone()))
        })
        .collect();
    Ok(Profile {
        stack: stack.to_string(),
        region,
        added: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        vars,
        outputs,
    })
}

/// Where the profiles are kept (see the module's documentation).
pub fn profile_path() -> anyhow::Result<PathBuf> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(path) = set("PROMO_STAGES_FILE") {
        return Ok(PathBuf::from(path));
    }
    let config = match set("XDG_CONFIG_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(set("HOME").context("neither PROMO_STAGES_FILE, XDG_CONFIG_HOME nor HOME is set")?)
            .join(".config"),
    };
    Ok(config.join("promoctl").join("stages.toml"))
}

/// Every stage's profile in the file (none when there is no file yet).
pub fn load_all() -> anyhow::Result<BTreeMap<String, Profile>> {
    let path = profile_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{} is not a stages file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `stage`'s profile, if `promoctl env add` recorded one.
pub fn load(stage: &str) -> anyhow::Result<Option<Profile>> {
    Ok(load_all()?.remove(stage))
}

/// Records `profile` as `stage`'s (other stages kept); returns the file's path.
pub fn save(stage: &str, profile: Profile) -> anyhow::Result<PathBuf> {
    check_stage(stage)?;
    let path = profile_path()?;
    let mut all = load_all()?;
    all.insert(stage.to_string(), profile);
    let text = format!(
        "# promoctl's stages, written by `promoctl env add <stage> --stack <stack>` from the stack's outputs.\n# PROMO_* \
         variables in the environment override these.\n\n{}",
        toml::to_string(&all)?
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn outputs(keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter().map(|k| (k.to_string(), format!("value-of-{k}"))).collect()
    }

    #[test]
    fn a_profile_maps_the_outputs_to_the_variables_and_names_what_is_missing() {
        let all: Vec<&str> = OUTPUTS.iter().map(|(k, _, _)| *k).collect();
        let p = profile_from_outputs("promo-prod", None, outputs(&all), chrono::Utc::now()).unwrap();
        assert_eq!(p.vars["PROMO_TABLE_NAME"], "value-of-PromoTableName");
        assert_eq!(p.vars["PROMO_EMAIL_DLQ_URL"], "value-of-EmailDeadLetterQueueUrl");
        assert_eq!(p.vars.len(), OUTPUTS.len());
        let err = profile_from_outputs("promo-prod", None, outputs(&["PromoTableName"]), chrono::Utc::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("PaymentEventsQueueUrl") && err.contains("promo-prod"), "{err}");
        assert!(!err.contains("CloudflareAccountId"), "optional outputs are not required: {err}");
    }

    #[test]
    fn stages_are_checked() {
        assert!(check_stage("staging").is_ok() && check_stage("prod").is_ok());
        assert!(check_stage("production").unwrap_err().to_string().contains("staging, prod"));
    }
}
