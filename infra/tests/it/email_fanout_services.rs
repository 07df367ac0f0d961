//! Campaign email at size, on real components: 100,000 audience members in the store, the
//! publisher into real RabbitMQ (publisher confirms), four senders consuming it and sending
//! through the real AWS SDK to the SES v2 stand-in, read back from the stand-in's store.
//! Some members are not opted in, some outside the segment, some unsubscribed by their
//! link, some suppressed after a bounce: each selected recipient is mailed exactly once,
//! nobody else is, and every count adds up.
//!
//! The store is the embedded one (the DynamoDB stand-in, moto behind one lock, takes a few
//! hundred writes a second: 200,000 claims and settles would take the whole CI budget); the
//! DynamoDB adapter meets the same conditions in the store conformance suite.

use crate::support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use promo_lambdas::rabbitmq::{RabbitConfig, RabbitQueue};
use promo_lambdas::ses::SesMailer;
use promo_shared::domain::audience::Member;
use promo_shared::domain::email::EmailAddress;
use promo_shared::domain::ids::UserId;
use promo_shared::email::items::suppression::{self, Reason, Suppression};
use promo_shared::email::send as email_send;
use promo_shared::email::sender::{Sender, SenderConfig};
use promo_shared::email::unsubscribe::{self, UnsubscribeKeys};
use promo_shared::ports::mail::Unlimited;
use promo_shared::ports::store::Store;
use promoctl::embedded::{OsIds, SqliteStore, SystemClock};
use promoctl::runtime::consume_email;
use serde::Deserialize;
use tokio::sync::watch;

const N: u64 = 100_000;
const SECRET: &[u8] = b"a-test-unsubscribe-secret-of-32-bytes!!";

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run infra/test.sh (or --services-only and source its env)"))
}

#[derive(Deserialize)]
struct SesStore {
    emails: Vec<SesEmail>,
}

#[derive(Deserialize)]
struct SesEmail {
    destination: Destination,
    #[serde(default)]
    headers: Vec<Header>,
}

#[derive(Deserialize)]
struct Destination {
    #[serde(default)]
    to: Vec<String>,
}

