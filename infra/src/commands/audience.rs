//! `promoctl audience import FILE.csv` and `audience count`: the shoppers campaign email
//! goes to, on the chosen target.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use promo_shared::domain::audience::Header;
use promo_shared::email::audience;
use serde_json::json;

use super::TargetArgs;

#[derive(Subcommand)]
pub enum AudienceCommand {
    /// Import (create or update, by user_id) members from a CSV file with a header row:
    /// `email`, `user_id`, `opted_in` (true/false) and any attribute columns. A malformed
    /// row is reported with its line and skipped; the others are imported.
    Import(Import),
    /// How many members the audience has, and how many opted in.
    Count(Count),
}

#[derive(Args)]
pub struct Import {
    file: PathBuf,
    /// Print `{"imported": {created, updated, unchanged}, "skipped": [{line, message}]}`.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct Count {
    #[arg(long)]
    json: bool,
}

impl AudienceCommand {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        match self {
            AudienceCommand::Import(c) => c.run(target).await,
            AudienceCommand::Count(c) => c.run(target).await,
        }
    }
}

impl Import {
    async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let file = self.file.display().to_string();
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_path(&self.file)
            .with_context(|| format!("cannot read {file}"))?;
        let columns: Vec<String> =
            reader.headers().with_context(|| format!("{file}:1: no header row"))?.iter().map(str::to_string).collect();
        let header =
            Header::parse(&columns).map_err(|problems| anyhow::anyhow!("{file}:1: {}", problems.join("; ")))?;
        let mut members = Vec::new();
        let mut skipped = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for record in reader.records() {
            let (line, result) = match record {
                Ok(r) => {
                    let line = r.position().map_or(0, |p| p.line());
                    let row: Vec<String> = r.iter().map(str::to_string).collect();
                    (line, header.member(&row))
                }
                Err(e) => (e.position().map_or(0, |p| p.line()), Err(e.to_string())),
            };
            match result {
                Ok(m) => {
                    // The same user twice in one file: the later row wins, as a re-import would.
                    if let Some(&at) = seen.get(&m.user_id) {
                        members[at] = m;
                    } else {
                        seen.insert(m.user_id.clone(), members.len());
                        members.push(m);
                    }
                }
                Err(message) => skipped.push((line, message)),
            }
        }
        let target = target.open().await?;
        let imported = audience::import(&*target.store, &members).await.context("importing the audience")?;
        if self.json {
            let skipped: Vec<_> =
                skipped.iter().map(|(line, message)| json!({"line": line, "message": message})).collect();
            println!("{}", serde_json::to_string_pretty(&json!({"imported": imported, "skipped": skipped}))?);
            return Ok(());
        }
        for (line, message) in &skipped {
            eprintln!("{file}:{line}: skipped: {message}");
        }
        println!(
            "imported {} members into the {}: {} new, {} updated, {} unchanged; {} rows skipped",
            members.len(),
            target.description,
            imported.created,
            imported.updated,
            imported.unchanged,
            skipped.len()
        );
        Ok(())
    }
}

impl Count {
    async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let target = target.open().await?;
        let all = audience::members(&*target.store).await?;
        let opted_in = all.iter().filter(|m| m.opted_in).count();
        if self.json {
            println!("{}", json!({"members": all.len(), "opted_in": opted_in}));
        } else {
            println!("{} members, {opted_in} opted in", all.len());
        }
        Ok(())
    }
}
