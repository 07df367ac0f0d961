//! Races of the coupon issuer, run against every store adapter (`issuer_race_tests!`):
//! payments reported many times concurrently, cancellations racing issuance, rules with a
//! limited stock (never exceeded, units given back by cancellations), and retries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use promo_shared::campaigns;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::coupon::CouponStatus;
use promo_shared::domain::ids::UserId;
use promo_shared::domain::money::Currency;
use promo_shared::domain::payment::PaymentEvent;
use promo_shared::domain::payment::PaymentKind;
use promo_shared::payments::issuer;
use promo_shared::payments::issuer::Issuer;
use promo_shared::payments::issuer::PaymentOutcome;
use promo_shared::payments::issuer::RevocationOutcome;
use promo_shared::payments::issuer::RuleRef;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::clock::ManualClock;
use promo_shared::ports::ids::IdGen;
use promo_shared::ports::store::Store;
use promo_shared::ports::store::Update;
use promo_shared::testing::at;
use promo_shared::testing::campaign_json;
use promo_shared::testing::paid_event;
use promo_shared::wallet;
use serde_json::json;

use crate::counting::Counting;
use crate::flaky::Flaky;
use crate::store::DynStore;
use crate::store::ns;

/// Held by the cases that open hundreds of concurrent requests: each races within itself,
/// and two at once on one stand-in server (moto takes one request at a time) would only
/// overflow its listen queue into connect timeouts.
static BIG_RACE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Unique, well-spread random bytes (tests only: a counter through SplitMix64), seeded from
/// the clock so instances sharing a store do not produce the same codes.
pub struct TestIds(AtomicU64);

impl Default for TestIds {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        TestIds(AtomicU64::new(nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }
}

impl IdGen for TestIds {
    fn new_id(&self) -> String {
        format!("id-{}", self.0.fetch_add(1, Ordering::Relaxed))
    }
    fn random_12(&self) -> [u8; 12] {
        let mut z = self.0.fetch_add(1, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut out = [0u8; 12];
        for chunk in out.chunks_mut(6) {
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..6]);
        }
        out
    }
}

/// A campaign of its own (unique id) with the reward rule `spend-50k`, deployed, and an issuer.
async fn setup(s: &DynStore, case: &str) -> (Campaign, Arc<Issuer<DynStore>>) {
    setup_with(s, case, None).await
}

/// A reward rule of its own: limited to `stock` coupons over shards when given, in a campaign
/// of its own `currency`. Cases share a store and every deployed campaign rewards every
/// payment that qualifies, so each such case uses a currency no other case pays in: no other
/// case's payments take its units or its random bytes.
struct Limited {
    stock: Option<(u32, u16)>,
    currency: &'static str,
}

/// As [`setup`], the rule limited when asked.
async fn setup_with(s: &DynStore, case: &str, limited: Option<Limited>) -> (Campaign, Arc<Issuer<DynStore>>) {
    setup_with_ids(s, case, limited, Arc::new(TestIds::default())).await
}

async fn setup_with_ids(
    s: &DynStore,
    case: &str,
    limited: Option<Limited>,
    ids: Arc<dyn IdGen>,
) -> (Campaign, Arc<Issuer<DynStore>>) {
    let mut j = campaign_json();
    j["id"] = json!(ns(case));
    if let Some(l) = limited {
        if let Some((stock, shards)) = l.stock {
            j["rewards"][0]["stock"] = json!(stock);
            j["rewards"][0]["shards"] = json!(shards);
        }
        j["currency"] = json!(l.currency);
    }
    let campaign: Campaign = serde_json::from_value(j).unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    campaigns::deploy(&**s, &*clock, &campaign).await.unwrap();
    let issuer = Issuer::new(s.clone(), clock, ids);
    (campaign, Arc::new(issuer))
}

fn event(payment: &str, user: &str, kind: PaymentKind) -> PaymentEvent {
    let mut e = paid_event(payment, 60_000, "2026-11-22T12:00:00Z");
    e.user_id = UserId::parse(user).unwrap();
    e.kind = kind;
    e
}

/// A payment event in `currency` (a limited case's campaign's).
fn event_in(currency: Currency, payment: &str, user: &str, kind: PaymentKind) -> PaymentEvent {
    let mut e = event(payment, user, kind);
    e.amount.currency = currency;
    e
}

async fn coupons_of(s: &DynStore, user: &str, campaign: &Campaign) -> Vec<promo_shared::domain::coupon::IssuedCoupon> {
    wallet::list(&**s, &UserId::parse(user).unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.campaign_id == campaign.id)
        .collect()
}

/// 100 payments, each reported 5 times at once: exactly one coupon per payment, and exactly
/// one first issuance per payment among the 500 answers.
pub async fn payments_reported_five_times_issue_once(s: DynStore) {
    reported_five_times(s, 100).await;
}

async fn reported_five_times(s: DynStore, payments: usize) {
    let _alone = BIG_RACE.lock().await;
    let (campaign, issuer) = setup(&s, "five").await;
    let p = ns("pay5");
    let tasks = (0..payments).flat_map(|n| {
        let (issuer, p) = (issuer.clone(), p.clone());
        (0..5).map(move |_| {
            let (issuer, e) = (issuer.clone(), event(&format!("{p}-{n}"), &format!("{p}-u{n}"), PaymentKind::Paid));
            tokio::spawn(async move { issuer.handle_payment(&e).await.unwrap() })
        })
    });
    let outcomes = join_all(tasks).await;
    let firsts = outcomes
        .iter()
        .flat_map(|o| o.as_ref().unwrap().rewards.iter())
        .filter(|r| r.campaign_id == campaign.id && !r.duplicate)
        .count();
    assert_eq!(firsts, payments);
    for n in 0..payments {
        assert_eq!(coupons_of(&s, &format!("{p}-u{n}"), &campaign).await.len(), 1, "payment {n}");
    }
}

