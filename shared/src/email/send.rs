//! A campaign's email send, from the marketer's side: trigger it (once, however often and
//! from however many terminals it is triggered), publish its audience to the queue in jobs
//! of at most [`MAX_BULK`] recipients, pause, resume or cancel it, follow its progress, and
//! re-send the uncertain recipients when the marketer explicitly asks.
//!
//! The publisher works bucket by bucket (the audience's [`BUCKETS`] partitions), each under
//! a lease so two publishers never page the same bucket at once, and checkpoints a page only
//! after the queue confirmed its jobs. A publisher that dies between the confirm and the
//! checkpoint leaves jobs the next one publishes again: harmless, since a sender claims each
//! (campaign, recipient) before it sends (`email::delivery`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::campaigns;
use crate::domain::email::{EmailAddress, EmailSpec};
use crate::domain::ids::{CampaignId, UserId};
use crate::email::delivery as email_delivery;
use crate::email::items::audience::{self as audience_item, BUCKETS};
use crate::email::items::send::{self as item, Checkpoint, Send, SendState};
use crate::email::tally as email_tally;
use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::mail::{BulkMailer, MAX_BULK, MailError, Template};
use crate::ports::queue::{Queue, QueueError};
use crate::ports::store::{ItemExt, Store, StoreError, query_all};

/// Members read per page of a bucket.
pub const PAGE: usize = 1000;
/// How long a publisher holds a bucket without checkpointing before another may take it.
pub const LEASE_MS: i64 = 60_000;
/// Buckets paged at once by one publisher.
pub const PARALLEL_BUCKETS: usize = 8;

/// One job of the fan-out: up to [`MAX_BULK`] recipients of one bucket, sent in one bulk call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub campaign_id: CampaignId,
    pub bucket: u32,
    pub recipients: Vec<Recipient>,
}

/// A recipient as the publisher found them: address and template data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub user_id: UserId,
    pub email: EmailAddress,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Error)]
pub enum SendError {
    #[error("unknown campaign `{0}`")]
    UnknownCampaign(CampaignId),
    #[error("campaign `{0}` has no [email] section: add one and deploy it before triggering")]
    NoEmail(CampaignId),
    #[error("the segment of campaign `{0}` selects nobody in the audience: nothing to send")]
    EmptySegment(CampaignId),
    #[error("campaign `{0}` has ended: its email is no longer sent")]
    Ended(CampaignId),
    #[error("the email of campaign `{0}` is paused: `promoctl campaign resume {0}` first")]
    Paused(CampaignId),
    #[error("the email of campaign `{0}` was cancelled: it is not sent again")]
    Cancelled(CampaignId),
    #[error("the email of campaign `{0}` has not been triggered")]
    NotTriggered(CampaignId),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("mailer: {0}")]
    Mail(#[from] MailError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// The template name of a campaign version's email at the provider (letters, digits, `-`,
/// `_`; at most 64 characters).
pub fn template_name(campaign: &CampaignId, version: i64) -> String {
    let safe: String =
        campaign.as_str().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let name = format!("promo-{safe}-v{version}");
    if name.len() <= 64 {
        return name;
    }
    use sha2::Digest;
    let digest = hex::encode(&sha2::Sha256::digest(campaign.as_str().as_bytes())[..8]);
    format!("promo-{}-{digest}-v{version}", &safe[..20])
}

pub fn template(name: &str, spec: &EmailSpec) -> Template {
    Template { name: name.to_string(), subject: spec.subject.clone(), html: spec.html.clone(), text: spec.text.clone() }
}

/// What triggering gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Triggered {
    pub send: Send,
    pub email: EmailSpec,
    pub campaign_name: String,
    /// False when the send already existed (a second trigger): nothing new was started.
    pub new: bool,
}

