//! The events' scheduler: one tick finds the work that is due in the due index
//! (`events::items`, [`DUE_SHARDS`] partitions, earliest first) and does it — opens and
//! closes events, expires holds and promotes the next in line, closes waitlists, mails the
//! shoppers concerned. The same tick runs on EventBridge's one-minute schedule (the
//! `scheduler` Lambda) and on `promoctl dev`'s timer.
//!
//! Every action is a conditioned write (see `events`), so a tick run twice, or eight at
//! once, does nothing more than one; a tick after a day of downtime catches up in order of
//! due time within each shard, the shards worked at once. A tick works in pages and stops at its budget (items or a deadline, such as
//! the Lambda's remaining time less a margin), leaving the rest in the index for the next
//! tick: never cut short by a timeout midway through an item. Notices are sent under a
//! lease on their due entry, so concurrent ticks mail a shopper once.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::email::EmailAddress;
use crate::domain::ids::{ReservationId, UserId};
use crate::domain::limited_event::ReservationStatus;
use crate::email::items::{audience, suppression};
use crate::events::items::{DUE_SHARDS, Due, DueEntry, Notice, due_shard};
use crate::events::{EventError, Events, Released, Why};
use crate::ports::mail::{Mailer, OutgoingEmail};
use crate::ports::store::{Cond, Key, Store, StoreError, Update};

/// Items one page of a due shard reads.
const PAGE: usize = 100;
/// How long a tick holds a notice it is sending before another may try.
const NOTICE_LEASE_SECONDS: i64 = 60;

/// How much one tick may do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Due entries (and waitlist entries closed) at most.
    pub items: usize,
    /// Stop starting new items at this instant.
    pub deadline: Option<DateTime<Utc>>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { items: 10_000, deadline: None }
    }
}

/// Where the events' notices come from and go through.
pub struct Notices<'a> {
    pub mailer: &'a dyn Mailer,
    pub from: EmailAddress,
}

/// What a tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    pub opened: usize,
    pub ended: usize,
    pub expired: usize,
    pub promoted: usize,
    pub waitlist_closed: usize,
    pub notified: usize,
    /// Notices not mailed: the address is on the suppression list (unsubscribed, bounced,
    /// complained).
    pub suppressed: usize,
    /// Due entries read and settled (done, or found to be stale).
    pub settled: usize,
    /// Due work was left for the next tick (the budget ran out, or a notice waits to be retried).
    pub due_left: bool,
}

impl TickReport {
    /// Adds what another tick (or shard) did.
    pub fn merge(&mut self, other: &TickReport) {
        self.opened += other.opened;
        self.ended += other.ended;
        self.expired += other.expired;
        self.promoted += other.promoted;
        self.waitlist_closed += other.waitlist_closed;
        self.notified += other.notified;
        self.suppressed += other.suppressed;
        self.settled += other.settled;
        self.due_left |= other.due_left;
    }
}

/// Runs one tick at the clock's now: the [`DUE_SHARDS`] shards of the due index at once,
/// each in order of due time, sharing the budget.
pub async fn tick<S: Store + ?Sized>(
    events: &Events<'_, S>,
    notices: Option<&Notices<'_>>,
    budget: Budget,
) -> Result<TickReport, EventError> {
    let left = AtomicUsize::new(budget.items);
    let now = events.clock.now().timestamp();
    let shards = (0..DUE_SHARDS).map(|shard| tick_shard(events, notices, budget.deadline, &left, now, shard));
    let mut report = TickReport::default();
    for r in futures::future::join_all(shards).await {
        report.merge(&r?);
    }
    Ok(report)
}

/// Takes one item of the budget; `false` when it is spent.
fn take(left: &AtomicUsize, n: usize) -> bool {
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(n)).is_ok()
}