/// An issuer over `s` whose round trips are counted; it keeps the campaigns it reads for an
/// hour, so only the first event reads them.
fn counted_issuer(s: &DynStore) -> (Arc<Counting>, Issuer<DynStore>) {
    let counting = Counting::over(s);
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    let issuer = Issuer::new(counting.clone() as DynStore, clock, Arc::new(TestIds::default()))
        .with_campaign_ttl(std::time::Duration::from_secs(3600));
    (counting, issuer)
}

/// 64 payments reported at once to an issuer whose campaign cache is empty: the campaigns
/// are read once, not once per event (the others wait for that one refresh).
pub async fn concurrent_events_read_the_campaigns_once(s: DynStore) {
    let (campaign, _) = setup(&s, "refresh").await;
    let (counting, issuer) = counted_issuer(&s);
    let issuer = Arc::new(issuer);
    let p = ns("refresh");
    let tasks = (0..64).map(|n| {
        let (issuer, e) = (issuer.clone(), event(&format!("{p}-{n}"), &format!("{p}-u{n}"), PaymentKind::Paid));
        tokio::spawn(async move { issuer.handle_payment(&e).await.unwrap() })
    });
    let outcomes = join_all(tasks).await;
    let issued = outcomes
        .iter()
        .flat_map(|o| o.as_ref().unwrap().rewards.iter())
        .filter(|r| r.campaign_id == campaign.id)
        .count();
    assert_eq!(issued, 64);
    assert_eq!(counting.campaign_queries.load(Ordering::SeqCst), 1, "one campaign refresh for 64 concurrent events");
}

/// A payment reported again after its reward was issued: answered with the same coupon in
/// one round trip (the cancelled transaction returns the winner's marker; no read follows).
pub async fn a_replay_is_one_round_trip(s: DynStore) {
    let (campaign, _) = setup(&s, "replay").await;
    let (counting, issuer) = counted_issuer(&s);
    let p = ns("replay");
    let e = event(&p, &format!("{p}-u"), PaymentKind::Paid);
    let first = issuer.handle_payment(&e).await.unwrap();
    let first: Vec<_> = first.rewards.iter().filter(|r| r.campaign_id == campaign.id).collect();
    assert_eq!(first.len(), 1);
    assert!(!first[0].duplicate);

    counting.reset();
    let again = issuer.handle_payment(&e).await.unwrap();
    assert!(again.rewards.iter().all(|r| r.duplicate));
    let mine: Vec<_> = again.rewards.iter().filter(|r| r.campaign_id == campaign.id).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].code, first[0].code, "the coupon issued first");
    assert_eq!(counting.transacts.load(Ordering::SeqCst), again.rewards.len(), "one transaction per reward");
    assert_eq!(counting.gets.load(Ordering::SeqCst), 0, "no read after the cancelled transaction");
    assert_eq!(coupons_of(&s, &format!("{p}-u"), &campaign).await.len(), 1);
}

/// Cancellations and refunds racing issuance, in every order: afterwards no cancelled or
/// refunded payment has an unused coupon, and a paid event arriving after it issues nothing.
pub async fn cancellation_racing_issuance_never_leaves_a_coupon(s: DynStore) {
    cancellation_race(s, 100).await;
}

async fn cancellation_race(s: DynStore, payments: usize) {
    let _alone = BIG_RACE.lock().await;
    let (campaign, issuer) = setup(&s, "cancel").await;
    let p = ns("payc");
    let tasks = (0..payments).flat_map(|n| {
        let (issuer, p) = (issuer.clone(), p.clone());
        // Cancelled and refunded payments alike.
        let undo = if n % 2 == 0 { PaymentKind::Cancelled } else { PaymentKind::Refunded };
        [PaymentKind::Paid, undo, PaymentKind::Paid].into_iter().map(move |kind| {
            let (issuer, e) = (issuer.clone(), event(&format!("{p}-{n}"), &format!("{p}-u{n}"), kind));
            tokio::spawn(async move { issuer.handle_payment(&e).await.unwrap() })
        })
    });
    for r in join_all(tasks).await {
        r.unwrap();
    }
    for n in 0..payments {
        for c in coupons_of(&s, &format!("{p}-u{n}"), &campaign).await {
            assert_eq!(c.status, CouponStatus::Revoked, "payment {n} kept {c:?}");
        }
        // Late redelivery of the paid event: nothing new.
        let late = issuer.handle_payment(&event(&format!("{p}-{n}"), &format!("{p}-u{n}"), PaymentKind::Paid)).await;
        assert!(late.unwrap().rewards.iter().all(|r| r.duplicate || r.campaign_id != campaign.id));
        assert!(
            coupons_of(&s, &format!("{p}-u{n}"), &campaign).await.iter().all(|c| c.status == CouponStatus::Revoked)
        );
    }
}

/// A used coupon is reported, not revoked; a replayed cancellation changes nothing.
pub async fn used_coupons_are_reported_not_revoked(s: DynStore) {
    let (campaign, issuer) = setup(&s, "used").await;
    let (pay, user) = (ns("payu"), ns("useru"));
    let out = issuer.handle_payment(&event(&pay, &user, PaymentKind::Paid)).await.unwrap();
    let reward = out.rewards.iter().find(|r| r.campaign_id == campaign.id).unwrap().clone();
    let key = wallet::items::key(&UserId::parse(&user).unwrap(), &reward.code);
    s.update(&key, &[Update::set("status", json!(CouponStatus::Used))], None).await.unwrap();
    for kind in [PaymentKind::Refunded, PaymentKind::Cancelled] {
        let out = issuer.handle_payment(&event(&pay, &user, kind)).await.unwrap();
        let mine: Vec<_> = out.revocations.iter().filter(|r| r.code == reward.code).collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].outcome, RevocationOutcome::Used);
    }
    assert_eq!(coupons_of(&s, &user, &campaign).await[0].status, CouponStatus::Used);
}

