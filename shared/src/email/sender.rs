//! The sender: takes one fan-out job (up to 50 recipients of a campaign) and sends it in one
//! bulk call, never to anyone twice. The same handler runs in the sender Lambda (SQS, Amazon
//! MQ) and as `promoctl dev`'s consumer.
//!
//! Per job: the send's state decides first (paused → later, cancelled → every recipient
//! SKIPPED); then chunk by chunk — the whole job in one bulk call, smaller ones under a slow
//! rate — each recipient of the chunk is checked against the suppression list and claimed
//! with a conditional write, right before the chunk's call; the call is let go by the rate
//! right before it is made; each entry's answer settles its recipient (SENT with the message
//! id, FAILED with the reason). Claiming chunk by chunk bounds what a crash leaves UNCERTAIN
//! to the chunk in hand; a deadline ([`Sender::handle_until`]) stops between chunks and
//! hands the rest back unclaimed.
//! Throttling and outages the provider certainly did not send are retried with backoff and
//! never counted as failures: claims not sent are given back before the job is retried. An
//! answer that may mean "sent" (a timeout after the request went out, an unreadable answer,
//! a 5xx: [`MailError::Ambiguous`]) settles its recipients UNCERTAIN, and they are never sent
//! again unless the marketer asks (`campaign resend --uncertain`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::domain::email::EmailSpec;
use crate::domain::ids::CampaignId;
use crate::email::delivery::{self as email_delivery, Claim};
use crate::email::items::delivery::{self as delivery_item, Status};
use crate::email::items::send::{self as send_item, SendState};
use crate::email::items::suppression;
use crate::email::send::{self as email_send, Job, Recipient};
use crate::email::unsubscribe::UnsubscribeKeys;
use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::mail::{BulkEntry, BulkMailer, MAX_BULK, MailError, SendRate};
use crate::ports::queue::{Delivery, Queue, QueueError};
use crate::ports::store::{Store, StoreError, Update};

/// The queue of fan-out jobs.
pub const EMAIL_JOBS_QUEUE: &str = "email";

/// Settles a job's delivery by what became of it: acked when done, held when paused, put
/// back at once when unfinished, given back with its delay when it should be tried again,
/// dead-lettered when it never can be.
pub async fn settle_delivery(
    queue: &dyn Queue,
    name: &str,
    delivery: &Delivery,
    outcome: &Outcome,
) -> Result<(), QueueError> {
    match outcome {
        Outcome::Done(_) => queue.ack(name, delivery).await,
        Outcome::Paused(after) => queue.defer(name, delivery, *after).await,
        Outcome::Unfinished(_) => queue.defer(name, delivery, Duration::ZERO).await,
        Outcome::Later(after, why) => {
            tracing::warn!(attempt = delivery.attempt, reason = %why, "fan-out job will be retried");
            queue.nack(name, delivery, *after).await
        }
        Outcome::Poison(why) => {
            tracing::error!(reason = %why, "fan-out job dead-lettered");
            queue.reject(name, delivery, why).await
        }
    }
}

/// How a sender sends.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// The unsubscribe endpoint every email links to, e.g. `https://shop.example/v1/unsubscribe`.
    pub unsubscribe_url: String,
    /// Store calls of one job at once (claims, suppression reads, settles).
    pub parallel: usize,
    /// Attempts of a throttled or failed bulk call before the job is handed back.
    pub attempts: u32,
    /// The first backoff; doubled per attempt, with jitter.
    pub backoff: Duration,
    /// When a paused job is tried again.
    pub paused_retry: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            unsubscribe_url: "http://127.0.0.1:8787/v1/unsubscribe".into(),
            parallel: 16,
            attempts: 6,
            backoff: Duration::from_millis(200),
            paused_retry: Duration::from_secs(5),
        }
    }
}

/// What became of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every recipient is settled (now or before).
    Done(Tally),
    /// The send is paused: hold the job (not a failed attempt) and look again after this long.
    Paused(Duration),
    /// Stopped before the deadline with recipients left, none of them claimed: put the job
    /// back at once, not as a failed attempt (its settled recipients are skipped when it
    /// comes back). The tally is what this run did.
    Unfinished(Tally),
    /// Try the whole job again after this long (throttled, provider or store down).
    Later(Duration, String),
    /// It can never succeed (malformed, unknown campaign, rejected by the provider as a
    /// whole): to the dead letters, nothing lost (no claim is held).
    Poison(String),
}