#[derive(Deserialize)]
struct Header {
    name: String,
    value: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs services: run infra/test.sh"]
async fn a_hundred_thousand_recipients_are_each_mailed_exactly_once_through_rabbitmq_and_ses() {
    let run = format!("r{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis());
    let domain = format!("{run}.example.com");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    let keys = UnsubscribeKeys::new(&[SECRET]).unwrap();

    // The audience: every 10th member not opted in, every 7th `bronze` (outside the segment).
    let mut selected = Vec::new();
    let mut members = Vec::new();
    for i in 0..N {
        let tier = if i % 7 == 0 { "bronze" } else { "gold" };
        let m = Member {
            user_id: UserId::parse(format!("u-{i:06}")).unwrap(),
            email: EmailAddress::parse(&format!("s{i}@{domain}")).unwrap(),
            opted_in: i % 10 != 0,
            attributes: [("tier".to_string(), tier.to_string()), ("first_name".to_string(), format!("N{i}"))].into(),
        };
        if m.opted_in && tier == "gold" {
            selected.push((i, m.user_id.clone()));
        }
        members.push(m);
    }
    support::put_members(&*store, members).await;
    let id = support::email_campaign(&*store, &format!("bf-{run}"), Some(&["gold"])).await;

    // Every 89th selected shopper unsubscribes by their link (no longer opted in: not
    // selected); every 97th is suppressed after a bounce (selected, skipped).
    let mut unsubscribed = std::collections::HashSet::new();
    let mut suppressed = std::collections::HashSet::new();
    for (k, (i, user)) in selected.iter().enumerate() {
        if k % 89 == 0 {
            let token = keys.sign(&id, user, chrono::Utc::now());
            assert!(unsubscribe::unsubscribe(&*store, &keys, &token, chrono::Utc::now()).await.unwrap().changed);
            unsubscribed.insert(*i);
        } else if k % 97 == 0 {
            let s = Suppression { reason: Reason::Bounced, at: chrono::Utc::now(), campaign_id: None, user_id: None };
            let addr = EmailAddress::parse(&format!("s{i}@{domain}")).unwrap();
            store.put(suppression::to_item(&addr, &s).unwrap(), None).await.unwrap();
            suppressed.insert(*i);
        }
    }
    let audience = (selected.len() - unsubscribed.len()) as u64;

    let url = env("PROMO_TEST_RABBITMQ_URL");
    let queue_name = format!("fanout-{run}");
    let connect = || async {
        RabbitQueue::connect(&url, RabbitConfig { max_attempts: 5, prefetch: 16 })
            .await
            .unwrap()
            .with_idle_queue_expiry(Duration::from_secs(600))
    };
    let publisher_queue = connect().await;
    let ses = env("PROMO_TEST_SES_ENDPOINT");
    let mailer = Arc::new(SesMailer::from_env(Some(&ses)).await);
    let t = email_send::trigger(&*store, &*mailer, &SystemClock, &OsIds, &id, "test").await.unwrap();
    assert!(t.new);

    // Four senders, each with its own connection, consuming while the publisher publishes.
    let sender = Arc::new(Sender {
        store: store.clone(),
        mailer: mailer.clone(),
        rate: Arc::new(Unlimited),
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsIds),
        keys: keys.clone(),
        config: SenderConfig {
            unsubscribe_url: "https://shop.example/v1/unsubscribe".into(),
            ..SenderConfig::default()
        },
    });
    let (stop, stopped) = watch::channel(false);
    let mut consumers = Vec::new();
    for n in 0..4 {
        let (q, sender, stopped, name) = (connect().await, sender.clone(), stopped.clone(), queue_name.clone());
        consumers.push(tokio::spawn(async move { consume_email(&q, &name, &sender, stopped, n).await }));
    }
    let published =
        email_send::publish(&*store, &publisher_queue, &queue_name, &SystemClock, "pub", &id).await.unwrap();
    assert_eq!(published.recipients, audience);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let p = loop {
        let p = email_send::progress(&*store, &id, chrono::Utc::now()).await.unwrap();
        assert_eq!(p.audience, p.sent + p.skipped + p.failed + p.uncertain + p.pending, "{p:?}");
        if p.finished {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "not finished in 10 minutes: {p:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop.send(true).unwrap();
    for c in consumers {
        c.await.unwrap();
    }
    let suppressed_selected = suppressed.len() as u64;
    assert_eq!(
        (p.audience, p.sent, p.skipped, p.failed, p.uncertain, p.pending),
        (audience, audience - suppressed_selected, suppressed_selected, 0, 0, 0),
        "{p:?}"
    );

    // What the SES stand-in received, for this run's addresses.
    let body = reqwest::get(format!("{ses}/store")).await.unwrap().bytes().await.unwrap();
    let sent: SesStore = serde_json::from_slice(&body).unwrap();
    let mut copies: HashMap<String, usize> = HashMap::new();
    for e in sent.emails.iter().filter(|e| e.destination.to.iter().any(|t| t.ends_with(&domain))) {
        assert_eq!(e.destination.to.len(), 1);
        *copies.entry(e.destination.to[0].clone()).or_default() += 1;
        let link = e.headers.iter().find(|h| h.name == "List-Unsubscribe").map(|h| h.value.as_str());
        assert!(link.is_some_and(|l| l.starts_with("<https://shop.example/v1/unsubscribe?t=")), "{link:?}");
    }
    for (i, _) in &selected {
        let address = format!("s{i}@{domain}");
        let n = copies.get(&address).copied().unwrap_or(0);
        let expected = usize::from(!unsubscribed.contains(i) && !suppressed.contains(i));
        assert_eq!(n, expected, "{address} was mailed {n} times");
    }
    assert_eq!(copies.len() as u64, audience - suppressed_selected, "nobody outside the selection");
    assert!(copies.values().all(|&n| n == 1), "nobody twice");
}