/// This case's rule in an outcome: its rewards, and whether it said the stock was taken.
fn mine<'a>(o: &'a PaymentOutcome, campaign: &Campaign) -> (Vec<&'a issuer::Reward>, bool) {
    let rule = RuleRef { campaign_id: campaign.id.clone(), rule_id: campaign.rewards[0].id.clone() };
    (o.rewards.iter().filter(|r| r.campaign_id == campaign.id).collect(), o.out_of_stock.contains(&rule))
}

async fn stock_left(s: &DynStore, campaign: &Campaign) -> Vec<i64> {
    issuer::reward_stock_left(&**s, campaign, &campaign.rewards[0]).await.unwrap()
}

/// A rule with a stock of 20 over 4 shards, 100 payments each reported 3 times at once:
/// exactly 20 payments get a coupon (one each, every answer naming it), every shard ends
/// at 0, and a payment without a coupon was told the stock is taken.
pub async fn limited_rewards_never_exceed_their_stock(s: DynStore) {
    let _alone = BIG_RACE.lock().await;
    let (campaign, issuer) = setup_with(&s, "limited", Some(Limited { stock: Some((20, 4)), currency: "JPY" })).await;
    let cur = campaign.currency;
    let p = ns("payl");
    let tasks = (0..100).flat_map(|n| {
        let (issuer, p) = (issuer.clone(), p.clone());
        (0..3).map(move |_| {
            let (issuer, e) =
                (issuer.clone(), event_in(cur, &format!("{p}-{n}"), &format!("{p}-u{n}"), PaymentKind::Paid));
            tokio::spawn(async move { (n, issuer.handle_payment(&e).await.unwrap()) })
        })
    });
    let mut codes: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut firsts = 0;
    let mut told_out_of_stock = BTreeSet::new();
    for answer in join_all(tasks).await {
        let (n, outcome) = answer.unwrap();
        let (rewards, out_of_stock) = mine(&outcome, &campaign);
        assert!(rewards.len() + usize::from(out_of_stock) == 1, "payment {n}: {outcome:?}");
        for r in rewards {
            codes.entry(n).or_default().insert(r.code.to_string());
            firsts += usize::from(!r.duplicate);
        }
        if out_of_stock {
            told_out_of_stock.insert(n);
        }
    }
    assert_eq!(firsts, 20, "one first issuance per unit of stock");
    assert_eq!(codes.len(), 20, "20 payments rewarded");
    let mut coupons = 0;
    for n in 0..100 {
        let held = coupons_of(&s, &format!("{p}-u{n}"), &campaign).await;
        match codes.get(&n) {
            Some(named) => {
                assert_eq!(held.len(), 1, "payment {n}");
                assert_eq!(
                    named,
                    &BTreeSet::from([held[0].code.to_string()]),
                    "payment {n}: every answer names its coupon"
                );
            }
            None => {
                assert!(held.is_empty(), "payment {n}");
                assert!(told_out_of_stock.contains(&n), "payment {n} was told why it got nothing");
            }
        }
        coupons += held.len();
    }
    assert_eq!(coupons, 20);
    assert_eq!(stock_left(&s, &campaign).await, [0, 0, 0, 0]);
}

/// A rule with a stock of 10 over 2 shards, 40 payments each paid, cancelled or refunded, and
/// paid again at once: no coupon stays unused, every unit is back (each exactly once: each
/// shard ends at its initial share), and the stock serves 10 new payments, not an 11th.
pub async fn cancelled_limited_rewards_give_their_stock_back(s: DynStore) {
    let _alone = BIG_RACE.lock().await;
    let (campaign, issuer) = setup_with(&s, "giveback", Some(Limited { stock: Some((10, 2)), currency: "CHF" })).await;
    let cur = campaign.currency;
    let p = ns("payg");
    let tasks = (0..40).flat_map(|n| {
        let (issuer, p) = (issuer.clone(), p.clone());
        let undo = if n % 2 == 0 { PaymentKind::Cancelled } else { PaymentKind::Refunded };
        [PaymentKind::Paid, undo, PaymentKind::Paid].into_iter().map(move |kind| {
            let (issuer, e) = (issuer.clone(), event_in(cur, &format!("{p}-{n}"), &format!("{p}-u{n}"), kind));
            tokio::spawn(async move { issuer.handle_payment(&e).await.unwrap() })
        })
    });
    for r in join_all(tasks).await {
        r.unwrap();
    }
    for n in 0..40 {
        for c in coupons_of(&s, &format!("{p}-u{n}"), &campaign).await {
            assert_eq!(c.status, CouponStatus::Revoked, "payment {n} kept {c:?}");
        }
    }
    assert_eq!(stock_left(&s, &campaign).await, [5, 5], "every unit back, none twice");

    let fresh = ns("payf");
    let tasks = (0..11).map(|n| {
        let (issuer, e) =
            (issuer.clone(), event_in(cur, &format!("{fresh}-{n}"), &format!("{fresh}-u{n}"), PaymentKind::Paid));
        tokio::spawn(async move { issuer.handle_payment(&e).await.unwrap() })
    });
    let (mut rewarded, mut refused) = (0, 0);
    for answer in join_all(tasks).await {
        let outcome = answer.unwrap();
        let (rewards, out_of_stock) = mine(&outcome, &campaign);
        rewarded += rewards.len();
        refused += usize::from(out_of_stock);
    }
    assert_eq!((rewarded, refused), (10, 1));
    assert_eq!(stock_left(&s, &campaign).await, [0, 0]);
}

