//! `promoctl dlq list|replay QUEUE`: dead letters — messages the consumers failed on too
//! often or could never handle — and moving them back to their queue once the cause is
//! fixed: the local platform's embedded queue, or with `--env prod` the stack's SQS
//! dead-letter queues (`promo_lambdas::sqs`).

use clap::{Args, Subcommand};
use promo_shared::email::sender::EMAIL_JOBS_QUEUE;
use promo_shared::payments::gateway::PAYMENT_EVENTS_QUEUE;
use promoctl::embedded::{QueueConfig, SqliteQueue};
use promoctl::target::Env;
use serde_json::json;

use super::TargetArgs;

#[derive(Subcommand)]
pub enum DlqCommand {
    /// List a queue's dead letters (default queue: the payment events).
    List(List),
    /// Move every dead letter of a queue back to it, for its consumers to try again.
    Replay(Replay),
}

/// The platform's queues: a dead letter is in one of these (any other name is a usage error).
fn queue_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new([PAYMENT_EVENTS_QUEUE, EMAIL_JOBS_QUEUE])
}

#[derive(Args)]
pub struct List {
    /// The queue: the payment events or the campaign email jobs.
    #[arg(default_value = PAYMENT_EVENTS_QUEUE, value_parser = queue_names())]
    queue: String,
    /// Print JSON: `[{"id", "attempts", "reason", "body"}]` (production: `[{"id", "receives", "body"}]`).
    #[arg(long)]
    json: bool,
    /// Production: list at most this many.
    #[arg(long, default_value_t = 100)]
    max: usize,
}

#[derive(Args)]
pub struct Replay {
    /// The queue: the payment events or the campaign email jobs.
    #[arg(default_value = PAYMENT_EVENTS_QUEUE, value_parser = queue_names())]
    queue: String,
    #[command(flatten)]
    confirm: crate::commands::Confirm,
}

impl DlqCommand {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        if target.env.is_remote() {
            return self.run_prod(target.env).await;
        }
        let path = target.data_dir.join("queue.db");
        anyhow::ensure!(path.exists(), "no local queue at {}: has `promoctl dev` run here?", path.display());
        let queue = SqliteQueue::open(&path, QueueConfig::default())?;
        match self {
            DlqCommand::List(l) => {
                let letters = queue.dead_letters(&l.queue).await?;
                if l.json {
                    let out: Vec<_> = letters
                        .iter()
                        .map(|d| {
                            json!({"id": d.id, "attempts": d.attempts, "reason": d.reason,
                                "body": String::from_utf8_lossy(&d.body)})
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&out)?);
                    return Ok(());
                }
                println!("{} dead letters in `{}`", letters.len(), l.queue);
                for d in &letters {
                    let body = String::from_utf8_lossy(&d.body);
                    let short: String = body.chars().take(100).collect();
                    println!("{:>6}  {} attempts  {}\n        {short}", d.id, d.attempts, d.reason);
                }
                Ok(())
            }
            DlqCommand::Replay(r) => {
                let n = queue.replay_dead_letters(&r.queue).await?;
                println!("moved {n} dead letters back to `{}`", r.queue);
                Ok(())
            }
        }
    }

    #[cfg(feature = "prod")]
    async fn run_prod(self, env: Env) -> anyhow::Result<()> {
        use promo_lambdas::sqs::DeadLetters;
        let name = match &self {
            DlqCommand::List(l) => l.queue.clone(),
            DlqCommand::Replay(r) => r.queue.clone(),
        };
        let q = promoctl::config::prod_queue(&name)?;
        let dead = DeadLetters::from_env(q.dlq_url, q.url, q.endpoint.as_deref()).await;
        match self {
            DlqCommand::List(l) => {
                let letters = dead.list(l.max).await?;
                if l.json {
                    println!("{}", serde_json::to_string_pretty(&letters)?);
                    return Ok(());
                }
                println!("{} dead letters in `{name}` (listing consumes nothing)", letters.len());
                for d in &letters {
                    let short: String = d.body.chars().take(100).collect();
                    println!("{}  {} receives\n        {short}", d.id, d.receives);
                }
                Ok(())
            }
            DlqCommand::Replay(r) => {
                let what = format!("move the dead letters of `{name}` back to their queue");
                r.confirm.check(env, &format!("SQS queue {name}"), &what)?;
                let n = dead.replay().await?;
                println!("moved {n} dead letters back to `{name}`");
                Ok(())
            }
        }
    }

    #[cfg(not(feature = "prod"))]
    async fn run_prod(self, _env: Env) -> anyhow::Result<()> {
        anyhow::bail!(
            "this promoctl was built without the production target; install it with `cargo install --locked --path infra \
             --features prod`"
        )
    }
}
