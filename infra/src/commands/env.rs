//! `promoctl env add <stage> --stack <stack>`: reads a deployed stage's CloudFormation stack
//! outputs (DescribeStacks) into the stages' profile file, so that `promoctl --env <stage>`
//! finds its table, queues and KV namespace by itself; `promoctl env show` prints the
//! profiles. See [`promoctl::stages`].

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use promoctl::stages;

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Record a deployed stage from its stack's outputs (CloudFormation DescribeStacks;
    /// credentials and region from the AWS SDK's usual chain, AWS_PROFILE;
    /// PROMO_CLOUDFORMATION_ENDPOINT for a stand-in). Run it again after a deploy that changed
    /// the outputs.
    Add(Add),
    /// Print the recorded stages (the profile file and each stage's variables).
    Show(Show),
}

#[derive(Args)]
pub struct Add {
    /// The stage: `staging` or `prod`.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(stages::STAGES))]
    stage: String,
    /// The stack's name (default: the one infra/deploy.sh and the runbook make, promo-<stage>).
    #[arg(long)]
    stack: Option<String>,
}

#[derive(Args)]
pub struct Show {
    /// Print JSON (stage → profile).
    #[arg(long)]
    json: bool,
}

impl EnvCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            EnvCommand::Add(a) => {
                let stack = a.stack.unwrap_or_else(|| stages::stack_name(&a.stage));
                let (region, outputs) = describe_stack(&stack).await?;
                let profile = stages::profile_from_outputs(&stack, region, outputs, chrono::Utc::now())?;
                let vars: Vec<String> = profile.vars.keys().cloned().collect();
                let path = stages::save(&a.stage, profile)?;
                println!("stage {} ← stack {stack}: {} (in {})", a.stage, vars.join(", "), path.display());
                if !vars.iter().any(|v| v == "PROMO_CF_KV_NAMESPACE_ID") {
                    println!(
                        "note: the stack names no KV namespace (deployed without CloudflareKvNamespaceId): set \
                         PROMO_CF_ACCOUNT_ID and PROMO_CF_KV_NAMESPACE_ID"
                    );
                }
                println!(
                    "next: `promoctl --env {} campaign list` (PROMO_CF_API_TOKEN, a secret, is never recorded: set it \
                     to publish to the Worker's KV)",
                    a.stage
                );
                Ok(())
            }
            EnvCommand::Show(s) => {
                let all = stages::load_all()?;
                if s.json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                    return Ok(());
                }
                println!("{}", stages::profile_path()?.display());
                if all.is_empty() {
                    println!("no stage recorded: `promoctl env add <stage> --stack <stack>`");
                }
                for (stage, p) in &all {
                    println!("{stage}: stack {} ({}), read {}", p.stack, p.region.as_deref().unwrap_or("?"), p.added);
                    for (name, value) in &p.vars {
                        println!("    {name}={value}");
                    }
                }
                Ok(())
            }
        }
    }
}

/// The stack's region (the SDK's) and its outputs, `OutputKey` → `OutputValue`.
#[cfg(feature = "prod")]
async fn describe_stack(stack: &str) -> anyhow::Result<(Option<String>, BTreeMap<String, String>)> {
    use anyhow::Context;
    let endpoint = std::env::var("PROMO_CLOUDFORMATION_ENDPOINT").ok().filter(|v| !v.trim().is_empty());
    let config = promo_lambdas::dynamodb::sdk_config(endpoint.as_deref()).await;
    let region = config.region().map(|r| r.to_string());
    let client = aws_sdk_cloudformation::Client::new(&config);
    let answer = client.describe_stacks().stack_name(stack).send().await.map_err(|e| {
        let e = aws_sdk_cloudformation::error::DisplayErrorContext(e);
        anyhow::anyhow!("cannot describe stack `{stack}` (region {}): {e}", region.as_deref().unwrap_or("unset"))
    })?;
    let found = answer.stacks().first().with_context(|| format!("no stack `{stack}`"))?;
    use aws_sdk_cloudformation::types::StackStatus;
    let status = found.stack_status().cloned();
    anyhow::ensure!(
        matches!(
            status,
            Some(StackStatus::CreateComplete | StackStatus::UpdateComplete | StackStatus::UpdateRollbackComplete)
        ),
        "stack `{stack}` is {}: wait until its deploy completes (CREATE_COMPLETE or UPDATE_COMPLETE)",
        status.map(|s| s.as_str().to_string()).unwrap_or_else(|| "of unknown status".into())
    );
    let outputs = found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    Ok((region, outputs))
}

#[cfg(not(feature = "prod"))]
async fn describe_stack(_stack: &str) -> anyhow::Result<(Option<String>, BTreeMap<String, String>)> {
    anyhow::bail!(
        "this promoctl was built without the production target (it reads stacks with the AWS SDK); install it with \
         `cargo install --locked --path infra --features prod`"
    )
}
