//! `promoctl dlq list|replay QUEUE`: the local platform's dead letters — messages its
//! consumers failed on too often or could never handle — and moving them back to their
//! queue once the cause is fixed. (On production the dead letters are SQS queues with
//! redrive: docs/operators/README.md "Dead letters".)

use clap::{Args, Subcommand};
use promo_shared::app::gateway::PAYMENT_EVENTS_QUEUE;
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

#[derive(Args)]
pub struct List {
    #[arg(default_value = PAYMENT_EVENTS_QUEUE)]
    queue: String,
    /// Print JSON: `[{"id", "attempts", "reason", "body"}]`.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct Replay {
    #[arg(default_value = PAYMENT_EVENTS_QUEUE)]
    queue: String,
}

impl DlqCommand {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        anyhow::ensure!(
            target.env == Env::Local,
            "production's dead letters are the stack's SQS dead-letter queues: move them back with `aws sqs \
             start-message-move-task` (docs/operators/README.md, \"Dead letters\")"
        );
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
}
