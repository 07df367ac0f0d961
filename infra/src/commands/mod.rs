//! promoctl's commands: one module per command, each with its arguments (clap) and its
//! `run`. Shared arguments and output helpers live here.

mod audience;
mod campaign;
mod coupons;
mod dev;
mod dlq;
mod env;
mod event;
mod mileage;
mod products;
mod quote;
mod token;
mod webhook;

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use promoctl::config::DEFAULT_DATA_DIR;
use promoctl::target::{Env, Target};

#[derive(Parser)]
#[command(
    name = "promoctl",
    version,
    about = "Run the promotions platform locally and drive its campaigns.",
    after_help = "Exit codes: 0 success; 1 failure (an invalid file, a refused change, a store or network error); \
                  2 wrong usage."
)]
pub struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in one process on embedded adapters (no services needed).
    Dev(dev::Dev),
    /// The audience of campaign email: import it from CSV, count it.
    #[command(subcommand)]
    Audience(audience::AudienceCommand),
    /// The deployed stages promoctl knows: add one from its CloudFormation stack's outputs.
    #[command(name = "env", subcommand)]
    Stages(env::EnvCommand),
    /// Validate, deploy and list campaigns.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Limited events: list them, show one, cancel one.
    #[command(subcommand)]
    Event(event::EventCommand),
    /// The local platform's dead letters: list them, move them back to their queue.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Shoppers' coupons.
    #[command(subcommand)]
    Coupons(coupons::CouponsCommand),
    /// Sign and send webhooks as a payment provider would (to test an integration).
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Publish the shop's products for max-benefit price reads.
    #[command(subcommand)]
    Products(products::ProductsCommand),
    /// Shoppers' mileage.
    #[command(subcommand)]
    Mileage(mileage::MileageCommand),
    /// Price a product or a cart at its best: reads the quote request JSON (docs/marketers/pricing.md "The quote
    /// format") on stdin, prints the answer JSON on stdout. Exit 1 with the problems on stderr
    /// for an invalid request.
    Quote(quote::Quote),
    /// Print a shopper bearer token (HS256, signed with PROMO_SHOPPER_JWT_SECRET or the
    /// development secret of `promoctl dev`), for `Authorization: Bearer <token>`.
    Token(token::Token),
    /// Print a shell completion script: `promoctl completions bash >
    /// ~/.local/share/bash-completion/completions/promoctl` (zsh: into a directory of
    /// `$fpath` as `_promoctl`; fish: `~/.config/fish/completions/promoctl.fish`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let t = &self.target;
        // A deployed stage's recorded profile backs the variables of every command below.
        promoctl::target::select_stage(t.env)?;
        match self.command {
            Command::Stages(c) => c.run().await,
            Command::Dev(c) => c.run(t).await,
            Command::Audience(c) => c.run(t).await,
            Command::Campaign(c) => c.run(t).await,
            Command::Coupons(c) => c.run(t).await,
            Command::Dlq(c) => c.run(t).await,
            Command::Event(c) => c.run(t).await,
            Command::Webhook(c) => c.run(t.env).await,
            Command::Products(c) => c.run(t).await,
            Command::Mileage(c) => c.run(t).await,
            Command::Quote(c) => c.run(),
            Command::Token(c) => c.run(),
            Command::Completions { shell } => {
                clap_complete::generate(shell, &mut command(), "promoctl", &mut std::io::stdout());
                Ok(())
            }
        }
    }
}

/// The commands that have no target (`--env` and `--data-dir` would do nothing there), and
/// those that choose a platform but keep nothing in a data directory: there the flags are not
/// shown, and given on the command line they are a usage error.
const NO_TARGET: [&[&str]; 7] = [
    &["quote"],
    &["token"],
    &["completions"],
    &["webhook", "sign"],
    &["campaign", "validate"],
    &["env", "add"],
    &["env", "show"],
];
const NO_DATA_DIR: [&[&str]; 3] = [&["webhook"], &["webhook", "send"], &["webhook", "trigger"]];
const TARGET_ARGS: [&str; 2] = ["env", "data_dir"];