/// With a stock of 2: a used coupon keeps its unit when its payment is cancelled; a revoked
/// one gives it back once (a replayed refund does not give it again), and the next payment
/// that was told "out of stock" gets it when paid again.
pub async fn a_used_limited_reward_keeps_its_unit(s: DynStore) {
    let (campaign, issuer) = setup_with(&s, "usedl", Some(Limited { stock: Some((2, 1)), currency: "SEK" })).await;
    let cur = campaign.currency;
    let p = ns("payk");
    let pay = |n: u32, kind| event_in(cur, &format!("{p}-{n}"), &format!("{p}-u{n}"), kind);
    let first = issuer.handle_payment(&pay(1, PaymentKind::Paid)).await.unwrap();
    let code = mine(&first, &campaign).0[0].code.clone();
    let key = wallet::items::key(&UserId::parse(format!("{p}-u1")).unwrap(), &code);
    s.update(&key, &[Update::set("status", json!(CouponStatus::Used))], None).await.unwrap();
    let undo = issuer.handle_payment(&pay(1, PaymentKind::Cancelled)).await.unwrap();
    assert_eq!(undo.revocations.iter().find(|r| r.code == code).unwrap().outcome, RevocationOutcome::Used);
    assert_eq!(stock_left(&s, &campaign).await, [1], "a used coupon keeps its unit");

    let second = issuer.handle_payment(&pay(2, PaymentKind::Paid)).await.unwrap();
    let code2 = mine(&second, &campaign).0[0].code.clone();
    assert_eq!(stock_left(&s, &campaign).await, [0]);
    let third = issuer.handle_payment(&pay(3, PaymentKind::Paid)).await.unwrap();
    assert_eq!(mine(&third, &campaign), (vec![], true), "out of stock");

    for expected in [RevocationOutcome::Revoked, RevocationOutcome::AlreadyRevoked] {
        let undo = issuer.handle_payment(&pay(2, PaymentKind::Refunded)).await.unwrap();
        assert_eq!(undo.revocations.iter().find(|r| r.code == code2).unwrap().outcome, expected);
        assert_eq!(stock_left(&s, &campaign).await, [1], "given back once");
    }
    let again = issuer.handle_payment(&pay(3, PaymentKind::Paid)).await.unwrap();
    let (rewards, out_of_stock) = mine(&again, &campaign);
    assert!(rewards.len() == 1 && !rewards[0].duplicate && !out_of_stock, "{again:?}");
    assert_eq!(stock_left(&s, &campaign).await, [0]);
}

/// Throttled writes and reads are retried (with backoff) and then succeed; retries running
/// out surface as retryable; a transaction whose answer was lost after it committed is sent
/// again unchanged, so the payment gets one coupon, reported as issued (not as a
/// duplicate), and one unit taken.
pub async fn the_issuer_retries_and_a_lost_answer_issues_once(s: DynStore) {
    let (campaign, _) = setup_with(&s, "retry", Some(Limited { stock: Some((5, 1)), currency: "NOK" })).await;
    let cur = campaign.currency;
    let flaky = Flaky::over(&s);
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    let issuer = Issuer::new(flaky.clone() as DynStore, clock, Arc::new(TestIds::default()))
        .with_retry(promo_shared::retry::RetryPolicy { retries: 8, base: Duration::ZERO, cap: Duration::ZERO });
    let p = ns("payr");
    let pay = |n: u32, kind| event_in(cur, &format!("{p}-{n}"), &format!("{p}-u{n}"), kind);

    flaky.throttle_queries.store(2, Ordering::SeqCst);
    flaky.throttle_transacts.store(3, Ordering::SeqCst);
    let out = issuer.handle_payment(&pay(1, PaymentKind::Paid)).await.unwrap();
    let (rewards, _) = mine(&out, &campaign);
    assert!(rewards.len() == 1 && !rewards[0].duplicate, "{out:?}");
    assert_eq!(flaky.throttle_transacts.load(Ordering::SeqCst), 0, "the throttled attempts were made");

    // Every transaction of this payment (one per deployed campaign's rule) loses its first answer.
    flaky.lose_first_answers.store(true, Ordering::SeqCst);
    let out = issuer.handle_payment(&pay(2, PaymentKind::Paid)).await.unwrap();
    flaky.lose_first_answers.store(false, Ordering::SeqCst);
    assert!(!out.rewards.is_empty() && out.rewards.iter().all(|r| !r.duplicate), "{out:?}");
    assert_eq!(coupons_of(&s, &format!("{p}-u2"), &campaign).await.len(), 1);
    assert_eq!(stock_left(&s, &campaign).await, [3], "one unit for each of two payments");

    flaky.throttle_transacts.store(1000, Ordering::SeqCst);
    let err = issuer.handle_payment(&pay(3, PaymentKind::Paid)).await.unwrap_err();
    flaky.throttle_transacts.store(0, Ordering::SeqCst);
    assert!(err.is_retryable(), "{err}");
    assert!(coupons_of(&s, &format!("{p}-u3"), &campaign).await.is_empty());

    for n in [&flaky.throttle_updates, &flaky.throttle_queries, &flaky.throttle_transacts] {
        n.store(2, Ordering::SeqCst);
    }
    let out = issuer.handle_payment(&pay(2, PaymentKind::Refunded)).await.unwrap();
    let revoked: Vec<_> = out.revocations.iter().filter(|r| r.outcome == RevocationOutcome::Revoked).collect();
    assert_eq!(revoked.len(), out.revocations.len(), "{out:?}");
    assert_eq!(stock_left(&s, &campaign).await, [4]);
    assert!(coupons_of(&s, &format!("{p}-u2"), &campaign).await.iter().all(|c| c.status == CouponStatus::Revoked));
}

