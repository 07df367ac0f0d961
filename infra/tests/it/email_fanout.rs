//! Campaign email on the local platform: trigger (twice, racing), publish (two publishers
//! racing), senders consuming the embedded queue into the outbox — every selected recipient
//! mailed exactly once, none of the others, the counts adding up — and pause/resume, cancel,
//! a throttling provider, a crash between claim and send, and the bad inputs.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use promo_shared::campaigns;
use promo_shared::domain::audience::Member;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::email::EmailAddress;
use promo_shared::domain::ids::{CampaignId, UserId};
use promo_shared::email::audience;
use promo_shared::email::delivery as email_delivery;
use promo_shared::email::items::send::SendState;
use promo_shared::email::items::suppression::{self, Reason, Suppression};
use promo_shared::email::send::{self as email_send, Progress, SendError};
use promo_shared::email::sender::{EMAIL_JOBS_QUEUE, Sender, SenderConfig};
use promo_shared::email::unsubscribe::{self, UnsubscribeKeys};
use promo_shared::ports::mail::{BulkEntry, BulkMailer, MailError, Template, Unlimited};
use promo_shared::ports::store::Store;
use promoctl::embedded::{OsIds, OutboxMailer, QueueConfig, SqliteQueue, SqliteStore, SystemClock};
use promoctl::runtime::consume_email;
use tokio::sync::watch;

const SECRET: &[u8] = b"a-test-unsubscribe-secret-of-32-bytes!!";

struct Local {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    queue: Arc<SqliteQueue>,
    outbox: Arc<OutboxMailer>,
}

fn local() -> Local {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    let queue = Arc::new(SqliteQueue::open(&dir.path().join("queue.db"), QueueConfig::default()).unwrap());
    let outbox = Arc::new(OutboxMailer::open(&dir.path().join("outbox")).unwrap());
    Local { dir, store, queue, outbox }
}

fn keys() -> UnsubscribeKeys {
    UnsubscribeKeys::new(&[SECRET]).unwrap()
}

fn sender(l: &Local, mailer: Arc<dyn BulkMailer>) -> Arc<Sender> {
    Arc::new(Sender {
        store: l.store.clone(),
        mailer,
        rate: Arc::new(Unlimited),
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsIds),
        keys: keys(),
        config: SenderConfig {
            unsubscribe_url: "https://shop.example/v1/unsubscribe".into(),
            backoff: Duration::from_millis(5),
            paused_retry: Duration::from_millis(100),
            ..SenderConfig::default()
        },
    })
}

/// The example campaign, with an email to every opted-in `gold` or `silver` member, sent at
/// any hour.
async fn deploy(store: &SqliteStore, id: &str) -> CampaignId {
    support::email_campaign(store, id, None).await
}

/// `n` members: every 10th not opted in, every 7th `bronze` (outside the segment), the rest
/// `gold` or `silver`. Returns the user ids the segment selects.
async fn import(store: &SqliteStore, n: usize) -> Vec<UserId> {
    let mut members = Vec::new();
    let mut selected = Vec::new();
    for i in 0..n {
        let tier = if i % 7 == 0 {
            "bronze"
        } else if i % 2 == 0 {
            "gold"
        } else {
            "silver"
        };
        let m = Member {
            user_id: UserId::parse(format!("u-{i:06}")).unwrap(),
            email: EmailAddress::parse(&format!("shopper{i}@example.com")).unwrap(),
            opted_in: i % 10 != 0,
            attributes: [("tier".to_string(), tier.to_string()), ("first_name".to_string(), format!("N{i}"))].into(),
        };
        if m.opted_in && tier != "bronze" {
            selected.push(m.user_id.clone());
        }
        members.push(m);
    }
    audience::import(store, &members).await.unwrap();
    selected
}

/// Messages in the outbox by recipient address.
fn outbox(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("outbox")) else { return out };
    for e in entries {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "eml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let to = text.lines().find_map(|l| l.strip_prefix("To: ")).unwrap().trim().to_string();
            out.entry(to).or_default().push(text);
        }
    }
    out
}

fn address(user: &UserId) -> String {
    format!(
        "shopper{}@example.com",
        user.as_str().trim_start_matches("u-").trim_start_matches('0').parse::<u64>().unwrap_or(0)
    )
}