/// What one job did to its recipients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub sent: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Settled UNCERTAIN: the provider's answer may mean "sent"; not sent again on its own.
    pub uncertain: u64,
    /// Already claimed by an earlier delivery of the job (or another job): left alone.
    pub already: u64,
}

impl Tally {
    /// Adds another job's tally (an invocation's total).
    pub fn add(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.uncertain += other.uncertain;
        self.already += other.already;
    }
}

pub struct Sender {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn BulkMailer>,
    pub rate: Arc<dyn SendRate>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub keys: UnsubscribeKeys,
    pub config: SenderConfig,
}

impl Sender {
    /// Handles one job's body.
    pub async fn handle(&self, body: &[u8]) -> Outcome {
        self.handle_until(body, None).await
    }

    /// Handles one job's body, stopping before `deadline` (a Lambda's invocation deadline less
    /// a margin): no chunk is claimed and no bulk call made once it has come, and a wait for
    /// the rate or a backoff it would cut short gives its chunk's claims back. What is left
    /// goes back as [`Outcome::Unfinished`], with no claim held.
    pub async fn handle_until(&self, body: &[u8], deadline: Option<DateTime<Utc>>) -> Outcome {
        let job: Job = match serde_json::from_slice(body) {
            Ok(j) => j,
            Err(e) => return Outcome::Poison(format!("not a fan-out job: {e}")),
        };
        if job.recipients.is_empty() || job.recipients.len() > MAX_BULK {
            return Outcome::Poison(format!("a job carries 1..={MAX_BULK} recipients, not {}", job.recipients.len()));
        }
        match self.run(&job, deadline).await {
            Ok(o) => o,
            Err(e) if !e.is_retryable() => Outcome::Poison(format!("store: {e}")),
            Err(e) => Outcome::Later(self.config.backoff * 4, format!("store: {e}")),
        }
    }