/// The edge's hand-off secret the function URL deliveries of [`delivery`] are signed with.
pub const HANDOFF_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The edge's hand-off of `body` to the issuer's function URL, as AWS delivers it: signed
/// with `secret` (Standard Webhooks) under the delivery id `id`, at `signed_at` (the issuer
/// checks the timestamp against its own clock).
pub fn hand_off(id: &str, body: &str, secret: &str, signed_at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let ts = signed_at.timestamp();
    let sig = promo_shared::payments::webhooks::standard::Secret::parse(secret).unwrap().sign(id, ts, body.as_bytes());
    json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json", "webhook-id": id,
                    "webhook-timestamp": ts.to_string(), "webhook-signature": sig},
        "requestContext": {"accountId": "anonymous", "apiId": "x", "domainName": "x.lambda-url.us-east-1.on.aws",
            "domainPrefix": "x", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "edge"}},
        "body": body, "isBase64Encoded": false
    })
}

/// One delivery of a payment event in the shape AWS hands the issuer Lambda: `0` and `1` the
/// edge's signed hand-off to the function URL (how a provider's webhook and the shop's client
/// callback each arrive, under their own delivery ids), `2` and `3` an SQS batch, `4` an
/// Amazon MQ (RabbitMQ) batch.
pub fn delivery(way: usize, payment: &str, body: &str, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    use base64::Engine;
    match way {
        0 | 1 => hand_off(&format!("{}:{payment}", ["webhook", "callback"][way]), body, HANDOFF_SECRET, at),
        2 | 3 => json!({"Records": [{"messageId": format!("{payment}-{way}"), "receiptHandle": "h", "body": body,
            "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:1:payment-events", "awsRegion": "us-east-1"}]}),
        _ => json!({"eventSource": "aws:rmq", "eventSourceArn": "arn:aws:mq:us-east-1:1:broker:b",
            "rmqMessagesByQueue": {"payment-events::/": [{"redelivered": false,
                "data": base64::engine::general_purpose::STANDARD.encode(body),
                "basicProperties": {"contentType": "application/json", "contentEncoding": null, "headers": {},
                    "deliveryMode": 2, "priority": 0, "correlationId": null, "replyTo": null, "expiration": null,
                    "messageId": null, "timestamp": null, "type": null, "userId": null, "appId": null,
                    "clusterId": null, "bodySize": body.len()}}]}}),
    }
}

/// 100 payments, each delivered 5 times at once through every way into the issuer Lambda
/// ([`delivery`]: webhook and callback hand-offs, SQS, Amazon MQ): every invocation
/// succeeds, and each payment has exactly one coupon.
pub async fn payments_delivered_through_every_entry_issue_once(s: DynStore) {
    let _alone = BIG_RACE.lock().await;
    let (campaign, issuer) = setup(&s, "entries").await;
    let secrets = Arc::new(vec![promo_shared::payments::webhooks::standard::Secret::parse(HANDOFF_SECRET).unwrap()]);
    let p = ns("paye");
    let tasks = (0..100).flat_map(|n| {
        let (issuer, secrets, p) = (issuer.clone(), secrets.clone(), p.clone());
        (0..5).map(move |way| {
            let (issuer, secrets) = (issuer.clone(), secrets.clone());
            let payment = format!("{p}-{n}");
            let body = serde_json::to_string(&event(&payment, &format!("{p}-u{n}"), PaymentKind::Paid)).unwrap();
            let invocation = delivery(way, &payment, &body, issuer.clock.now());
            tokio::spawn(
                async move { (way, promo_lambdas::entry::handle(&*issuer, &secrets, invocation).await.unwrap()) },
            )
        })
    });
    for answer in join_all(tasks).await {
        let (way, out) = answer.unwrap();
        match way {
            0 | 1 => assert_eq!(out["statusCode"], 200, "{out}"),
            2 | 3 => assert_eq!(out["batchItemFailures"], json!([]), "{out}"),
            _ => assert_eq!(out["handled"], 1, "{out}"),
        }
    }
    for n in 0..100 {
        assert_eq!(coupons_of(&s, &format!("{p}-u{n}"), &campaign).await.len(), 1, "payment {n}");
    }
}

/// Random bytes from a script first, then fresh ones: to make two issuances draw the same code.
pub struct Scripted {
    script: std::sync::Mutex<std::collections::VecDeque<[u8; 12]>>,
    rest: TestIds,
}

impl Scripted {
    pub fn new(script: impl IntoIterator<Item = [u8; 12]>) -> Scripted {
        Scripted { script: std::sync::Mutex::new(script.into_iter().collect()), rest: TestIds::default() }
    }
}

impl IdGen for Scripted {
    fn new_id(&self) -> String {
        self.rest.new_id()
    }
    fn random_12(&self) -> [u8; 12] {
        let next = self.script.lock().unwrap().pop_front();
        next.unwrap_or_else(|| self.rest.random_12())
    }
}

/// Two payments whose issuances draw the same code: the second is refused by the code's
/// condition and issued under a fresh code; the first coupon and its code item are untouched.
pub async fn a_code_collision_is_retried_with_a_fresh_code(s: DynStore) {
    let same = TestIds::default().random_12();
    let ids = Arc::new(Scripted::new([same, same]));
    let isolated = Limited { stock: None, currency: "DKK" };
    let (campaign, issuer) = setup_with_ids(&s, "collide", Some(isolated), ids).await;
    let cur = campaign.currency;
    let p = ns("payx");
    let code = promo_shared::domain::coupon::CouponCode::from_random(&same);
    let first = issuer.handle_payment(&event_in(cur, &format!("{p}-1"), &format!("{p}-u1"), PaymentKind::Paid)).await;
    assert_eq!(mine(&first.unwrap(), &campaign).0[0].code, code);
    let second = issuer.handle_payment(&event_in(cur, &format!("{p}-2"), &format!("{p}-u2"), PaymentKind::Paid)).await;
    let second = second.unwrap();
    let (rewards, _) = mine(&second, &campaign);
    assert!(rewards.len() == 1 && !rewards[0].duplicate && rewards[0].code != code, "{second:?}");
    let held = coupons_of(&s, &format!("{p}-u1"), &campaign).await;
    assert_eq!((held.len(), &held[0].code, held[0].status), (1, &code, CouponStatus::Issued));
    assert_eq!(coupons_of(&s, &format!("{p}-u2"), &campaign).await.len(), 1);
    let owner = s.get(&wallet::items::code_key(&code)).await.unwrap().unwrap();
    assert_eq!(owner.get("user_id"), Some(&json!(format!("{p}-u1"))), "the code item still names the first owner");
}

