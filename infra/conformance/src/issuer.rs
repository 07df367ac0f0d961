//! Races of the coupon issuer, run against every store adapter (`issuer_race_tests!`):
//! payments reported many times concurrently, and cancellations racing issuance.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::join_all;
use promo_lambdas::issuer::{Issuer, RevocationOutcome};
use promo_lambdas::{campaigns, wallet};
use promo_shared::campaign::Campaign;
use promo_shared::coupon::CouponStatus;
use promo_shared::ids::UserId;
use promo_shared::keys;
use promo_shared::payment::{PaymentEvent, PaymentKind};
use promo_shared::ports::{Clock, IdGen, ManualClock};
use promo_shared::store::{Store, Update};
use promo_shared::testing::{at, campaign_json, paid_event};
use serde_json::json;

use crate::counting::Counting;
use crate::store::{DynStore, ns};

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
    let mut j = campaign_json();
    j["id"] = json!(ns(case));
    let campaign: Campaign = serde_json::from_value(j).unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T12:00:00Z")));
    campaigns::deploy(&**s, &campaign, clock.now()).await.unwrap();
    let issuer = Issuer::new(s.clone(), clock, Arc::new(TestIds::default()));
    (campaign, Arc::new(issuer))
}

fn event(payment: &str, user: &str, kind: PaymentKind) -> PaymentEvent {
    let mut e = paid_event(payment, 60_000, "2026-11-22T12:00:00Z");
    e.user_id = UserId::parse(user).unwrap();
    e.kind = kind;
    e
}

async fn coupons_of(s: &DynStore, user: &str, campaign: &Campaign) -> Vec<promo_shared::coupon::IssuedCoupon> {
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

/// Cancellations racing issuance, in every order: afterwards no cancelled payment has an
/// unused coupon, and a paid event arriving after the cancellation issues nothing.
pub async fn cancellation_racing_issuance_never_leaves_a_coupon(s: DynStore) {
    cancellation_race(s, 100).await;
}

async fn cancellation_race(s: DynStore, payments: usize) {
    let (campaign, issuer) = setup(&s, "cancel").await;
    let p = ns("payc");
    let tasks = (0..payments).flat_map(|n| {
        let (issuer, p) = (issuer.clone(), p.clone());
        [PaymentKind::Paid, PaymentKind::Cancelled, PaymentKind::Paid].into_iter().map(move |kind| {
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
    let key = keys::wallet_coupon(&UserId::parse(&user).unwrap(), &reward.code);
    s.update(&key, &[Update::set("status", json!(CouponStatus::Used))], None).await.unwrap();
    for kind in [PaymentKind::Refunded, PaymentKind::Cancelled] {
        let out = issuer.handle_payment(&event(&pay, &user, kind)).await.unwrap();
        let mine: Vec<_> = out.revocations.iter().filter(|r| r.code == reward.code).collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].outcome, RevocationOutcome::Used);
    }
    assert_eq!(coupons_of(&s, &user, &campaign).await[0].status, CouponStatus::Used);
}

/// Generates one `#[tokio::test]` per issuer race for a store factory.
#[macro_export]
macro_rules! issuer_race_tests {
    ($factory:path $(, #[$attr:meta])* $(,)?) => {
        $crate::issuer_race_tests!(@cases $factory, [$(#[$attr])*],
            payments_reported_five_times_issue_once, cancellation_racing_issuance_never_leaves_a_coupon,
            used_coupons_are_reported_not_revoked, concurrent_events_read_the_campaigns_once,
            a_replay_is_one_round_trip);
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