/// The stored send of a campaign, if triggered.
pub async fn get<S: Store + ?Sized>(store: &S, campaign: &CampaignId) -> Result<Option<Send>, StoreError> {
    store.get(&item::state_key(campaign)).await?.as_ref().map(item::from_item).transpose()
}

fn existing(send: Send, email: EmailSpec, campaign_name: String) -> Result<Triggered, SendError> {
    match send.state {
        SendState::Sending => Ok(Triggered { send, email, campaign_name, new: false }),
        SendState::Paused => Err(SendError::Paused(send.campaign_id)),
        SendState::Cancelled => Err(SendError::Cancelled(send.campaign_id)),
    }
}

/// Starts a campaign's email: checks it has one that selects somebody, stores its template
/// at the provider, then creates the send with a conditional write — one trigger wins, any
/// other (later, or racing) finds the send and joins it.
pub async fn trigger<S: Store + ?Sized>(
    store: &S,
    mailer: &dyn BulkMailer,
    clock: &dyn Clock,
    ids: &dyn IdGen,
    id: &CampaignId,
    by: &str,
) -> Result<Triggered, SendError> {
    let deployed = campaigns::get_deployed(store, id).await?.ok_or_else(|| SendError::UnknownCampaign(id.clone()))?;
    let spec = deployed.campaign.spec();
    let email = spec.email.clone().ok_or_else(|| SendError::NoEmail(id.clone()))?;
    if let Some(send) = get(store, id).await? {
        return existing(send, email, spec.name.clone());
    }
    let now = clock.now();
    if spec.ends_at <= now {
        return Err(SendError::Ended(id.clone()));
    }
    if !any_selected(store, &email).await? {
        return Err(SendError::EmptySegment(id.clone()));
    }
    let name = template_name(id, deployed.version);
    mailer.put_template(&template(&name, &email)).await?;
    let send = Send {
        campaign_id: id.clone(),
        state: SendState::Sending,
        run: ids.new_id(),
        triggered_at: now,
        triggered_by: by.to_string(),
        version: deployed.version,
        template: name,
        reason: None,
        updated_at: now,
    };
    let mut stored = item::to_item(&send)?;
    let snapshot = serde_json::to_value(&email).map_err(|e| StoreError::Invalid(e.to_string()))?;
    stored.insert("email".into(), snapshot);
    stored.insert("campaign_name".into(), spec.name.clone().into());
    // Its deliveries are tallied as they move: status reads the tallies.
    stored.insert(email_tally::TALLIED.into(), true.into());
    match store.put(stored, Some(crate::ports::store::Cond::NotExists)).await {
        Ok(()) => {
            tracing::info!(campaign = %id, run = %send.run, by, "campaign email triggered");
            Ok(Triggered { send, email, campaign_name: spec.name.clone(), new: true })
        }
        Err(StoreError::ConditionFailed { .. }) => {
            let (send, email, name) = load(store, id).await?;
            existing(send, email, name)
        }
        Err(e) => Err(e.into()),
    }
}

/// The send with the email and campaign name it was triggered with (a later deploy does not
/// change an email being sent).
pub async fn load<S: Store + ?Sized>(store: &S, id: &CampaignId) -> Result<(Send, EmailSpec, String), SendError> {
    let it = store.get(&item::state_key(id)).await?.ok_or_else(|| SendError::NotTriggered(id.clone()))?;
    let send = item::from_item(&it)?;
    let email: EmailSpec = it
        .get("email")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("stored email of `{id}`: {e}")))?
        .ok_or_else(|| StoreError::Invalid(format!("the send of `{id}` has no email")))?;
    let name = it.str_attr("campaign_name").unwrap_or(id.as_str()).to_string();
    Ok((send, email, name))
}