/// A campaign of its own in `currency` with two reward rules: `small` (spend 30,000 → 1,000
/// off) and `big` (spend 50,000 → 5,000 off, a stock of `big_stock` in one shard), deployed.
async fn two_tier(s: &DynStore, case: &str, currency: &str, big_stock: u32) -> (Campaign, Arc<Issuer<DynStore>>) {
    let campaign: Campaign = serde_json::from_value(json!({
        "id": ns(case), "name": "Two tiers", "currency": currency,
        "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
        "coupons": [
            {"id": "small-off", "kind": "cart", "discount": {"fixed": 1000}, "valid_days": 30},
            {"id": "big-off", "kind": "cart", "discount": {"fixed": 5000}, "valid_days": 30}
        ],
        "rewards": [
            {"id": "small", "coupon": "small-off", "min_payment": 30000},
            {"id": "big", "coupon": "big-off", "min_payment": 50000, "stock": big_stock}
        ]
    }))
    .unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    campaigns::deploy(&**s, &*clock, &campaign).await.unwrap();
    (campaign, Arc::new(Issuer::new(s.clone(), clock, Arc::new(TestIds::default()))))
}

/// A refund of `refunded` of a payment of 60,000 in `currency` (partial when less).
fn refund_of(currency: Currency, payment: &str, user: &str, refunded: i64) -> PaymentEvent {
    let mut e = event_in(currency, payment, user, PaymentKind::Refunded);
    e.amount.amount = promo_shared::domain::money::Amount::new(refunded).unwrap();
    e.paid_amount = Some(promo_shared::domain::money::Amount::new(60_000).unwrap());
    e
}

/// The status of each of a user's coupons of `campaign`, by template.
async fn statuses(s: &DynStore, user: &str, campaign: &Campaign) -> BTreeMap<String, Vec<CouponStatus>> {
    let mut out: BTreeMap<String, Vec<CouponStatus>> = BTreeMap::new();
    for c in coupons_of(s, user, campaign).await {
        out.entry(c.template.id.to_string()).or_default().push(c.status);
    }
    out
}

/// A payment of 60,000 earns both tiers; a partial refund of 20,000 leaves 40,000 paid: the
/// `big` coupon (50,000 minimum) is revoked and its unit given back, `small` stays. A replay
/// of the payment does not earn `big` again; an older, smaller partial refund arriving late
/// raises nothing; a further refund down to 25,000 revokes `small`; a full refund finds
/// nothing left. (Before partial refunds were told apart, the first refund revoked both and
/// the payment could never earn again.)
pub async fn partial_refunds_keep_what_the_rest_still_earns(s: DynStore) {
    let (campaign, issuer) = two_tier(&s, "partial", "AUD", 3).await;
    let cur = campaign.currency;
    let (pay, user) = (ns("payp"), ns("userp"));
    let big_left = || async { issuer::reward_stock_left(&*s, &campaign, &campaign.rewards[1]).await.unwrap() };
    let paid = issuer.handle_payment(&event_in(cur, &pay, &user, PaymentKind::Paid)).await.unwrap();
    assert_eq!(paid.rewards.iter().filter(|r| r.campaign_id == campaign.id).count(), 2);
    assert_eq!(big_left().await, [2]);

    let partial = issuer.handle_payment(&refund_of(cur, &pay, &user, 20_000)).await.unwrap();
    assert_eq!(partial.revocations.len(), 1, "{partial:?}");
    assert_eq!(partial.revocations[0].outcome, RevocationOutcome::Revoked);
    let now = statuses(&s, &user, &campaign).await;
    assert_eq!(now["small-off"], [CouponStatus::Issued], "40,000 still paid meets 30,000");
    assert_eq!(now["big-off"], [CouponStatus::Revoked], "40,000 no longer meets 50,000");
    assert_eq!(big_left().await, [3], "the unit is back");

    // A replay is answered with the coupons issued before (the revoked one stays revoked).
    let replay = issuer.handle_payment(&event_in(cur, &pay, &user, PaymentKind::Paid)).await.unwrap();
    assert!(replay.rewards.iter().filter(|r| r.campaign_id == campaign.id).all(|r| r.duplicate), "{replay:?}");
    let now = statuses(&s, &user, &campaign).await;
    assert_eq!((now["small-off"].len(), now["big-off"].as_slice()), (1, &[CouponStatus::Revoked][..]));
    assert_eq!(big_left().await, [3], "no unit taken by the replay");

    let older = issuer.handle_payment(&refund_of(cur, &pay, &user, 5_000)).await.unwrap();
    assert!(older.revocations.iter().all(|r| r.outcome == RevocationOutcome::AlreadyRevoked), "{older:?}");
    assert_eq!(statuses(&s, &user, &campaign).await["small-off"], [CouponStatus::Issued]);

    let further = issuer.handle_payment(&refund_of(cur, &pay, &user, 35_000)).await.unwrap();
    assert!(further.revocations.iter().any(|r| r.outcome == RevocationOutcome::Revoked), "{further:?}");
    assert_eq!(statuses(&s, &user, &campaign).await["small-off"], [CouponStatus::Revoked]);

    let full = issuer.handle_payment(&refund_of(cur, &pay, &user, 60_000)).await.unwrap();
    assert!(full.revocations.iter().all(|r| r.outcome == RevocationOutcome::AlreadyRevoked), "{full:?}");
    assert_eq!(big_left().await, [3], "every unit given back once");
}