async fn tick_shard<S: Store + ?Sized>(
    events: &Events<'_, S>,
    notices: Option<&Notices<'_>>,
    deadline: Option<DateTime<Utc>>,
    left: &AtomicUsize,
    now: i64,
    shard: u32,
) -> Result<TickReport, EventError> {
    let mut report = TickReport::default();
    let mut after = None;
    loop {
        let page = events.store.query(&due_shard(shard).limit(PAGE).after(after.clone())).await?;
        for item in &page.items {
            let key = Key::of(item)?;
            let Some(entry) = DueEntry::from_key(&key) else {
                tracing::warn!(sk = %key.sk, "unreadable due entry dropped");
                events.store.delete(&key, None).await?;
                continue;
            };
            if entry.at > now {
                return Ok(report);
            }
            if deadline.is_some_and(|d| events.clock.now() >= d) || !take(left, 1) {
                report.due_left = true;
                return Ok(report);
            }
            let done = settle(events, notices, &entry, &key, &mut report, left).await?;
            if done {
                events.store.delete(&key, None).await?;
                report.settled += 1;
            } else {
                report.due_left = true;
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(report),
        }
    }
}

/// Does one due entry's work; `false` when some is left for a later tick.
async fn settle<S: Store + ?Sized>(
    events: &Events<'_, S>,
    notices: Option<&Notices<'_>>,
    entry: &DueEntry,
    key: &Key,
    report: &mut TickReport,
    left: &AtomicUsize,
) -> Result<bool, EventError> {
    match &entry.what {
        Due::Open(id) | Due::Close(id) => {
            if let Some(e) = events.read(id).await? {
                let before = e.status;
                let after = events.advance(&e).await?;
                if after != before {
                    match after {
                        crate::domain::limited_event::EventStatus::Active => report.opened += 1,
                        crate::domain::limited_event::EventStatus::Ended => report.ended += 1,
                        _ => {}
                    }
                }
            }
            Ok(true)
        }
        Due::Expire { user, rid, .. } => {
            if let Some(r) = events.reservation(user, rid).await?
                && r.status == ReservationStatus::Reserved
            {
                match events.release(&r, Why::Expired).await? {
                    Released::Promoted(_) => {
                        report.expired += 1;
                        report.promoted += 1;
                    }
                    Released::ToStock => report.expired += 1,
                    Released::AlreadyDone => {}
                }
            }
            Ok(true)
        }
        Due::CloseWaitlist(id) => {
            let budget = left.load(Ordering::SeqCst).max(1);
            let (done, closed) = events.close_waitlist(id, budget).await?;
            let _ = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| Some(l.saturating_sub(closed)));
            report.waitlist_closed += closed;
            Ok(done)
        }
        Due::Notify { user, rid, what } => notify(events, notices, key, user, rid, *what, report).await,
    }
}

/// Mails a notice under a lease on its due entry; `false` to try again later.
async fn notify<S: Store + ?Sized>(
    events: &Events<'_, S>,
    notices: Option<&Notices<'_>>,
    key: &Key,
    user: &UserId,
    rid: &ReservationId,
    what: Notice,
    report: &mut TickReport,
) -> Result<bool, EventError> {
    let Some(notices) = notices else {
        tracing::info!(user = %user.masked(), reservation = %rid, ?what, "no mailer configured: notice not mailed");
        return Ok(true);
    };
    let now = events.clock.now().timestamp();
    let lease = events
        .store
        .update(
            key,
            &[Update::set("lease_until", now + NOTICE_LEASE_SECONDS)],
            Some(Cond::And(vec![
                Cond::Exists,
                Cond::Or(vec![Cond::AttrNotExists("lease_until".into()), Cond::Le("lease_until".into(), now)]),
            ])),
        )
        .await;
    match lease {
        Ok(_) => {}
        // Another tick holds it, or it is done: not ours.
        Err(StoreError::ConditionFailed { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let Some(r) = events.reservation(user, rid).await? else { return Ok(true) };
    let member = events.store.get(&audience::key(user)).await?;
    let Some(to) = member.as_ref().and_then(|m| audience::from_item(m).ok()).map(|m| m.email) else {
        tracing::info!(user = %user.masked(), reservation = %rid, ?what, "no address known for the shopper: notice not mailed");
        return Ok(true);
    };
    // Reservation notices need no marketing opt-in, but an address that unsubscribed, bounced
    // or complained is never mailed.
    if let Some(found) = events.store.get(&suppression::key(&to)).await? {
        let reason = suppression::from_item(&found).map_or("suppressed", |s| s.reason.as_str());
        tracing::info!(to = %to.masked(), reservation = %rid, ?what, reason, "address suppressed: notice not mailed");
        report.suppressed += 1;
        return Ok(true);
    }
    let name = events.read(&r.event_id).await?.map(|e| e.spec.name).unwrap_or_else(|| r.event_id.to_string());
    let (subject, text) = match what {
        Notice::Promoted => (
            format!("A place in {name} is yours: pay by {}", hold_text(r.hold_until)),
            format!(
                "Good news: a place in {name} came free and is held for you until {}.\n\
                 Pay before then to keep it (reservation {rid}).",
                hold_text(r.hold_until)
            ),
        ),
        Notice::Closed => (
            format!("{name}: the waitlist has closed"),
            format!("Sorry: {name} ended or sold out before a place came free. Reservation {rid} is closed."),
        ),
    };
    let email = OutgoingEmail {
        from: notices.from.clone(),
        to: to.clone(),
        subject,
        text,
        html: None,
        headers: vec![],
        idempotency_key: key.sk.clone(),
    };
    match notices.mailer.send(&email).await {
        Ok(_) => {
            tracing::info!(to = %to.masked(), reservation = %rid, ?what, "event notice mailed");
            report.notified += 1;
            Ok(true)
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, reservation = %rid, "event notice not mailed yet; the next tick retries");
            Ok(false)
        }
        Err(e) => {
            tracing::warn!(error = %e, to = %to.masked(), reservation = %rid, "event notice rejected");
            Ok(true)
        }
    }
}

fn hold_text(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "the deadline".to_string(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}