/// Whether any member is selected (stops at the first).
async fn any_selected<S: Store + ?Sized>(store: &S, email: &EmailSpec) -> Result<bool, StoreError> {
    for b in 0..BUCKETS {
        let mut after = None;
        loop {
            let page = store.query(&audience_item::bucket_query(b).after(after).limit(PAGE)).await?;
            for it in &page.items {
                if audience_item::from_item(it).is_ok_and(|m| email.selects(&m)) {
                    return Ok(true);
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    Ok(false)
}

/// What a publisher did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Published {
    /// Recipients this publisher enqueued (and checkpointed).
    pub recipients: u64,
    pub jobs: u64,
    /// Buckets it left because another publisher held them or the send stopped.
    pub left: u32,
}

/// Publishes the campaign's audience to `queue_name`, bucket by bucket, from each bucket's
/// checkpoint; returns when every bucket it could take is done, or the send was paused or
/// cancelled. Safe to run from several processes at once (leases), and again after a crash.
pub async fn publish<S: Store + ?Sized>(
    store: &S,
    queue: &dyn Queue,
    queue_name: &str,
    clock: &dyn Clock,
    owner: &str,
    id: &CampaignId,
) -> Result<Published, SendError> {
    let (send, email, _) = load(store, id).await?;
    if send.state != SendState::Sending {
        return Ok(Published { left: BUCKETS, ..Published::default() });
    }
    let results: Vec<Result<Published, SendError>> = futures::stream::iter(0..BUCKETS)
        .map(|b| publish_bucket(store, queue, queue_name, clock, owner, id, &email, b))
        .buffer_unordered(PARALLEL_BUCKETS)
        .collect()
        .await;
    let mut total = Published::default();
    for r in results {
        let p = r?;
        total.recipients += p.recipients;
        total.jobs += p.jobs;
        total.left += p.left;
    }
    Ok(total)
}

#[allow(clippy::too_many_arguments)]
async fn publish_bucket<S: Store + ?Sized>(
    store: &S,
    queue: &dyn Queue,
    queue_name: &str,
    clock: &dyn Clock,
    owner: &str,
    id: &CampaignId,
    email: &EmailSpec,
    bucket: u32,
) -> Result<Published, SendError> {
    let mut out = Published::default();
    let now_ms = || clock.now().timestamp_millis();
    let (key, updates, cond) = item::lease(id, bucket, owner, now_ms(), now_ms() + LEASE_MS);
    let mut cursor = match store.update(&key, &updates, Some(cond)).await {
        Ok(it) => it.str_attr("cursor").map(str::to_string),
        Err(StoreError::ConditionFailed { found }) => {
            let done = found.as_ref().and_then(item::read_checkpoint).is_some_and(|c| c.done);
            out.left = u32::from(!done);
            return Ok(out);
        }
        Err(e) => return Err(e.into()),
    };
    loop {
        if get(store, id).await?.map(|s| s.state) != Some(SendState::Sending) {
            let (key, updates, cond) = item::release(id, bucket, owner);
            let _ = store.update(&key, &updates, Some(cond)).await;
            out.left = 1;
            return Ok(out);
        }
        let page = store.query(&audience_item::bucket_query(bucket).after(cursor.clone()).limit(PAGE)).await?;
        let last = page.items.last().and_then(|it| it.str_attr("sk")).map(str::to_string);
        let recipients: Vec<Recipient> = page
            .items
            .iter()
            .filter_map(|it| audience_item::from_item(it).ok())
            .filter(|m| email.selects(m))
            .map(|m| Recipient { data: email.template_data(&m), user_id: m.user_id, email: m.email })
            .collect();
        let n = recipients.len() as u64;
        let bodies: Vec<Vec<u8>> = recipients
            .chunks(MAX_BULK)
            .map(|chunk| {
                serde_json::to_vec(&Job { campaign_id: id.clone(), bucket, recipients: chunk.to_vec() })
                    .map_err(|e| QueueError::Invalid(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        if !bodies.is_empty() {
            queue.publish_batch(queue_name, &bodies).await?;
        }
        let done = page.next.is_none();
        let to = last.as_deref().or(cursor.as_deref());
        let (key, updates, cond) =
            item::advance(id, bucket, owner, cursor.as_deref(), to, n, done, now_ms() + LEASE_MS);
        match store.update(&key, &updates, Some(cond)).await {
            Ok(_) => {}
            // Another publisher took the bucket (this one stalled past its lease): it carries on.
            Err(StoreError::ConditionFailed { .. }) => {
                out.left = 1;
                return Ok(out);
            }
            Err(e) => return Err(e.into()),
        }
        out.recipients += n;
        out.jobs += bodies.len() as u64;
        if done {
            return Ok(out);
        }
        cursor = to.map(str::to_string);
    }
}

/// A send's progress. Always `audience = sent + skipped + failed + uncertain + pending`;
/// `in_flight` (claimed within the lease, not yet settled) is part of `pending`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub campaign_id: String,
    /// `None` before the trigger.
    pub state: Option<SendState>,
    pub reason: Option<String>,
    /// Recipients selected so far: final once every bucket is published.
    pub audience: u64,
    pub enqueued: u64,
    pub buckets_published: u32,
    pub sent: u64,
    pub skipped: u64,
    pub failed: u64,
    pub uncertain: u64,
    pub pending: u64,
    pub in_flight: u64,
    pub bounced: u64,
    pub complained: u64,
    /// Every bucket published and nothing pending.
    pub finished: bool,
    /// A publisher holds a bucket now. Sending, not every bucket published and nobody
    /// publishing: the publisher stopped (its terminal closed) — a trigger resumes it.
    pub publishing: bool,
    /// Sending, not finished, and outside the email's send window: when it opens. Until then
    /// the queued jobs wait (held, not failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_opens_at: Option<DateTime<Utc>>,
}

pub async fn progress<S: Store + ?Sized>(
    store: &S,
    id: &CampaignId,
    now: DateTime<Utc>,
) -> Result<Progress, SendError> {
    let mut p = Progress { campaign_id: id.to_string(), ..Progress::default() };
    // The send's partition and its tallies at once (one round trip's time, not two); the
    // tallies are used only if the send is tallied.
    let (items, tallies) =
        futures::future::try_join(query_all(store, item::send_query(id)), email_tally::counts(store, id, now)).await?;
    let mut window = None;
    let mut tallied = false;
    for it in &items {
        match it.str_attr("sk") {
            Some("STATE") => {
                tallied = email_tally::kept(it);
                let send = item::from_item(it)?;
                p.state = Some(send.state);
                p.reason = send.reason;
                window = it
                    .get("email")
                    .cloned()
                    .and_then(|e| serde_json::from_value::<EmailSpec>(e).ok())
                    .and_then(|e| e.send_window);
            }
            Some("FEEDBACK") => (_, p.bounced, p.complained) = item::read_feedback(it),
            _ => {
                if let Some(Checkpoint { enqueued, done, lease_until, .. }) = item::read_checkpoint(it) {
                    p.enqueued += enqueued;
                    p.buckets_published += u32::from(done);
                    p.publishing |= !done && lease_until > now.timestamp_millis();
                }
            }
        }
    }
    // Tallied: 32 small queries whatever the audience; else (a send triggered before the
    // tallies, until `campaign status --recount`) every record is read.
    let counts = if tallied { tallies } else { email_delivery::counts(store, id, now).await? };
    (p.sent, p.skipped, p.failed, p.in_flight, p.uncertain) =
        (counts["sent"], counts["skipped"], counts["failed"], counts["in_flight"], counts["uncertain"]);
    let recorded = p.sent + p.skipped + p.failed + p.in_flight + p.uncertain + counts["requeued"];
    // A page published again after a publisher crashed is counted once (at its checkpoint);
    // its recipients may be recorded before it is: the larger count is the audience so far.
    p.audience = p.enqueued.max(recorded);
    p.pending = p.audience - (p.sent + p.skipped + p.failed + p.uncertain);
    p.finished = p.state.is_some() && p.buckets_published == BUCKETS && p.pending == 0;
    if p.state == Some(SendState::Sending) && !p.finished {
        let wait = window.as_ref().and_then(|w| w.wait(now));
        p.window_opens_at = wait.and_then(|w| chrono::Duration::from_std(w).ok()).map(|w| now + w);
    }
    Ok(p)
}

/// Pauses, resumes or cancels a send (`to`); `Ok(None)` when it already was so.
pub async fn control<S: Store + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    id: &CampaignId,
    to: SendState,
    reason: Option<&str>,
) -> Result<Option<Send>, SendError> {
    let send = get(store, id).await?.ok_or_else(|| SendError::NotTriggered(id.clone()))?;
    if send.state == to {
        return Ok(None);
    }
    let expected: &[SendState] = match to {
        SendState::Paused => &[SendState::Sending],
        SendState::Sending => &[SendState::Paused],
        SendState::Cancelled => &[SendState::Sending, SendState::Paused],
    };
    if !expected.contains(&send.state) {
        return Err(match send.state {
            SendState::Cancelled => SendError::Cancelled(id.clone()),
            SendState::Paused => SendError::Paused(id.clone()),
            SendState::Sending => SendError::NotTriggered(id.clone()),
        });
    }
    let (key, updates, cond) = item::transition(id, expected, to, reason, clock.now());
    match store.update(&key, &updates, Some(cond)).await {
        Ok(it) => {
            tracing::info!(campaign = %id, state = to.as_str(), reason, "campaign email state changed");
            Ok(Some(item::from_item(&it)?))
        }
        // Someone else changed it meanwhile: report what it is now.
        Err(StoreError::ConditionFailed { .. }) => match get(store, id).await? {
            Some(s) if s.state == to => Ok(None),
            Some(s) if s.state == SendState::Cancelled => Err(SendError::Cancelled(id.clone())),
            _ => Err(SendError::NotTriggered(id.clone())),
        },
        Err(e) => Err(e.into()),
    }
}

/// The marketer's explicit choice to send again to the uncertain recipients (claimed, never
/// settled, past the lease): each claim is forgotten only if unchanged, and the recipient is
/// published again. Returns how many were re-published.
pub async fn resend_uncertain<S: Store + ?Sized>(
    store: &S,
    queue: &dyn Queue,
    queue_name: &str,
    clock: &dyn Clock,
    id: &CampaignId,
) -> Result<u64, SendError> {
    let (send, email, _) = load(store, id).await?;
    match send.state {
        SendState::Cancelled => return Err(SendError::Cancelled(id.clone())),
        SendState::Paused => return Err(SendError::Paused(id.clone())),
        SendState::Sending => {}
    }
    let mut by_bucket: BTreeMap<u32, Vec<Recipient>> = BTreeMap::new();
    for u in email_delivery::uncertain(store, id, clock.now()).await? {
        let Some(member) = store.get(&audience_item::key(&u.user)).await? else { continue };
        let member = audience_item::from_item(&member)?;
        if email_delivery::requeue(store, id, &u).await? {
            by_bucket.entry(audience_item::bucket(&u.user)).or_default().push(Recipient {
                data: email.template_data(&member),
                user_id: member.user_id,
                email: member.email,
            });
        }
    }
    let mut n = 0;
    for (bucket, recipients) in by_bucket {
        let bodies: Vec<Vec<u8>> = recipients
            .chunks(MAX_BULK)
            .map(|c| serde_json::to_vec(&Job { campaign_id: id.clone(), bucket, recipients: c.to_vec() }))
            .collect::<Result<_, _>>()
            .map_err(|e| QueueError::Invalid(e.to_string()))?;
        queue.publish_batch(queue_name, &bodies).await?;
        n += recipients.len() as u64;
    }
    tracing::info!(campaign = %id, recipients = n, "uncertain recipients published again");
    Ok(n)
}
