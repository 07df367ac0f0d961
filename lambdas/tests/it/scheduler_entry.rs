//! The scheduler Lambda's handler (`entry::scheduler`) on the stand-ins: DynamoDB (moto,
//! `PROMO_TEST_DYNAMODB_ENDPOINT`) and SES v2 (`aws-ses-v2-local`, `PROMO_TEST_SES_ENDPOINT`),
//! both started by `infra/test.sh`. A hold expires, the next in line is promoted and mailed
//! through `SesMailer`'s `SendEmail`; a second run finds nothing more to do.

use std::sync::Arc;

use chrono::Duration;
use promo_conformance::events::World;
use promo_lambdas::entry;
use promo_lambdas::ses::SesMailer;
use promo_shared::domain::audience::Member;
use promo_shared::domain::email::EmailAddress;
use promo_shared::domain::limited_event::ReservationStatus;
use promo_shared::events::scheduler::Notices;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::store::{Store, TxOp};
use serde_json::Value;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `infra/test.sh --services-only` and `source ~/.cache/promo/test-state/env`")
    })
}

use crate::support;

/// A table of its own: the due index is global.
async fn store() -> Arc<dyn Store> {
    support::fresh_store().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs services: run infra/test.sh"]
async fn a_run_expires_promotes_and_mails_through_ses_then_finds_nothing_more() {
    let w = World::new(store().await, "sched", 1).await;
    let address = format!("waiting-{}@example.com", uuid::Uuid::new_v4().simple());
    let member = Member {
        user_id: w.user(1),
        email: EmailAddress::parse(&address).unwrap(),
        opted_in: false,
        attributes: Default::default(),
    };
    w.store
        .transact(
            vec![TxOp::Put { item: promo_shared::email::items::audience::to_item(&member).unwrap(), cond: None }],
            None,
        )
        .await
        .unwrap();
    let events = w.events();
    events.reserve(&w.event, &w.user(0)).await.unwrap();
    let waiting = events.reserve(&w.event, &w.user(1)).await.unwrap();
    assert_eq!(waiting.status, ReservationStatus::Waiting);
    w.clock.advance(Duration::seconds(601));

    let mailer = SesMailer::from_env(Some(&var("PROMO_TEST_SES_ENDPOINT"))).await;
    let notices = Notices { mailer: &mailer, from: EmailAddress::parse("events@shop.example").unwrap() };
    let deadline = w.clock.now() + Duration::seconds(50);
    let out = entry::scheduler(&events, Some(&notices), deadline).await.unwrap();
    assert_eq!((out["expired"].as_u64(), out["promoted"].as_u64()), (Some(1), Some(1)), "{out}");
    assert_eq!(out["due_left"], false, "{out}");
    let promoted = events.reservation(&w.user(1), &waiting.reservation_id).await.unwrap().unwrap();
    assert_eq!(promoted.status, ReservationStatus::Reserved);

    // The notice may land in a shard the run had passed: a second run settles it, and then
    // nothing is left.
    let again = entry::scheduler(&events, Some(&notices), deadline).await.unwrap();
    assert_eq!(out["notified"].as_u64().unwrap() + again["notified"].as_u64().unwrap(), 1, "{out} {again}");
    assert_eq!((again["expired"].as_u64(), again["promoted"].as_u64()), (Some(0), Some(0)));
    let third = entry::scheduler(&events, Some(&notices), deadline).await.unwrap();
    assert_eq!((third["settled"].as_u64(), third["notified"].as_u64()), (Some(0), Some(0)), "{third}");

    let sent: Value =
        reqwest::get(format!("{}/store", var("PROMO_TEST_SES_ENDPOINT"))).await.unwrap().json().await.unwrap();
    let mine: Vec<&Value> = sent["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"]["to"].as_array().is_some_and(|to| to.iter().any(|a| a == address.as_str())))
        .collect();
    assert_eq!(mine.len(), 1, "one notice, mailed once");
    assert!(mine[0]["subject"].as_str().unwrap().contains("is yours"), "{}", mine[0]);
    assert!(mine[0]["body"]["text"].as_str().unwrap().contains(waiting.reservation_id.as_str()));
}