/// Runs `consumers` senders until `done` holds for the progress, or panics after a minute.
async fn drain(
    l: &Local,
    sender: Arc<Sender>,
    id: &CampaignId,
    consumers: usize,
    done: impl Fn(&Progress) -> bool,
) -> Progress {
    let (stop, stopped) = watch::channel(false);
    let tasks: Vec<_> = (0..consumers)
        .map(|n| {
            let (queue, sender, stopped) = (l.queue.clone(), sender.clone(), stopped.clone());
            tokio::spawn(async move { consume_email(&*queue, EMAIL_JOBS_QUEUE, &sender, stopped, n).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let p = loop {
        let p = email_send::progress(&*l.store, id, chrono::Utc::now()).await.unwrap();
        if done(&p) {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "not done in a minute: {p:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    p
}

fn adds_up(p: &Progress) {
    assert_eq!(p.audience, p.sent + p.skipped + p.failed + p.uncertain + p.pending, "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_selected_recipient_is_mailed_exactly_once_and_nobody_else() {
    let l = local();
    let id = deploy(&l.store, "bf-mail").await;
    let selected = import(&l.store, 3000).await;
    // Three selected shoppers are suppressed (a bounce) and two unsubscribe by their link.
    for u in &selected[..3] {
        let s = Suppression { reason: Reason::Bounced, at: chrono::Utc::now(), campaign_id: None, user_id: None };
        let addr = EmailAddress::parse(&address(u)).unwrap();
        l.store.put(suppression::to_item(&addr, &s).unwrap(), None).await.unwrap();
    }
    for u in &selected[3..5] {
        let token = keys().sign(&id, u, chrono::Utc::now());
        let done = unsubscribe::unsubscribe(&*l.store, &keys(), &token, chrono::Utc::now()).await.unwrap();
        assert!(done.changed);
        assert!(!unsubscribe::unsubscribe(&*l.store, &keys(), &token, chrono::Utc::now()).await.unwrap().changed);
    }
    let unsubscribed = 2;
    // Two triggers racing: one starts the send, the other joins it.
    let (a, b) = tokio::join!(
        email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana"),
        email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ben"),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(u8::from(a.new) + u8::from(b.new), 1, "exactly one trigger starts the send");
    assert_eq!(a.send.run, b.send.run);
    // Two publishers racing over the buckets (two terminals): each recipient enqueued once.
    let (p1, p2) = tokio::join!(
        email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub-1", &id),
        email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub-2", &id),
    );
    let (p1, p2) = (p1.unwrap(), p2.unwrap());
    // The two unsubscribed shoppers are no longer opted in: not selected any more.
    let audience = (selected.len() - unsubscribed) as u64;
    assert_eq!(p1.recipients + p2.recipients, audience, "{p1:?} {p2:?}");
    let p = email_send::progress(&*l.store, &id, chrono::Utc::now()).await.unwrap();
    assert_eq!((p.audience, p.enqueued, p.buckets_published, p.pending), (audience, audience, 32, audience));
    adds_up(&p);

    let p = drain(&l, sender(&l, l.outbox.clone()), &id, 3, |p| p.finished).await;
    adds_up(&p);
    assert_eq!((p.sent, p.skipped, p.failed, p.uncertain, p.pending), (audience - 3, 3, 0, 0, 0), "{p:?}");
    let mail = outbox(l.dir.path());
    for u in &selected[5..] {
        let copies = mail.get(&address(u)).map_or(0, Vec::len);
        assert_eq!(copies, 1, "{u} mailed {copies} times");
    }
    for u in &selected[..5] {
        assert!(!mail.contains_key(&address(u)), "{u} is suppressed or unsubscribed");
    }
    assert_eq!(mail.len() as u64, audience - 3, "nobody outside the segment");
    // Each message: the recipient's own data and their own one-click unsubscribe link.
    let u = &selected[10];
    let text = &mail[&address(u)][0];
    let n = address(u).trim_start_matches("shopper").trim_end_matches("@example.com").to_string();
    assert!(text.contains(&format!("Subject: N{n}, Black Friday starts now")), "{text}");
    assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{text}");
    let link = text.lines().find_map(|l| l.strip_prefix("List-Unsubscribe: <")).unwrap().trim_end_matches('>');
    let token = link.strip_prefix("https://shop.example/v1/unsubscribe?t=").unwrap();
    let (c, who, _) = keys().verify(token).unwrap();
    assert_eq!((c, &who), (id.clone(), u));
    // A trigger after the end joins the finished send and sends nothing more.
    let again = email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    assert!(!again.new);
    let more = email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub-3", &id).await.unwrap();
    assert_eq!(more.recipients, 0);
    assert_eq!(l.queue.depth(EMAIL_JOBS_QUEUE).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_send_holds_its_jobs_and_a_resumed_one_finishes() {
    let l = local();
    let id = deploy(&l.store, "bf-pause").await;
    let selected = import(&l.store, 600).await;
    email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    // Triggered, nothing published and nobody publishing: the status can say a trigger resumes.
    let p = email_send::progress(&*l.store, &id, chrono::Utc::now()).await.unwrap();
    assert_eq!((p.buckets_published, p.publishing), (0, false));
    let now = chrono::Utc::now().timestamp_millis();
    let (key, updates, cond) = promo_shared::email::items::send::lease(&id, 3, "elsewhere", now, now + 60_000);
    l.store.update(&key, &updates, Some(cond)).await.unwrap();
    assert!(email_send::progress(&*l.store, &id, chrono::Utc::now()).await.unwrap().publishing, "a live lease");
    let (key, updates, cond) = promo_shared::email::items::send::release(&id, 3, "elsewhere");
    l.store.update(&key, &updates, Some(cond)).await.unwrap();
    email_send::control(&*l.store, &SystemClock, &id, SendState::Paused, Some("test")).await.unwrap().unwrap();
    // Publishing stops at once while paused; the trigger refuses to start anything.
    let p = email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub", &id).await.unwrap();
    assert_eq!(p.recipients, 0);
    let err = email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap_err();
    assert!(matches!(err, SendError::Paused(_)), "{err}");
    email_send::control(&*l.store, &SystemClock, &id, SendState::Sending, None).await.unwrap().unwrap();
    email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub", &id).await.unwrap();
    email_send::control(&*l.store, &SystemClock, &id, SendState::Paused, Some("test")).await.unwrap().unwrap();
    // Senders running while paused send nothing, and no job is used up or dead-lettered.
    let s = sender(&l, l.outbox.clone());
    let p = drain(&l, s.clone(), &id, 2, |_| true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.sent, 0);
    assert!(outbox(l.dir.path()).is_empty());
    assert!(l.queue.dead_letters(EMAIL_JOBS_QUEUE).await.unwrap().is_empty());
    email_send::control(&*l.store, &SystemClock, &id, SendState::Sending, None).await.unwrap().unwrap();
    let p = drain(&l, s, &id, 2, |p| p.finished).await;
    adds_up(&p);
    assert_eq!(p.sent, selected.len() as u64);
    assert!(outbox(l.dir.path()).values().all(|v| v.len() == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_send_skips_what_is_queued_and_cannot_be_triggered_again() {
    let l = local();
    let id = deploy(&l.store, "bf-cancel").await;
    let selected = import(&l.store, 400).await;
    email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub", &id).await.unwrap();
    email_send::control(&*l.store, &SystemClock, &id, SendState::Cancelled, Some("by ana")).await.unwrap().unwrap();
    let p = drain(&l, sender(&l, l.outbox.clone()), &id, 2, |p| p.pending == 0).await;
    adds_up(&p);
    assert_eq!((p.sent, p.skipped, p.state), (0, selected.len() as u64, Some(SendState::Cancelled)));
    assert!(outbox(l.dir.path()).is_empty());
    let err = email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap_err();
    assert!(matches!(err, SendError::Cancelled(_)), "{err}");
    let err = email_send::control(&*l.store, &SystemClock, &id, SendState::Sending, None).await.unwrap_err();
    assert!(matches!(err, SendError::Cancelled(_)), "a cancelled send is not resumed: {err}");
}

/// Throttles every other bulk call as a whole, and one entry in five of the calls it lets
/// through (a bulk call can partly succeed).
struct Throttling {
    inner: Arc<OutboxMailer>,
    calls: AtomicU64,
    throttled: AtomicU64,
}

#[async_trait]
impl BulkMailer for Throttling {
    async fn put_template(&self, t: &Template) -> Result<(), MailError> {
        self.inner.put_template(t).await
    }
    async fn send_bulk(
        &self,
        from: &str,
        template: &str,
        entries: &[BulkEntry],
        tags: &[(String, String)],
    ) -> Result<Vec<Result<String, MailError>>, MailError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n.is_multiple_of(2) {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            return Err(MailError::Throttled("Maximum sending rate exceeded".into()));
        }
        let (through, held): (Vec<(usize, &BulkEntry)>, Vec<_>) =
            entries.iter().enumerate().partition(|(i, _)| !(i + n as usize).is_multiple_of(5));
        let sent = self
            .inner
            .send_bulk(from, template, &through.iter().map(|(_, e)| (*e).clone()).collect::<Vec<_>>(), tags)
            .await?;
        let mut out: Vec<Result<String, MailError>> =
            (0..entries.len()).map(|_| Err(MailError::Throttled("entry throttled".into()))).collect();
        for ((i, _), r) in through.into_iter().zip(sent) {
            out[i] = r;
        }
        drop(held);
        Ok(out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_is_retried_and_never_counted_as_a_failure() {
    let l = local();
    let id = deploy(&l.store, "bf-throttle").await;
    let selected = import(&l.store, 500).await;
    let mailer =
        Arc::new(Throttling { inner: l.outbox.clone(), calls: AtomicU64::new(0), throttled: AtomicU64::new(0) });
    email_send::trigger(&*l.store, &*mailer, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub", &id).await.unwrap();
    let p = drain(&l, sender(&l, mailer.clone()), &id, 3, |p| p.finished).await;
    adds_up(&p);
    assert!(mailer.throttled.load(Ordering::SeqCst) > 5, "the provider did throttle");
    assert_eq!((p.sent, p.failed, p.uncertain), (selected.len() as u64, 0, 0));
    let mail = outbox(l.dir.path());
    assert_eq!(mail.len(), selected.len());
    assert!(mail.values().all(|v| v.len() == 1), "nobody twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_between_claim_and_send_is_uncertain_until_the_marketer_resends() {
    let l = local();
    let id = deploy(&l.store, "bf-crash").await;
    let selected = import(&l.store, 300).await;
    email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    // A sender claimed three recipients, then died before the provider answered.
    let long_ago = chrono::Utc::now() - email_delivery::LEASE - chrono::Duration::seconds(1);
    for u in &selected[..3] {
        email_delivery::claim(&*l.store, &id, u, "dead-run", long_ago).await.unwrap();
    }
    email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub", &id).await.unwrap();
    let p = drain(&l, sender(&l, l.outbox.clone()), &id, 2, |p| p.pending == 0).await;
    adds_up(&p);
    assert_eq!((p.sent, p.uncertain, p.finished), (selected.len() as u64 - 3, 3, true), "reported, not resent");
    for u in &selected[..3] {
        assert!(!outbox(l.dir.path()).contains_key(&address(u)));
    }
    // The marketer chooses to send to them.
    let n = email_send::resend_uncertain(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, &id).await.unwrap();
    assert_eq!(n, 3);
    let p = drain(&l, sender(&l, l.outbox.clone()), &id, 2, |p| p.finished && p.uncertain == 0).await;
    adds_up(&p);
    assert_eq!(p.sent, selected.len() as u64);
    assert!(outbox(l.dir.path()).values().all(|v| v.len() == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_jobs_go_to_the_dead_letters_and_the_send_finishes() {
    use promo_shared::ports::queue::Queue;
    let l = local();
    let id = deploy(&l.store, "bf-poison").await;
    let selected = import(&l.store, 300).await;
    email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    // Among the jobs: not JSON, an empty job, and a job of a campaign never triggered.
    let stray = serde_json::json!({"campaign_id": "never-triggered", "bucket": 0,
        "recipients": [{"user_id": "u-x", "email": "x@example.com"}]});
    for bad in [
        b"not a job".to_vec(),
        br#"{"campaign_id":"bf-poison","bucket":0,"recipients":[]}"#.to_vec(),
        serde_json::to_vec(&stray).unwrap(),
    ] {
        l.queue.publish(EMAIL_JOBS_QUEUE, &bad).await.unwrap();
    }
    email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub", &id).await.unwrap();
    let p = drain(&l, sender(&l, l.outbox.clone()), &id, 2, |p| p.finished).await;
    adds_up(&p);
    assert_eq!(p.sent, selected.len() as u64);
    let dead = l.queue.dead_letters(EMAIL_JOBS_QUEUE).await.unwrap();
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert!(outbox(l.dir.path()).values().all(|v| v.len() == 1));
    assert!(!outbox(l.dir.path()).contains_key("x@example.com"));
}

/// An SNS notification of an SES event, as the feedback Lambda receives it (SNS gives each
/// notification an id and keeps it when it delivers the notification again).
fn sns(event: serde_json::Value) -> serde_json::Value {
    let id = uuid::Uuid::new_v4().to_string();
    serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": {"MessageId": id, "Message": event.to_string()}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bounces_past_two_percent_pause_the_send_and_suppress_their_addresses() {
    let l = local();
    let id = deploy(&l.store, "bf-bounce").await;
    let selected = import(&l.store, 1000).await;
    email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub", &id).await.unwrap();
    let p = drain(&l, sender(&l, l.outbox.clone()), &id, 2, |p| p.finished).await;
    let sent = p.sent;
    assert!(sent >= 500, "{p:?}");
    // 2 % of what was sent bounce: not yet over the limit. A transient bounce and a delivery
    // event change nothing.
    let bounce = |u: &UserId, kind: &str| {
        sns(serde_json::json!({"eventType": "Bounce", "bounce": {"bounceType": kind,
            "bouncedRecipients": [{"emailAddress": address(u)}]}, "mail": {"tags": {"campaign": [id.as_str()]}}}))
    };
    let at_limit = (sent * 2 / 100) as usize;
    let notifications: Vec<_> = selected[..at_limit].iter().map(|u| bounce(u, "Permanent")).collect();
    for n in &notifications {
        promo_lambdas::entry::feedback(&*l.store, &SystemClock, n.clone()).await.unwrap();
    }
    // SNS delivers every notification again: each bounce still counts once.
    for n in &notifications {
        promo_lambdas::entry::feedback(&*l.store, &SystemClock, n.clone()).await.unwrap();
    }
    promo_lambdas::entry::feedback(&*l.store, &SystemClock, bounce(&selected[at_limit], "Transient")).await.unwrap();
    let delivery = sns(serde_json::json!({"eventType": "Delivery", "mail": {}}));
    promo_lambdas::entry::feedback(&*l.store, &SystemClock, delivery).await.unwrap();
    let p = email_send::progress(&*l.store, &id, chrono::Utc::now()).await.unwrap();
    assert_eq!((p.state, p.bounced), (Some(SendState::Sending), at_limit as u64));
    // One more permanent bounce passes 2 %: the send pauses itself, and says why.
    let out = promo_lambdas::entry::feedback(&*l.store, &SystemClock, bounce(&selected[at_limit + 1], "Permanent"))
        .await
        .unwrap();
    assert_eq!(out["paused"].as_array().unwrap().len(), 1, "{out}");
    let p = email_send::progress(&*l.store, &id, chrono::Utc::now()).await.unwrap();
    assert_eq!(p.state, Some(SendState::Paused));
    assert!(p.reason.as_deref().unwrap().contains("bounce rate"), "{:?}", p.reason);
    // The bounced addresses are suppressed; the transient one is not.
    let suppressed = |u: &UserId| {
        let key = suppression::key(&EmailAddress::parse(&address(u)).unwrap());
        let store = l.store.clone();
        async move { store.get(&key).await.unwrap().is_some() }
    };
    assert!(suppressed(&selected[0]).await && suppressed(&selected[at_limit + 1]).await);
    assert!(!suppressed(&selected[at_limit]).await);
}

#[tokio::test]
async fn bad_triggers_are_clear_errors_and_enqueue_nothing() {
    let l = local();
    let unknown = CampaignId::parse("nope").unwrap();
    let err = email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &unknown, "ana").await.unwrap_err();
    assert!(matches!(err, SendError::UnknownCampaign(_)), "{err}");
    // No [email] section.
    let mut spec = support::example_campaign().spec().clone();
    spec.id = CampaignId::parse("no-mail").unwrap();
    spec.email = None;
    spec.ends_at = chrono::Utc::now() + chrono::Duration::days(1);
    campaigns::deploy(&*l.store, &SystemClock, &Campaign::new(spec).unwrap()).await.unwrap();
    let err =
        email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &CampaignId::parse("no-mail").unwrap(), "ana")
            .await
            .unwrap_err();
    assert!(matches!(err, SendError::NoEmail(_)), "{err}");
    // A segment that selects nobody (the audience is empty).
    let id = deploy(&l.store, "bf-empty").await;
    let err = email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap_err();
    assert!(matches!(err, SendError::EmptySegment(_)), "{err}");
    assert!(email_send::get(&*l.store, &id).await.unwrap().is_none(), "no send was created");
    // Paused or resumed before a trigger: nothing to control.
    let err = email_send::control(&*l.store, &SystemClock, &id, SendState::Paused, None).await.unwrap_err();
    assert!(matches!(err, SendError::NotTriggered(_)), "{err}");
    // A tampered unsubscribe token changes nothing.
    import(&l.store, 20).await;
    let token = keys().sign(&id, &UserId::parse("u-000001").unwrap(), chrono::Utc::now());
    let tampered = format!("{}x", token);
    assert!(unsubscribe::unsubscribe(&*l.store, &keys(), &tampered, chrono::Utc::now()).await.is_err());
    assert_eq!(l.queue.depth(EMAIL_JOBS_QUEUE).await.unwrap(), 0);
}

/// The sender Lambda's entry: an SQS batch reports only the jobs to retry (a paused send's,
/// a malformed one), decodes base64 bodies as the SQS adapter encodes them, and sends the
/// rest; an Amazon MQ batch fails as a whole only for a job to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sender_lambda_reports_sqs_partial_failures_and_amazon_mq_retries() {
    use base64::Engine;
    use promo_shared::email::send::{Job, Recipient};
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let l = local();
    let sending = deploy(&l.store, "bf-lambda").await;
    let paused = deploy(&l.store, "bf-lambda-paused").await;
    import(&l.store, 200).await;
    for id in [&sending, &paused] {
        email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, id, "ana").await.unwrap();
    }
    email_send::control(&*l.store, &SystemClock, &paused, SendState::Paused, None).await.unwrap();
    let job = |id: &CampaignId, users: std::ops::Range<usize>| {
        let recipients = users
            .map(|i| {
                let u = UserId::parse(format!("u-{i:06}")).unwrap();
                Recipient { email: EmailAddress::parse(&address(&u)).unwrap(), user_id: u, data: Default::default() }
            })
            .collect();
        serde_json::to_vec(&Job { campaign_id: id.clone(), bucket: 0, recipients }).unwrap()
    };
    let record = |id: &str, body: serde_json::Value, attrs: serde_json::Value| {
        serde_json::json!({"messageId": id, "receiptHandle": "h", "body": body, "attributes": {},
            "messageAttributes": attrs, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"})
    };
    let plain = String::from_utf8(job(&sending, 1..4)).unwrap();
    let encoded = b64(&job(&sending, 4..7));
    let base64_attr = serde_json::json!({"promo-encoding": {"stringValue": "base64", "dataType": "String"}});
    let batch = serde_json::json!({"Records": [
        record("m-1", plain.clone().into(), serde_json::json!({})),
        record("m-2", encoded.into(), base64_attr),
        record("m-3", String::from_utf8(job(&paused, 7..9)).unwrap().into(), serde_json::json!({})),
        record("m-4", "not a job".into(), serde_json::json!({})),
        record("m-5", plain.into(), serde_json::json!({})),
    ]});
    let s = sender(&l, l.outbox.clone());
    let out = promo_lambdas::entry::sender(&s, batch, 4).await.unwrap();
    let mut failed: Vec<&str> =
        out["batchItemFailures"].as_array().unwrap().iter().map(|f| f["itemIdentifier"].as_str().unwrap()).collect();
    failed.sort_unstable();
    assert_eq!(failed, ["m-3", "m-4"], "{out}");
    let mail = outbox(l.dir.path());
    for i in 1..7 {
        let u = UserId::parse(format!("u-{i:06}")).unwrap();
        assert_eq!(mail.get(&address(&u)).map_or(0, Vec::len), 1, "{u}: the repeated job sends nothing twice");
    }
    assert_eq!(mail.len(), 6);

    // Amazon MQ: a batch holding a paused send's job fails (it comes back), the others are
    // sent; once resumed, the same batch goes through, and nobody is mailed twice.
    // The shape of AWS's sample Amazon MQ for RabbitMQ event.
    let props = serde_json::json!({"contentType": "application/json", "contentEncoding": null, "headers": {},
        "deliveryMode": 2, "priority": 0, "correlationId": null, "replyTo": null, "expiration": null,
        "messageId": null, "timestamp": null, "type": null, "userId": null, "appId": null, "clusterId": null,
        "bodySize": 80});
    let mq = |bodies: Vec<Vec<u8>>| {
        let messages: Vec<_> = bodies
            .iter()
            .map(|b| serde_json::json!({"basicProperties": props, "redelivered": false, "data": b64(b)}))
            .collect();
        serde_json::json!({"eventSource": "aws:rmq", "eventSourceArn": "arn:aws:mq:us-east-1:1:broker:b",
            "rmqMessagesByQueue": {"email::/": messages}})
    };
    let batch = mq(vec![job(&sending, 10..13), job(&paused, 13..15), b"garbage".to_vec()]);
    assert!(promo_lambdas::entry::sender(&s, batch.clone(), 4).await.is_err(), "a paused job fails the batch");
    email_send::control(&*l.store, &SystemClock, &paused, SendState::Sending, None).await.unwrap();
    let out = promo_lambdas::entry::sender(&s, batch, 4).await.unwrap();
    assert_eq!(out["sent"], 2, "only the paused job's two are new: {out}");
    let mail = outbox(l.dir.path());
    assert!(mail.values().all(|v| v.len() == 1));
    assert_eq!(mail.len(), 6 + 3 + 2, "and the paused SQS job's two wait in SQS");
}

/// Answers every bulk call as `answer` says (by call number, from 0) and counts how often
/// each recipient was in a call; a call it lets through goes to the outbox.
struct Scripted {
    inner: Arc<OutboxMailer>,
    answer: fn(u64) -> Option<MailError>,
    calls: AtomicU64,
    seen: std::sync::Mutex<BTreeMap<String, u32>>,
}

impl Scripted {
    fn new(inner: Arc<OutboxMailer>, answer: fn(u64) -> Option<MailError>) -> Arc<Scripted> {
        Arc::new(Scripted { inner, answer, calls: AtomicU64::new(0), seen: Default::default() })
    }
    fn times(&self, who: &str) -> u32 {
        self.seen.lock().unwrap().get(who).copied().unwrap_or(0)
    }
}

#[async_trait]
impl BulkMailer for Scripted {
    async fn put_template(&self, t: &Template) -> Result<(), MailError> {
        self.inner.put_template(t).await
    }
    async fn send_bulk(
        &self,
        from: &str,
        template: &str,
        entries: &[BulkEntry],
        tags: &[(String, String)],
    ) -> Result<Vec<Result<String, MailError>>, MailError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        for e in entries {
            *self.seen.lock().unwrap().entry(e.to.expose().to_string()).or_default() += 1;
        }
        match (self.answer)(n) {
            Some(e) => Err(e),
            None => self.inner.send_bulk(from, template, entries, tags).await,
        }
    }
}

/// One job of the selected users `users`, as the publisher makes it.
fn job_of(id: &CampaignId, users: &[UserId]) -> Vec<u8> {
    use promo_shared::email::send::{Job, Recipient};
    let recipients = users
        .iter()
        .map(|u| Recipient {
            email: EmailAddress::parse(&address(u)).unwrap(),
            user_id: u.clone(),
            data: Default::default(),
        })
        .collect();
    serde_json::to_vec(&Job { campaign_id: id.clone(), bucket: 0, recipients }).unwrap()
}

/// (issue 25, item 6) An answer that may mean "sent" (a timeout after the request went out,
/// a 5xx) settles its recipients UNCERTAIN at once: the call is made once, nobody is sent
/// again on their own, the status reports them, and only the marketer's resend sends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_answer_settles_its_recipients_uncertain_and_never_resends_them() {
    use promo_shared::email::sender::Outcome;
    let l = local();
    let id = deploy(&l.store, "bf-ambiguous").await;
    let selected = import(&l.store, 100).await;
    let users = &selected[..20];
    let mailer = Scripted::new(l.outbox.clone(), |_| Some(MailError::Ambiguous("timed out after sending".into())));
    email_send::trigger(&*l.store, &*mailer, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    let s = sender(&l, mailer.clone());
    let body = job_of(&id, users);
    let Outcome::Done(tally) = s.handle(&body).await else { panic!("an ambiguous answer is not retried") };
    assert_eq!((tally.sent, tally.uncertain, tally.failed), (0, 20, 0), "{tally:?}");
    // The same job delivered again (the queue's at-least-once) sends nobody either.
    let Outcome::Done(again) = s.handle(&body).await else { panic!() };
    assert_eq!((again.already, again.uncertain), (20, 0), "{again:?}");
    assert_eq!(mailer.calls.load(Ordering::SeqCst), 1, "one call, never resent");
    for u in users {
        assert_eq!(mailer.times(&address(u)), 1, "{u}");
    }
    let p = email_send::progress(&*l.store, &id, chrono::Utc::now()).await.unwrap();
    assert_eq!((p.sent, p.uncertain, p.in_flight), (0, 20, 0), "reported uncertain at once: {p:?}");
    let uncertain = email_delivery::uncertain(&*l.store, &id, chrono::Utc::now()).await.unwrap();
    assert_eq!(uncertain.len(), 20);
    // The marketer's explicit resend publishes them again, and a sender sends them.
    let n = email_send::resend_uncertain(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, &id).await.unwrap();
    assert_eq!(n, 20);
    let p = drain(&l, sender(&l, l.outbox.clone()), &id, 1, |p| p.uncertain == 0 && p.sent == 20).await;
    assert_eq!((p.sent, p.uncertain), (20, 0), "{p:?}");
}

/// (issue 25, item 6) An answer that certainly means "not sent" (throttled) is retried: the
/// recipients are sent by the next call, none uncertain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_answer_is_retried_and_sends() {
    use promo_shared::email::sender::Outcome;
    let l = local();
    let id = deploy(&l.store, "bf-throttled-once").await;
    let selected = import(&l.store, 100).await;
    let users = &selected[..20];
    let mailer = Scripted::new(l.outbox.clone(), |n| (n == 0).then(|| MailError::Throttled("slow down".into())));
    email_send::trigger(&*l.store, &*mailer, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    let Outcome::Done(tally) = sender(&l, mailer.clone()).handle(&job_of(&id, users)).await else { panic!() };
    assert_eq!((tally.sent, tally.uncertain), (20, 0), "{tally:?}");
    assert_eq!(mailer.calls.load(Ordering::SeqCst), 2);
    let mail = outbox(l.dir.path());
    assert!(users.iter().all(|u| mail.get(&address(u)).map_or(0, Vec::len) == 1));
}

/// A rate that sends `self.0` recipients a call and never waits.
struct Chunks(usize);

#[async_trait]
impl promo_shared::ports::mail::SendRate for Chunks {
    async fn acquire(&self, _n: u32) {}
    fn max_batch(&self) -> usize {
        self.0
    }
}

/// Sends into the outbox; from call `hang_at` on (counted from 0) never answers (the
/// process is killed meanwhile); each call moves `clock` on by `step`, if any.
struct Stalling {
    inner: Arc<OutboxMailer>,
    calls: AtomicU64,
    hang_at: u64,
    clock: Option<(Arc<promo_shared::ports::clock::ManualClock>, chrono::Duration)>,
}

#[async_trait]
impl BulkMailer for Stalling {
    async fn put_template(&self, t: &Template) -> Result<(), MailError> {
        self.inner.put_template(t).await
    }
    async fn send_bulk(
        &self,
        from: &str,
        template: &str,
        entries: &[BulkEntry],
        tags: &[(String, String)],
    ) -> Result<Vec<Result<String, MailError>>, MailError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n >= self.hang_at {
            return std::future::pending().await;
        }
        if let Some((clock, step)) = &self.clock {
            clock.advance(*step);
        }
        self.inner.send_bulk(from, template, entries, tags).await
    }
}

fn chunked_sender(
    l: &Local,
    mailer: Arc<dyn BulkMailer>,
    clock: Arc<dyn promo_shared::ports::clock::Clock>,
    chunk: usize,
) -> Sender {
    Sender {
        store: l.store.clone(),
        mailer,
        rate: Arc::new(Chunks(chunk)),
        clock,
        ids: Arc::new(OsIds),
        keys: keys(),
        config: SenderConfig {
            unsubscribe_url: "https://shop.example/v1/unsubscribe".into(),
            backoff: Duration::from_millis(5),
            ..SenderConfig::default()
        },
    }
}

/// (issue 25, item 4) A job of 50 sent 10 a call, killed during its 3rd call: only that
/// call's 10 recipients are claimed and unsettled (UNCERTAIN after the lease); the 20 not
/// reached are unclaimed, and the job's redelivery sends them — nobody twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_job_strands_only_the_call_in_flight() {
    use promo_shared::email::sender::Outcome;
    let l = local();
    let id = deploy(&l.store, "bf-kill-chunk").await;
    let selected = import(&l.store, 200).await;
    let users = &selected[..50];
    let stalling = Arc::new(Stalling { inner: l.outbox.clone(), calls: AtomicU64::new(0), hang_at: 2, clock: None });
    email_send::trigger(&*l.store, &*stalling, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    let body = job_of(&id, users);
    let s = chunked_sender(&l, stalling.clone(), Arc::new(SystemClock), 10);
    // The kill: the job's future is dropped while its 3rd call waits for an answer.
    let killed = tokio::time::timeout(Duration::from_secs(2), s.handle(&body)).await;
    assert!(killed.is_err(), "the 3rd call never answers");
    assert_eq!(stalling.calls.load(Ordering::SeqCst), 3);
    let counts = email_delivery::counts(&*l.store, &id, chrono::Utc::now()).await.unwrap();
    assert_eq!((counts["sent"], counts["in_flight"]), (20, 10), "only the call in flight is claimed: {counts:?}");
    // Redelivered after the crash: the 20 never claimed are sent; the 10 stay unsettled.
    let s = chunked_sender(&l, l.outbox.clone(), Arc::new(SystemClock), 10);
    let Outcome::Done(t) = s.handle(&body).await else { panic!() };
    assert_eq!((t.sent, t.already), (20, 30), "{t:?}");
    let later = chrono::Utc::now() + email_delivery::LEASE;
    let counts = email_delivery::counts(&*l.store, &id, later).await.unwrap();
    assert_eq!((counts["sent"], counts["uncertain"]), (40, 10), "{counts:?}");
    let mail = outbox(l.dir.path());
    assert_eq!(mail.len(), 40);
    assert!(mail.values().all(|v| v.len() == 1), "nobody twice");
}

/// (issue 25, item 4) A deadline reached after two calls of a job of 50 (10 a call): the
/// job stops with no claim left unsettled and goes back; its redelivery sends the other 30,
/// each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_hands_the_rest_back_unclaimed() {
    use promo_shared::email::sender::Outcome;
    use promo_shared::ports::clock::{Clock, ManualClock};
    let l = local();
    let id = deploy(&l.store, "bf-deadline").await;
    let selected = import(&l.store, 200).await;
    let users = &selected[..50];
    let t0 = chrono::Utc::now();
    let clock = Arc::new(ManualClock::new(t0));
    let mailer = Arc::new(Stalling {
        inner: l.outbox.clone(),
        calls: AtomicU64::new(0),
        hang_at: u64::MAX,
        clock: Some((clock.clone(), chrono::Duration::seconds(1))),
    });
    email_send::trigger(&*l.store, &*mailer, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    let body = job_of(&id, users);
    let s = chunked_sender(&l, mailer.clone(), clock.clone(), 10);
    let deadline = t0 + chrono::Duration::milliseconds(1500);
    let Outcome::Unfinished(t) = s.handle_until(&body, Some(deadline)).await else { panic!("the rest goes back") };
    assert_eq!(t.sent, 20, "{t:?}");
    assert_eq!(mailer.calls.load(Ordering::SeqCst), 2);
    let counts = email_delivery::counts(&*l.store, &id, clock.now() + email_delivery::LEASE).await.unwrap();
    assert_eq!((counts["sent"], counts["uncertain"], counts["in_flight"]), (20, 0, 0), "no claim held: {counts:?}");
    // The job goes back (the local queue: at once, not a failed attempt) and comes back.
    let Outcome::Done(t) = s.handle(&body).await else { panic!() };
    assert_eq!((t.sent, t.already), (30, 20), "{t:?}");
    assert_eq!(mailer.calls.load(Ordering::SeqCst), 5);
    let mail = outbox(l.dir.path());
    assert_eq!(mail.len(), 50);
    assert!(mail.values().all(|v| v.len() == 1), "each of the 30 exactly once");
}

/// (issue 25, items 5 and 4) The sender Lambda on an SQS batch holding a paused send's job
/// and a job its deadline leaves unfinished: neither is a failed item (a paused job would use
/// up a receive and, paused overnight, reach the dead-letter queue); each goes back to the
/// queue as a copy — the paused one delayed by the pause's wait, the unfinished one at once —
/// and the original is deleted, so the copies come back as first receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs services: run infra/test.sh"]
async fn the_sender_lambda_puts_held_jobs_back_not_failed() {
    use promo_lambdas::sqs::{SqsConfig, SqsQueue};
    use promo_shared::ports::queue::Queue;
    let endpoint = std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT").expect("PROMO_TEST_DYNAMODB_ENDPOINT (moto)");
    let sqs = SqsQueue::from_env(
        Some(&endpoint),
        SqsConfig { max_attempts: 3, visibility: Duration::from_secs(30), create_missing: true },
    )
    .await;
    let name = format!("email-held-{}", uuid::Uuid::now_v7().simple());
    let l = local();
    let paused = deploy(&l.store, "bf-held").await;
    let sending = deploy(&l.store, "bf-held-late").await;
    let selected = import(&l.store, 100).await;
    for id in [&paused, &sending] {
        email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, id, "ana").await.unwrap();
    }
    email_send::control(&*l.store, &SystemClock, &paused, SendState::Paused, Some("test")).await.unwrap();
    let held = job_of(&paused, &selected[..5]);
    let late = job_of(&sending, &selected[5..10]);
    sqs.publish_batch(&name, &[held.clone(), late.clone()]).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(sqs.receive(&name, 2, Duration::from_secs(5)).await.unwrap());
    }
    let records: Vec<serde_json::Value> = got
        .iter()
        .enumerate()
        .map(|(i, d)| {
            serde_json::json!({"messageId": format!("m-{i}"), "receiptHandle": d.receipt,
                "body": String::from_utf8(d.body.clone()).unwrap(), "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
        })
        .collect();
    let s = Sender {
        store: l.store.clone(),
        mailer: l.outbox.clone(),
        rate: Arc::new(Unlimited),
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsIds),
        keys: keys(),
        config: SenderConfig { paused_retry: Duration::from_secs(4), ..SenderConfig::default() },
    };
    let requeue = promo_lambdas::entry::Requeue { queue: &sqs, name: &name };
    // The invocation's deadline has already come: the sending job starts nothing.
    let deadline = chrono::Utc::now() - chrono::Duration::seconds(1);
    let event = serde_json::json!({ "Records": records });
    let out = promo_lambdas::entry::sender_until(&s, event, 4, Some(deadline), Some(requeue)).await.unwrap();
    assert_eq!(out["batchItemFailures"], serde_json::json!([]), "a held job is not a failure: {out}");
    // The unfinished job is back at once, as a first receive; the paused one is delayed.
    let back = sqs.receive(&name, 10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!((back[0].attempt, &back[0].body), (1, &late));
    sqs.ack(&name, &back[0]).await.unwrap();
    let back = sqs.receive(&name, 10, Duration::from_secs(15)).await.unwrap();
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!((back[0].attempt, &back[0].body), (1, &held));
    assert!(outbox(l.dir.path()).is_empty(), "nothing sent while paused or past the deadline");
    let counts = email_delivery::counts(&*l.store, &sending, chrono::Utc::now() + email_delivery::LEASE).await.unwrap();
    assert_eq!(counts.values().sum::<u64>(), 0, "no claim held by the unfinished job: {counts:?}");
}

/// (issue 25, item 5) Outside its send window a send's jobs are held, not failed: the local
/// consumer defers them without using up attempts, and `status` says until when it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_send_window_jobs_wait_and_status_says_until_when() {
    use promo_shared::domain::email::SendWindow;
    use promo_shared::ports::store::Update;
    let l = local();
    let id = deploy(&l.store, "bf-window").await;
    import(&l.store, 200).await;
    email_send::trigger(&*l.store, &*l.outbox, &SystemClock, &OsIds, &id, "ana").await.unwrap();
    // The window opens in two hours (UTC) and lasts one.
    let now = chrono::Utc::now();
    let opens = now + chrono::Duration::hours(2);
    let hhmm = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let (_, mut email, _) = email_send::load(&*l.store, &id).await.unwrap();
    email.send_window = Some(SendWindow {
        from: hhmm(opens),
        to: hhmm(opens + chrono::Duration::hours(1)),
        utc_offset: "+00:00".into(),
    });
    let key = promo_shared::email::items::send::state_key(&id);
    l.store.update(&key, &[Update::set("email", serde_json::to_value(&email).unwrap())], None).await.unwrap();
    email_send::publish(&*l.store, &*l.queue, EMAIL_JOBS_QUEUE, &SystemClock, "pub", &id).await.unwrap();
    let p = drain(&l, sender(&l, l.outbox.clone()), &id, 2, |_| true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.sent, 0);
    assert!(l.queue.dead_letters(EMAIL_JOBS_QUEUE).await.unwrap().is_empty(), "held, never dead-lettered");
    let p = email_send::progress(&*l.store, &id, now).await.unwrap();
    let expected = opens.format("%Y-%m-%dT%H:%M:00Z").to_string().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert_eq!(p.window_opens_at, Some(expected), "{p:?}");
}
