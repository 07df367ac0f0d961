//! `promoctl campaign trigger|status|cancel|resend`: a campaign's email to its audience.
//!
//! `trigger` starts the send (once: a second trigger, from here or another terminal, joins
//! the first), publishes the audience to the fan-out queue from the checkpoints, then follows
//! the progress until nothing is pending. Interrupted, it leaves the send running; triggering
//! again resumes publishing where the checkpoints say.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use promo_shared::domain::ids::CampaignId;
use promo_shared::email::items::send::SendState;
use promo_shared::email::send::{self as email_send, Progress, SendError};
use promo_shared::email::sender::EMAIL_JOBS_QUEUE;
use promo_shared::email::tally as email_tally;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::ids::IdGen;
use promoctl::config;
use promoctl::embedded::{OsIds, SystemClock};
use promoctl::target::Target;

use crate::commands::{Confirm, TargetArgs};

#[derive(Args)]
pub struct Trigger {
    /// The campaign's id (deployed, with an `[email]` section).
    id: String,
    /// Return once the audience is enqueued instead of following the send to its end.
    #[arg(long)]
    detach: bool,
    /// Print JSON lines of progress instead of a progress bar (the last one is the result).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct Status {
    /// The campaign's id.
    id: String,
    /// Keep printing the progress until the send is finished (or cancelled).
    #[arg(long)]
    watch: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Recount the deliveries from every record and rewrite the send's tallies (a repair, or a
    /// send triggered before tallies were kept; reads the whole send once).
    #[arg(long)]
    recount: bool,
}

#[derive(Args)]
pub struct Cancel {
    /// The campaign's id.
    id: String,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Args)]
pub struct Resend {
    /// The campaign's id.
    id: String,
    /// Send again to the UNCERTAIN recipients (claimed and never confirmed, or whose send got
    /// an ambiguous answer from the provider: they may have been mailed already). Required:
    /// it is the marketer's explicit choice.
    #[arg(long, required = true)]
    uncertain: bool,
}

fn explain(e: SendError) -> anyhow::Error {
    anyhow::anyhow!(e)
}

impl Trigger {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        let ports = target.email().await?;
        let by = config::operator();
        let t = email_send::trigger(&*target.store, &*ports.mailer, &SystemClock, &OsIds, &id, &by)
            .await
            .map_err(explain)?;
        if !self.json {
            if t.new {
                eprintln!("campaign `{id}`: email triggered by {by} (run {}); publishing the audience", t.send.run);
            } else {
                eprintln!(
                    "campaign `{id}`: email already triggered by {} at {}; joining it (nothing is sent twice)",
                    t.send.triggered_by,
                    t.send.triggered_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
        }
        let owner = OsIds.new_id();
        let follow = Follow::new(self.json);
        // Progress is shown while publishing too.
        let publish = email_send::publish(&*target.store, &*ports.queue, EMAIL_JOBS_QUEUE, &SystemClock, &owner, &id);
        tokio::pin!(publish);
        let published = loop {
            tokio::select! {
                r = &mut publish => break r.map_err(explain)?,
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    follow.show(&email_send::progress(&*target.store, &id, SystemClock.now()).await.map_err(explain)?);
                }
            }
        };
        tracing::debug!(?published, "publisher done");
        let p = email_send::progress(&*target.store, &id, SystemClock.now()).await.map_err(explain)?;
        follow.show(&p);
        if self.detach || p.finished || p.state != Some(SendState::Sending) {
            return follow.finish(p);
        }
        watch(&target, &id, &follow).await
    }
}

async fn watch(target: &Target, id: &CampaignId, follow: &Follow) -> anyhow::Result<()> {
    loop {
        let p = email_send::progress(&*target.store, id, SystemClock.now()).await.map_err(explain)?;
        follow.show(&p);
        if p.finished || p.state != Some(SendState::Sending) {
            return follow.finish(p);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Status {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        let mut p = email_send::progress(&*target.store, &id, SystemClock.now()).await.map_err(explain)?;
        if p.state.is_none() {
            anyhow::bail!("the email of campaign `{id}` has not been triggered on the {}", target.description);
        }
        if self.recount {
            email_tally::recount(&*target.store, &id, SystemClock.now())
                .await
                .with_context(|| format!("recounting the email of campaign `{id}`"))?;
            eprintln!("campaign `{id}`: deliveries recounted from the records; tallies rewritten");
            p = email_send::progress(&*target.store, &id, SystemClock.now()).await.map_err(explain)?;
        }
        if self.watch {
            let follow = Follow::new(self.json);
            return watch(&target, &id, &follow).await;
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&p)?);
        } else {
            print!("{}", table(&p));
        }
        Ok(())
    }
}

impl Cancel {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        let target = target.open().await?;
        self.confirm.check(target.env, &target.description, &format!("cancel the email of campaign `{id}`"))?;
        let by = config::operator();
        let reason = format!("cancelled by {by}");
        match email_send::control(&*target.store, &SystemClock, &id, SendState::Cancelled, Some(&reason))
            .await
            .map_err(explain)
            .with_context(|| format!("campaign `{id}`"))?
        {
            Some(_) => println!("campaign `{id}`: email cancelled by {by}; jobs still queued are skipped"),
            None => println!("no changes: the email of campaign `{id}` is already cancelled"),
        }
        Ok(())
    }
}

impl Resend {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(self.id)?;
        debug_assert!(self.uncertain);
        let target = target.open().await?;
        let ports = target.email().await?;
        let n = email_send::resend_uncertain(&*target.store, &*ports.queue, EMAIL_JOBS_QUEUE, &SystemClock, &id)
            .await
            .map_err(explain)?;
        println!("campaign `{id}`: {n} uncertain recipient(s) published again (they may receive the email twice)");
        Ok(())
    }
}