    async fn run(&self, job: &Job, deadline: Option<DateTime<Utc>>) -> Result<Outcome, StoreError> {
        let id = &job.campaign_id;
        let (send, email, campaign_name) = match email_send::load(&*self.store, id).await {
            Ok(s) => s,
            Err(email_send::SendError::Store(e)) => return Err(e),
            Err(e) => return Ok(Outcome::Poison(e.to_string())),
        };
        match send.state {
            SendState::Paused => return Ok(Outcome::Paused(self.config.paused_retry)),
            SendState::Cancelled => return self.skip_all(job, "cancelled").await.map(Outcome::Done),
            SendState::Sending => {}
        }
        if let Some(wait) = email.send_window.as_ref().and_then(|w| w.wait(self.clock.now())) {
            // Outside the send window: held (not a failed attempt) until it opens, looking
            // again at least every 15 minutes (a pause or cancel meanwhile is seen then).
            return Ok(Outcome::Paused(wait.min(Duration::from_secs(900))));
        }
        let run = self.ids.new_id();
        let mut tally = Tally::default();
        let ctx = Ctx { id, email: &email, campaign_name: &campaign_name, template: &send.template };
        // One bulk call per chunk the rate allows at once (all of a job on a fast account).
        // Each chunk is claimed right before its call, never the whole job up front: a crash
        // strands (UNCERTAIN) at most the chunk in hand, and what was not claimed yet is sent
        // by the job's redelivery.
        let chunk = self.rate.max_batch().clamp(1, MAX_BULK);
        let mut todo: std::collections::VecDeque<Recipient> = job.recipients.iter().cloned().collect();
        while !todo.is_empty() {
            if self.past(deadline) {
                // Out of time before this chunk: nothing of the rest is claimed, the job goes
                // back whole (what is settled is skipped by its claims when it comes back).
                tracing::info!(campaign = %id, left = todo.len(), "the deadline is near: the rest of the job goes back");
                return self.finish(id, tally, Outcome::Unfinished).await;
            }
            let batch: Vec<Recipient> = todo.drain(..chunk.min(todo.len())).collect();
            let (mut pending, at) = self.claim_all(id, batch, &run, &mut tally).await?;
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let entries: Vec<BulkEntry> = pending.iter().map(|r| self.entry(&ctx, r)).collect();
                let tags = vec![campaign_tag(id)];
                // The rate right before the call, nothing in between: the moment the limit
                // counts is the moment the call goes. So the chunk is claimed before the wait
                // (claims are quick store writes; a wait for the rate may not be): the claims
                // held while waiting are this one chunk's, and a deadline reached while waiting
                // gives them back.
                if !self.acquire_before(pending.len() as u32, deadline).await {
                    self.release_all(id, &run, &at, &pending).await;
                    return self.finish(id, tally, Outcome::Unfinished).await;
                }
                let failure = match self.mailer.send_bulk(&email.from, ctx.template, &entries, &tags).await {
                    Ok(results) if results.len() == pending.len() => {
                        let mut again = Vec::new();
                        let mut settles = Vec::new();
                        for (r, result) in pending.into_iter().zip(results) {
                            match result {
                                Ok(message_id) => settles.push((r, Status::Sent, message_id)),
                                Err(MailError::Rejected(why)) => settles.push((r, Status::Failed, why)),
                                Err(MailError::Ambiguous(why)) => settles.push((r, Status::Uncertain, why)),
                                Err(MailError::Throttled(_) | MailError::Unavailable(_)) => again.push(r),
                            }
                        }
                        self.settle_all(id, &run, &at, settles, &mut tally).await?;
                        pending = again;
                        // Entries the provider keeps refusing for now: the job comes back later.
                        (!pending.is_empty() && attempt >= self.config.attempts)
                            .then(|| Outcome::Later(self.backoff(attempt), "entries throttled".into()))
                    }
                    Ok(results) => {
                        // An answer that does not match the request: the call was accepted and
                        // any of them may have been sent — uncertain, never sent again blindly.
                        tracing::error!(campaign = %id, asked = pending.len(), answered = results.len(), "bulk answer mismatch");
                        let why = format!("the provider answered {} results for {}", results.len(), pending.len());
                        self.settle_uncertain(id, &run, &at, std::mem::take(&mut pending), &why, &mut tally).await?;
                        None
                    }
                    Err(MailError::Ambiguous(why)) => {
                        // Maybe sent: settled UNCERTAIN at once (reported; the marketer decides).
                        tracing::error!(campaign = %id, recipients = pending.len(), %why, "bulk send answer ambiguous: recipients uncertain");
                        self.settle_uncertain(id, &run, &at, std::mem::take(&mut pending), &why, &mut tally).await?;
                        None
                    }
                    Err(MailError::Rejected(why)) => {
                        tracing::error!(campaign = %id, %why, "bulk send rejected as a whole");
                        Some(Outcome::Poison(format!("rejected: {why}")))
                    }
                    Err(e) => {
                        tracing::warn!(campaign = %id, attempt, error = %e, "bulk send throttled or failed; backing off");
                        (attempt >= self.config.attempts).then(|| Outcome::Later(self.backoff(attempt), e.to_string()))
                    }
                };
                if let Some(outcome) = failure {
                    // This chunk's rest goes back unsent; the chunks not claimed yet need nothing.
                    self.release_all(id, &run, &at, &pending).await;
                    return self.finish(id, tally, |_| outcome).await;
                }
                if !pending.is_empty() {
                    let pause = self.backoff(attempt);
                    // A backoff that would end past the deadline: this chunk's claims go back.
                    let wakes = chrono::Duration::from_std(pause).ok().map(|p| self.clock.now() + p);
                    if deadline.is_some_and(|d| wakes.is_none_or(|w| w >= d)) {
                        self.release_all(id, &run, &at, &pending).await;
                        return self.finish(id, tally, Outcome::Unfinished).await;
                    }
                    self.clock.sleep(pause).await;
                }
            }
        }
        self.finish(id, tally, Outcome::Done).await
    }

    /// Records what this run sent (the bounce and complaint rates are measured against it),
    /// then gives the outcome.
    async fn finish(
        &self,
        id: &CampaignId,
        tally: Tally,
        outcome: impl FnOnce(Tally) -> Outcome,
    ) -> Result<Outcome, StoreError> {
        if tally.sent > 0 {
            let updates = [Update::Add("sent".into(), tally.sent as i64)];
            self.store.update(&send_item::feedback_key(id), &updates, None).await?;
        }
        Ok(outcome(tally))
    }

    /// Whether `deadline` has come.
    fn past(&self, deadline: Option<DateTime<Utc>>) -> bool {
        deadline.is_some_and(|d| self.clock.now() >= d)
    }

    /// Waits for the rate to let `n` messages go; `false` when `deadline` comes first (the
    /// wait is given up: nothing was taken from the rate).
    async fn acquire_before(&self, n: u32, deadline: Option<DateTime<Utc>>) -> bool {
        let Some(deadline) = deadline else {
            self.rate.acquire(n).await;
            return true;
        };
        let left = (deadline - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return false;
        }
        let acquire = self.rate.acquire(n);
        let timeout = self.clock.sleep(left);
        futures::pin_mut!(acquire, timeout);
        matches!(futures::future::select(acquire, timeout).await, futures::future::Either::Left(_))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.backoff * 2u32.saturating_pow(attempt.saturating_sub(1).min(8));
        let jitter = self.ids.random_u64() % (base.as_millis() as u64 / 2 + 1);
        base + Duration::from_millis(jitter)
    }

    fn entry(&self, ctx: &Ctx<'_>, r: &Recipient) -> BulkEntry {
        recipient_entry(&self.keys, &self.config.unsubscribe_url, ctx, r, self.clock.now())
    }

    /// Claims each recipient of a chunk (one transaction per bucket with its tallies: a job
    /// is one bucket's); suppressed ones are claimed and settled SKIPPED. Returns the claimed
    /// ones to send and the claim time (their claim batch's).
    async fn claim_all(
        &self,
        id: &CampaignId,
        chunk: Vec<Recipient>,
        run: &str,
        tally: &mut Tally,
    ) -> Result<(Vec<Recipient>, String), StoreError> {
        let now = self.clock.now();
        let at = delivery_item::claimed_at(now);
        let emails: Vec<_> = chunk.iter().map(|r| r.email.clone()).collect();
        let reasons: Vec<Result<Option<&'static str>, StoreError>> = futures::stream::iter(emails)
            .map(|email| async move {
                let suppressed = self.store.get(&suppression::key(&email)).await?;
                Ok(suppressed.as_ref().map(|it| suppression::from_item(it).map_or("suppressed", |s| s.reason.as_str())))
            })
            .buffered(self.config.parallel.max(1))
            .collect()
            .await;
        let reasons: Vec<Option<&'static str>> = reasons.into_iter().collect::<Result<_, _>>()?;
        let users: Vec<_> = chunk.iter().map(|r| r.user_id.clone()).collect();
        let claims = email_delivery::claim_many(&*self.store, id, &users, run, now).await?;
        let mut out = Vec::new();
        let mut skips = Vec::new();
        for ((r, claim), reason) in chunk.into_iter().zip(claims).zip(reasons) {
            match (claim, reason) {
                (Claim::Taken(_), _) => tally.already += 1,
                (Claim::Claimed, Some(reason)) => skips.push((r, Status::Skipped, reason.to_string())),
                (Claim::Claimed, None) => out.push(r),
            }
        }
        if let Err(e) = self.settle_all(id, run, &at, skips.clone(), tally).await {
            // Give back what this run claimed, so the retried job finds them free.
            let held: Vec<Recipient> = out.into_iter().chain(skips.into_iter().map(|(r, _, _)| r)).collect();
            self.release_all(id, run, &at, &held).await;
            return Err(e);
        }
        Ok((out, at))
    }

    async fn settle_all(
        &self,
        id: &CampaignId,
        run: &str,
        at: &str,
        settles: Vec<(Recipient, Status, String)>,
        tally: &mut Tally,
    ) -> Result<(), StoreError> {
        if settles.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let moves: Vec<_> = settles.into_iter().map(|(r, status, detail)| (r.user_id, status, detail)).collect();
        email_delivery::settle_many(&*self.store, id, run, at, &moves, now).await?;
        for (_, status, _) in &moves {
            match status {
                Status::Sent => tally.sent += 1,
                Status::Failed => tally.failed += 1,
                Status::Uncertain => tally.uncertain += 1,
                _ => tally.skipped += 1,
            }
        }
        Ok(())
    }

    /// Settles recipients whose send may have gone out UNCERTAIN.
    async fn settle_uncertain(
        &self,
        id: &CampaignId,
        run: &str,
        at: &str,
        recipients: Vec<Recipient>,
        why: &str,
        tally: &mut Tally,
    ) -> Result<(), StoreError> {
        let settles = recipients.into_iter().map(|r| (r, Status::Uncertain, why.to_string())).collect();
        self.settle_all(id, run, at, settles, tally).await
    }

    /// Settles every recipient SKIPPED (a cancelled send).
    async fn skip_all(&self, job: &Job, why: &str) -> Result<Tally, StoreError> {
        let run = self.ids.new_id();
        let mut tally = Tally::default();
        let now = self.clock.now();
        let at = delivery_item::claimed_at(now);
        let users: Vec<_> = job.recipients.iter().map(|r| r.user_id.clone()).collect();
        let claims = email_delivery::claim_many(&*self.store, &job.campaign_id, &users, &run, now).await?;
        let mut skips = Vec::new();
        for (r, claim) in job.recipients.iter().zip(claims) {
            match claim {
                Claim::Claimed => skips.push((r.clone(), Status::Skipped, why.to_string())),
                Claim::Taken(_) => tally.already += 1,
            }
        }
        self.settle_all(&job.campaign_id, &run, &at, skips, &mut tally).await?;
        Ok(tally)
    }

    async fn release_all(&self, id: &CampaignId, run: &str, at: &str, recipients: &[Recipient]) {
        if recipients.is_empty() {
            return;
        }
        let users: Vec<_> = recipients.iter().map(|r| r.user_id.clone()).collect();
        if let Err(e) = email_delivery::release_many(&*self.store, id, run, at, &users).await {
            // The claims stay: they turn UNCERTAIN after the lease, never sent silently.
            tracing::error!(campaign = %id, recipients = users.len(), error = %e, "could not give claims back");
        }
    }
}