/// promoctl's command line: the derived one, with the global target flags hidden where a
/// command ignores them (a hidden copy on the command itself: clap propagates a global flag
/// only to subcommands that do not have their own).
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    let hidden: Vec<clap::Arg> = TARGET_ARGS
        .iter()
        .filter_map(|id| cmd.get_arguments().find(|a| a.get_id() == *id).cloned())
        .map(|a| a.hide(true))
        .collect();
    for path in NO_TARGET {
        cmd = add_in(cmd, path, &hidden);
    }
    for path in NO_DATA_DIR {
        cmd = add_in(cmd, path, &hidden[1..]);
    }
    cmd
}

fn add_in(cmd: clap::Command, path: &[&str], args: &[clap::Arg]) -> clap::Command {
    match path {
        [] => cmd.args(args.iter().cloned()),
        [first, rest @ ..] => cmd.mut_subcommand(*first, |sub| add_in(sub, rest, args)),
    }
}

/// Parses the command line (exit 2 on wrong usage, as clap does): a target flag given to a
/// command that ignores it is wrong usage too.
pub fn parse() -> Cli {
    let mut cmd = command();
    let matches = cmd.clone().get_matches();
    if let Some(msg) = ignored_flag(&matches) {
        cmd.error(clap::error::ErrorKind::ArgumentConflict, msg).exit();
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
}

/// The message for a target flag given on the command line to a command that ignores it.
fn ignored_flag(matches: &ArgMatches) -> Option<String> {
    let mut path = Vec::new();
    let mut leaf = matches;
    while let Some((name, sub)) = leaf.subcommand() {
        path.push(name);
        leaf = sub;
    }
    let ignored: &[&str] = if NO_TARGET.contains(&path.as_slice()) {
        &TARGET_ARGS
    } else if NO_DATA_DIR.contains(&path.as_slice()) {
        &TARGET_ARGS[1..]
    } else {
        &[]
    };
    let flag = ignored.iter().find(|a| leaf.value_source(a) == Some(ValueSource::CommandLine))?;
    Some(format!("`promoctl {}` does not use --{}", path.join(" "), flag.replace('_', "-")))
}

/// Which platform the commands work on: every command, reading or writing, uses the same.
#[derive(Args)]
pub struct TargetArgs {
    /// `local`: the local platform (`promoctl dev`'s store); `staging`, `prod`: that stage's
    /// DynamoDB table and Worker's KV namespace, as `promoctl env add` recorded them from its
    /// stack (PROMO_TABLE_NAME, PROMO_CF_* ... override).
    #[arg(long, global = true, env = "PROMO_ENV", value_enum, default_value_t = Env::Local)]
    env: Env,
    /// Directory of the local platform's store, queue and outbox.
    #[arg(long, global = true, env = "PROMO_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

impl TargetArgs {
    /// Opens the target; on production, says so on stderr before anything is done.
    async fn open(&self) -> anyhow::Result<Target> {
        let target = Target::open(self.env, &self.data_dir).await?;
        if target.env.is_remote() {
            eprintln!("promoctl → {}: {}", target.env.human().to_uppercase(), target.description);
        }
        Ok(target)
    }
}

/// What `--yes` means on a destructive command.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct Confirm {
    /// Do not ask for confirmation (production asks before this change; without a terminal it
    /// is refused unless --yes).
    #[arg(long)]
    yes: bool,
}

impl Confirm {
    /// Before `what` on `env` (described as `target`): nothing to ask locally; on production
    /// the change is named and the operator types `yes`, or passes `--yes`. Without a terminal
    /// to ask on, it is refused.
    pub fn check(self, env: Env, target: &str, what: &str) -> anyhow::Result<()> {
        use std::io::{BufRead, IsTerminal, Write};
        if !env.is_remote() || self.yes {
            return Ok(());
        }
        let stage = env.human();
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("refusing to {what} on {stage} ({target}) without confirmation: pass --yes");
        }
        eprint!("{what} on {} ({target})? type `yes` to go on: ", stage.to_uppercase());
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        anyhow::ensure!(answer.trim() == "yes", "not confirmed: nothing changed");
        Ok(())
    }
}

/// An error already reported on stdout (a `--json` answer): exit 1 without printing more.
#[derive(Debug, thiserror::Error)]
#[error("")]
pub struct Silent;

/// A time as tables print it.
fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