/// Pauses or resumes a campaign's email, if it has one; `Ok(None)` when it was not triggered.
pub async fn control(target: &Target, id: &CampaignId, to: SendState, by: &str) -> anyhow::Result<Option<String>> {
    let reason = format!("{} by {by}", if to == SendState::Paused { "paused" } else { "resumed" });
    let reason = (to == SendState::Paused).then_some(reason);
    match email_send::control(&*target.store, &SystemClock, id, to, reason.as_deref()).await {
        Ok(Some(_)) => Ok(Some(format!("email {}", if to == SendState::Paused { "paused" } else { "resumed" }))),
        Ok(None) => Ok(Some(format!("email already {}", if to == SendState::Paused { "paused" } else { "sending" }))),
        Err(SendError::NotTriggered(_)) => Ok(None),
        Err(e) => Err(explain(e)),
    }
}

fn table(p: &Progress) -> String {
    let state = p.state.map_or("NOT TRIGGERED", SendState::as_str);
    let mut out = format!(
        "state      {state}{}\naudience   {}{}\nenqueued   {} ({}/32 buckets published)\nsent       {}\nskipped    {}\nfailed     {}\nuncertain  {}\npending    {} ({} in flight)\nbounced    {}\ncomplained {}\n",
        if p.finished { " (finished)" } else { "" },
        p.audience,
        if p.buckets_published < 32 { " so far" } else { "" },
        p.enqueued,
        p.buckets_published,
        p.sent,
        p.skipped,
        p.failed,
        p.uncertain,
        p.pending,
        p.in_flight,
        p.bounced,
        p.complained,
    );
    if let Some(r) = &p.reason {
        out.push_str(&format!("reason     {r}\n"));
    }
    if let Some(line) = waiting(p) {
        out.push_str(&format!("waiting    {line}\n"));
    }
    if p.state == Some(SendState::Sending) && p.buckets_published < 32 && !p.publishing {
        out.push_str(&format!(
            "hint       publishing stopped before the whole audience was enqueued; `promoctl campaign trigger {}` resumes it\n",
            p.campaign_id
        ));
    }
    if p.uncertain > 0 {
        out.push_str(&format!(
            "hint       {} recipient(s) may or may not have been mailed; `promoctl campaign resend --uncertain {}` sends to them again\n",
            p.uncertain, p.campaign_id
        ));
    }
    out
}

/// What the queued jobs of an unfinished send wait for, and until when: a pause (until a
/// resume) or the send window (until it opens). Held jobs are not failed attempts: they are
/// never dead-lettered for waiting.
fn waiting(p: &Progress) -> Option<String> {
    if p.finished {
        return None;
    }
    match (p.state, p.window_opens_at) {
        (Some(SendState::Paused), _) => {
            Some(format!("paused: jobs are held until `promoctl campaign resume {} --email-only`", p.campaign_id))
        }
        (Some(SendState::Sending), Some(at)) => Some(format!(
            "for the send window: it opens at {}; jobs are held until then",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        _ => None,
    }
}

/// Shows progress: a bar on a terminal, JSON lines with `--json`.
struct Follow {
    json: bool,
    bar: Option<ProgressBar>,
    /// The previous reading (sent, when), for the rate since.
    last: std::cell::Cell<Option<(u64, Instant)>>,
}

impl Follow {
    fn new(json: bool) -> Follow {
        let bar = (!json).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} done · {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        Follow { json, bar, last: std::cell::Cell::new(None) }
    }

    fn show(&self, p: &Progress) {
        let done = p.sent + p.skipped + p.failed + p.uncertain;
        // Messages a second since the previous reading.
        let now = Instant::now();
        let rate = match self.last.replace(Some((p.sent, now))) {
            Some((sent, at)) => {
                let ms = u64::try_from(now.duration_since(at).as_millis()).unwrap_or(u64::MAX).max(1);
                p.sent.saturating_sub(sent).saturating_mul(1000) / ms
            }
            None => 0,
        };
        if self.json {
            let mut v = serde_json::to_value(p).unwrap_or_default();
            v["rate_per_second"] = serde_json::json!(rate);
            println!("{v}");
        } else if let Some(bar) = &self.bar {
            bar.set_length(p.audience);
            bar.set_position(done);
            bar.set_message(format!(
                "enqueued {} · sent {} · skipped {} · failed {} · uncertain {} · pending {} · {}/s",
                p.enqueued, p.sent, p.skipped, p.failed, p.uncertain, p.pending, rate
            ));
        }
    }

    fn finish(&self, p: Progress) -> anyhow::Result<()> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            print!("{}", table(&p));
            if !p.finished && p.state == Some(SendState::Sending) {
                println!("the send goes on: `promoctl campaign status {} --watch` follows it", p.campaign_id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (issue 25, item 5) `status` says what a held send waits for, and until when.
    #[test]
    fn status_says_what_a_held_send_waits_for() {
        let p = Progress {
            campaign_id: "bf".into(),
            state: Some(SendState::Sending),
            audience: 10,
            pending: 10,
            window_opens_at: Some("2026-12-07T00:00:00Z".parse().unwrap()),
            ..Progress::default()
        };
        let text = table(&p);
        assert!(
            text.contains("waiting    for the send window: it opens at 2026-12-07T00:00:00Z; jobs are held until then"),
            "{text}"
        );
        let paused = Progress { state: Some(SendState::Paused), window_opens_at: None, ..p.clone() };
        let text = table(&paused);
        assert!(
            text.contains("waiting    paused: jobs are held until `promoctl campaign resume bf --email-only`"),
            "{text}"
        );
        let sending = Progress { window_opens_at: None, ..p };
        assert!(!table(&sending).contains("waiting"), "a send going out waits for nothing");
    }
}