/// 60 payments, each paid, partly refunded (40,000 of 60,000 left) and paid again, all at
/// once: every payment keeps exactly one `small` coupon, none keeps an unused `big` one,
/// and the `big` stock ends where it started.
pub async fn partial_refunds_racing_issuance(s: DynStore) {
    let _alone = BIG_RACE.lock().await;
    let (campaign, issuer) = two_tier(&s, "partial-race", "CAD", 1000).await;
    let cur = campaign.currency;
    let p = ns("paypr");
    let tasks = (0..60).flat_map(|n| {
        let (issuer, p) = (issuer.clone(), p.clone());
        (0..3).map(move |k| {
            let (pay, user) = (format!("{p}-{n}"), format!("{p}-u{n}"));
            let e = if k == 1 {
                refund_of(cur, &pay, &user, 20_000)
            } else {
                event_in(cur, &pay, &user, PaymentKind::Paid)
            };
            let issuer = issuer.clone();
            tokio::spawn(async move { issuer.handle_payment(&e).await.unwrap() })
        })
    });
    for r in join_all(tasks).await {
        r.unwrap();
    }
    for n in 0..60 {
        let held = statuses(&s, &format!("{p}-u{n}"), &campaign).await;
        assert_eq!(held.get("small-off").map(Vec::as_slice), Some(&[CouponStatus::Issued][..]), "payment {n}");
        assert!(held.get("big-off").is_none_or(|b| b.iter().all(|s| *s == CouponStatus::Revoked)), "payment {n}");
    }
    assert_eq!(issuer::reward_stock_left(&*s, &campaign, &campaign.rewards[1]).await.unwrap(), [1000]);
}

/// A reward handled after its campaign ended (a late delivery of a payment made during it)
/// is issued with a window a shopper can use: at least `MIN_REWARD_VALIDITY` from issuance,
/// never ending before it starts.
pub async fn a_late_reward_is_born_valid(s: DynStore) {
    let mut j = campaign_json();
    j["id"] = json!(ns("late"));
    j["currency"] = json!("HKD");
    j["coupons"][0].as_object_mut().unwrap().remove("valid_days");
    let campaign: Campaign = serde_json::from_value(j).unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    campaigns::deploy(&*s, &*clock, &campaign).await.unwrap();
    let issuer = Issuer::new(s.clone(), clock.clone(), Arc::new(TestIds::default()));
    let cur = campaign.currency;
    // Paid during the campaign; reported a week after it ended.
    clock.set(at("2026-12-08T00:00:00Z"));
    let (pay, user) = (ns("paylate"), ns("userlate"));
    issuer.handle_payment(&event_in(cur, &pay, &user, PaymentKind::Paid)).await.unwrap();
    let held = coupons_of(&s, &user, &campaign).await;
    assert_eq!(held.len(), 1);
    assert!(held[0].starts_at < held[0].ends_at, "{:?}", held[0]);
    assert_eq!(held[0].ends_at, clock.now() + issuer::MIN_REWARD_VALIDITY);
    assert!(held[0].usable_at(clock.now()));
}