/// What every entry of a campaign's send shares: the campaign, its email and the stored
/// template's name.
pub struct Ctx<'a> {
    pub id: &'a CampaignId,
    pub email: &'a EmailSpec,
    pub campaign_name: &'a str,
    pub template: &'a str,
}

/// The bulk entry of one recipient as the sender sends it: their template data (the
/// declared attributes with their defaults, and the built-in variables) and their one-click
/// unsubscribe link signed at `now`. The marketer's preview and test send build it alike.
pub fn recipient_entry(
    keys: &UnsubscribeKeys,
    unsubscribe_url: &str,
    ctx: &Ctx<'_>,
    r: &Recipient,
    now: chrono::DateTime<chrono::Utc>,
) -> BulkEntry {
    let token = keys.sign(ctx.id, &r.user_id, now);
    let url = format!("{unsubscribe_url}?t={token}");
    let mut data = r.data.clone();
    data.insert("email".into(), r.email.expose().to_string());
    data.insert("user_id".into(), r.user_id.to_string());
    data.insert("campaign_name".into(), ctx.campaign_name.to_string());
    data.insert("unsubscribe_url".into(), url.clone());
    for name in ctx.email.attributes.keys() {
        data.entry(name.clone()).or_default();
    }
    BulkEntry {
        to: r.email.clone(),
        data,
        headers: vec![
            ("List-Unsubscribe".into(), format!("<{url}>")),
            ("List-Unsubscribe-Post".into(), "List-Unsubscribe=One-Click".into()),
        ],
    }
}

/// The message tag every campaign email carries, which brings its bounces and complaints
/// back to the campaign.
pub fn campaign_tag(id: &CampaignId) -> (String, String) {
    ("campaign".to_string(), tag_value(id))
}

/// A campaign id as an SES message tag value (letters, digits, `_`, `-`, `.`, `@`).
fn tag_value(id: &CampaignId) -> String {
    id.as_str().chars().map(|c| if c == ':' { '_' } else { c }).collect()
}