/// A rule with a stock of 50 over 2 shards; 150 payments paid at once, a third of them
/// cancelled at once too, over two issuer instances (one rereading the campaigns for every
/// event, one caching them), while two deployers redeploy the rule with other stocks and
/// shard counts (some refused as below what was issued, some losing the version race):
/// afterwards the unrevoked coupons plus the units left are exactly the stock in force,
/// nothing sits beyond the layout, and new payments take exactly what is left.
pub async fn reward_stock_redeploys_racing_payments_and_refunds(s: DynStore) {
    let _alone = BIG_RACE.lock().await;
    let (campaign, cached) = setup_with(&s, "restock", Some(Limited { stock: Some((50, 2)), currency: "PLN" })).await;
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    let rereading =
        Arc::new(Issuer::new(s.clone(), clock, Arc::new(TestIds::default())).with_campaign_ttl(Duration::ZERO));
    let cur = campaign.currency;
    let p = ns("payrs");
    let redeploy = |stock: u32, shards: u16| {
        let mut spec = campaign.spec().clone();
        (spec.rewards[0].stock, spec.rewards[0].shards) = (Some(stock), shards);
        Campaign::new(spec).unwrap()
    };
    let payments = (0..150).flat_map(|n| {
        let issuer = if n % 2 == 0 { cached.clone() } else { rereading.clone() };
        let kinds: &[PaymentKind] =
            if n % 3 == 0 { &[PaymentKind::Paid, PaymentKind::Cancelled] } else { &[PaymentKind::Paid] };
        let p = p.clone();
        kinds.iter().map(move |kind| {
            let (issuer, e) = (issuer.clone(), event_in(cur, &format!("{p}-{n}"), &format!("{p}-u{n}"), *kind));
            tokio::spawn(async move { issuer.handle_payment(&e).await.unwrap() })
        })
    });
    let deployers =
        [[(50u32, 4u16), (40, 1), (70, 3), (60, 2), (65, 5)], [(45, 3), (80, 6), (55, 2), (75, 4), (60, 1)]].map(
            |plan| {
                let (s, plan) = (s.clone(), plan.map(|(stock, shards)| redeploy(stock, shards)));
                tokio::spawn(async move {
                    for next in plan {
                        match campaigns::deploy(&*s, &ManualClock::new(at("2026-11-22T12:00:00Z")), &next).await {
                            Ok(_)
                            | Err(
                                campaigns::DeployError::Conflict(_)
                                | campaigns::DeployError::Refused { .. }
                                | campaigns::DeployError::Busy(_),
                            ) => {}
                            Err(e) => panic!("unexpected deploy error: {e}"),
                        }
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                })
            },
        );
    for r in join_all(payments).await {
        r.unwrap();
    }
    for d in join_all(deployers).await {
        d.unwrap();
    }
    let stored = campaigns::get(&*s, &campaign.id).await.unwrap().unwrap();
    let (in_force, layout) = (i64::from(stored.rewards[0].stock.unwrap()), usize::from(stored.rewards[0].shards));
    let slots: Vec<_> =
        (0..8).map(|n| campaigns::stock::reward_key(&campaign.id, &campaign.rewards[0].id, n)).collect();
    let left = campaigns::remaining(&*s, &slots).await.unwrap();
    assert!(left[layout..].iter().all(|l| *l == 0), "stranded beyond {layout} shards: {left:?}");
    let mut held = 0i64;
    for n in 0..150 {
        held += coupons_of(&s, &format!("{p}-u{n}"), &campaign)
            .await
            .iter()
            .filter(|c| c.status == CouponStatus::Issued)
            .count() as i64;
    }
    assert_eq!(held + left.iter().sum::<i64>(), in_force, "held {held}, left {left:?}, in force {in_force}");
    let mut more = 0i64;
    for n in 0.. {
        let e = event_in(cur, &format!("{p}-late-{n}"), &format!("{p}-late-u{n}"), PaymentKind::Paid);
        let outcome = rereading.handle_payment(&e).await.unwrap();
        let (rewards, out_of_stock) = mine(&outcome, &campaign);
        more += rewards.len() as i64;
        if out_of_stock {
            break;
        }
    }
    assert_eq!(held + more, in_force, "exactly the stock in force, in all");
}

/// A unit given back after a redeploy gathered the rule's stock into fewer shards goes to a
/// shard of the layout in force, even from an issuer whose cached campaign still has the
/// old layout: 8 coupons issued from 4 shards, the rule redeployed over 1, the 8 payments
/// cancelled through the stale issuer — all 8 units are back in shard 0, none stranded in
/// the emptied shards, and 8 new payments (not 9) get them.
pub async fn a_unit_given_back_after_a_reshard_lands_in_the_layout_in_force(s: DynStore) {
    let (campaign, _) = setup_with(&s, "regather", Some(Limited { stock: Some((8, 4)), currency: "CZK" })).await;
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    let stale =
        Issuer::new(s.clone(), clock, Arc::new(TestIds::default())).with_campaign_ttl(Duration::from_secs(3600));
    let cur = campaign.currency;
    let p = ns("payrg");
    let pay = |n: usize, kind| event_in(cur, &format!("{p}-{n}"), &format!("{p}-u{n}"), kind);
    for n in 0..8 {
        assert_eq!(mine(&stale.handle_payment(&pay(n, PaymentKind::Paid)).await.unwrap(), &campaign).0.len(), 1);
    }
    assert_eq!(stock_left(&s, &campaign).await, [0, 0, 0, 0]);
    let mut spec = campaign.spec().clone();
    spec.rewards[0].shards = 1;
    let gathered = Campaign::new(spec).unwrap();
    campaigns::deploy(&*s, &ManualClock::new(at("2026-11-22T12:00:00Z")), &gathered).await.unwrap();
    for n in 0..8 {
        let out = stale.handle_payment(&pay(n, PaymentKind::Cancelled)).await.unwrap();
        assert_eq!(out.revocations.len(), 1);
    }
    let slots: Vec<_> =
        (0..4).map(|n| campaigns::stock::reward_key(&campaign.id, &campaign.rewards[0].id, n)).collect();
    assert_eq!(campaigns::remaining(&*s, &slots).await.unwrap(), [8, 0, 0, 0], "no unit stranded");
    let fresh =
        Issuer::new(s.clone(), Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z"))), Arc::new(TestIds::default()));
    let mut rewarded = 0;
    for n in 100..109 {
        rewarded += mine(&fresh.handle_payment(&pay(n, PaymentKind::Paid)).await.unwrap(), &gathered).0.len();
    }
    assert_eq!(rewarded, 8);
}

/// Generates one `#[tokio::test]` per issuer race for a store factory.
#[macro_export]
macro_rules! issuer_race_tests {
    ($factory:path $(, #[$attr:meta])* $(,)?) => {
        $crate::issuer_race_tests!(@cases $factory, [$(#[$attr])*],
            payments_reported_five_times_issue_once, cancellation_racing_issuance_never_leaves_a_coupon,
            used_coupons_are_reported_not_revoked, concurrent_events_read_the_campaigns_once,
            a_replay_is_one_round_trip, limited_rewards_never_exceed_their_stock,
            cancelled_limited_rewards_give_their_stock_back, a_used_limited_reward_keeps_its_unit,
            the_issuer_retries_and_a_lost_answer_issues_once, payments_delivered_through_every_entry_issue_once,
            a_code_collision_is_retried_with_a_fresh_code, partial_refunds_keep_what_the_rest_still_earns,
            partial_refunds_racing_issuance, a_late_reward_is_born_valid,
            reward_stock_redeploys_racing_payments_and_refunds,
            a_unit_given_back_after_a_reshard_lands_in_the_layout_in_force);
    };
    (@cases $factory:path, $attrs:tt, $($case:ident),* $(,)?) => {
        $( $crate::issuer_race_tests!(@one $factory, $attrs, $case); )*
    };
    (@one $factory:path, [$(#[$attr:meta])*], $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn $case() {
            $crate::issuer::$case($factory().await).await;
        }
    };
}
