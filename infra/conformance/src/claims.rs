//! First-come-first-served claims against a real store adapter: the claimer of
//! `promo_shared::claims` over every store (embedded SQLite, DynamoDB through the SDK), so
//! the stock and per-user invariants are shown under real races, not assumed.
//!
//! ```ignore
//! promo_conformance::claims_conformance_tests!(store);
//! ```
//!
//! Also [`ThrottlingStore`]: a store wrapper that answers `Throttled` once an item has taken
//! more than K writes in the current (virtual) time window — DynamoDB's per-partition write
//! limit in miniature — to show what sharding a stock counter buys.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use promo_shared::campaigns;
use promo_shared::claims;
use promo_shared::claims::ClaimError;
use promo_shared::claims::Claimed;
use promo_shared::claims::Claimer;
use promo_shared::claims::SoldOutHook;
use promo_shared::claims::sell_out::Republished;
use promo_shared::claims::sell_out::Republisher;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::campaign::CampaignStatus;
use promo_shared::domain::coupon::IssueSource;
use promo_shared::domain::ids::CampaignId;
use promo_shared::domain::ids::UserId;
use promo_shared::ports::clock::Clock;
use promo_shared::ports::clock::ManualClock;
use promo_shared::ports::ids::IdGen;
use promo_shared::ports::store::Cond;
use promo_shared::ports::store::Item;
use promo_shared::ports::store::Key;
use promo_shared::ports::store::Page;
use promo_shared::ports::store::Query;
use promo_shared::ports::store::Store;
use promo_shared::ports::store::StoreError;
use promo_shared::ports::store::TxOp;
use promo_shared::ports::store::Update;
use promo_shared::retry::RetryPolicy;
use promo_shared::testing::at;
use serde_json::json;

use crate::store::DynStore;

use crate::store::ns;

/// Random-enough bytes for coupon codes and shard picks, seeded from the clock so that
/// instances (and test runs sharing a table) do not repeat each other's codes.
#[derive(Debug)]
pub struct SeededIds(AtomicU64);

impl Default for SeededIds {
    fn default() -> Self {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        SeededIds(AtomicU64::new((t as u64) ^ INSTANCES.fetch_add(1, Ordering::Relaxed).rotate_left(40)))
    }
}

impl IdGen for SeededIds {
    fn new_id(&self) -> String {
        format!("id-{}", self.0.fetch_add(1, Ordering::Relaxed))
    }
    fn random_12(&self) -> [u8; 12] {
        // SplitMix64 over a per-instance counter.
        let mut out = [0u8; 12];
        for chunk in out.chunks_mut(4) {
            let mut z = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..4]);
        }
        out
    }
}

/// A campaign of November 2026 whose coupon `drop` is claimed first come, first served.
pub fn claim_campaign(id: &str, stock: u32, per_user_limit: u32, shards: u16) -> Campaign {
    serde_json::from_value(json!({
        "id": id, "name": "Flash drop", "currency": "KRW",
        "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
        "coupons": [{"id": "drop", "kind": "cart", "discount": {"fixed": 3000}}],
        "claim": {"coupon": "drop", "stock": stock, "per_user_limit": per_user_limit, "shards": shards}
    }))
    .unwrap()
}

/// A clock inside the campaign's window.
pub fn during() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at("2026-11-15T12:00:00Z")))
}

fn claimer(s: &DynStore, clock: Arc<ManualClock>) -> Claimer<DynStore> {
    Claimer::new(s.clone(), clock, Arc::new(SeededIds::default()))
}

async fn deploy(s: &DynStore, c: &Campaign) {
    campaigns::deploy(&**s, &ManualClock::new(at("2026-10-01T00:00:00Z")), c).await.unwrap();
}

async fn wallet_len(s: &DynStore, user: &UserId) -> usize {
    promo_shared::wallet::list(&**s, user).await.unwrap().len()
}

/// 1,000 concurrent claims (400 shoppers, 2–3 attempts each, over 4 claimer instances) on a
/// stock of 100 in 4 shards, 1 per shopper: exactly 100 coupons, every shard at 0, nobody
/// over the limit.
pub async fn claims_race_thousand_on_stock_hundred(s: DynStore) {
    claims_race(s, 1000, 400, 100).await;
}

/// Held by the cases that must not overlap one another:
/// - those that open hundreds of concurrent requests: each races within itself, and two at
///   once on one stand-in server (moto takes one request at a time) would only overflow its
///   listen queue into connect timeouts;
/// - those that republish the price book on a shared store: a publisher that read before
///   another campaign sold out may land its write after the other's, and only its own
///   recheck (a moment later) fixes that — a case asserting in that moment would flake.
static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Holds [`EXCLUSIVE`] for a case of another suite that races hundreds of requests.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    EXCLUSIVE.lock().await
}

/// `claims` concurrent claims by `shoppers` shoppers on `stock` in 4 shards, 1 per shopper.
async fn claims_race(s: DynStore, claims: usize, shoppers: usize, stock: u32) {
    let _alone = EXCLUSIVE.lock().await;
    let p = ns("claims-race");
    let campaign = claim_campaign(&p, stock, 1, 4);
    deploy(&s, &campaign).await;
    let clock = during();
    let instances: Vec<Arc<Claimer<DynStore>>> = (0..4).map(|_| Arc::new(claimer(&s, clock.clone()))).collect();
    let tasks = (0..claims).map(|n| {
        let claimer = instances[n % instances.len()].clone();
        let (campaign, user) = (campaign.id.clone(), UserId::parse(format!("{p}-u{}", n % shoppers)).unwrap());
        tokio::spawn(async move { (user.clone(), claimer.claim(&campaign, &user).await) })
    });
    let mut wins: HashMap<UserId, Vec<Claimed>> = HashMap::new();
    for r in join_all(tasks).await {
        let (user, outcome) = r.unwrap();
        match outcome {
            Ok(c) => wins.entry(user).or_default().push(c),
            Err(ClaimError::SoldOut(_) | ClaimError::LimitReached { .. }) => {}
            // A throttled stand-in may turn some claims away; the invariants must still hold.
            Err(ClaimError::Transient(e)) => eprintln!("transient (allowed): {e}"),
            Err(e) => panic!("unexpected claim error: {e}"),
        }
    }
    let issued: usize = wins.values().map(Vec::len).sum();
    assert_eq!(issued, stock as usize, "exactly the stock is issued");
    assert!(wins.values().all(|w| w.len() == 1), "nobody claims twice with a limit of 1");
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap(), [0, 0, 0, 0]);
    let mut stored = 0;
    for u in 0..shoppers {
        let user = UserId::parse(format!("{p}-u{u}")).unwrap();
        let n = wallet_len(&s, &user).await;
        assert!(n <= 1, "{user} holds {n} coupons");
        assert_eq!(claims::claimed_by(&*s, &user, &campaign.id).await.unwrap(), n as i64);
        stored += n;
    }
    assert_eq!(stored, stock as usize, "one wallet coupon per successful claim");
    for w in wins.values().flatten() {
        assert_eq!(w.coupon.source, IssueSource::Claim { claim_no: 1 });
    }
}

/// Records what each sold-out call of the claimers did.
struct Recording {
    republisher: Republisher<DynStore>,
    outcomes: Arc<Mutex<Vec<Republished>>>,
}

#[async_trait]
impl SoldOutHook for Recording {
    async fn sold_out(&self, campaign: &CampaignId) {
        let outcome = self.republisher.republish(campaign).await.unwrap();
        self.outcomes.lock().unwrap().push(outcome);
    }
}

/// Whether the stored price book offers `campaign`'s claimable coupon.
async fn book_offers(s: &DynStore, campaign: &CampaignId) -> bool {
    let item = s.get(&promo_shared::pricing::items::price_book_key()).await.unwrap().unwrap();
    let book: promo_shared::domain::price_book::PriceBook = serde_json::from_value(item["book"].clone()).unwrap();
    book.coupons.iter().any(|c| c.campaign_id == campaign.as_str())
}

/// A sell-out republishes the price book exactly once, however many claims find it empty:
/// 300 concurrent claims on a stock of 20 (4 shards) over 4 claimer instances, each with its
/// own republisher (as Lambda instances are). Every sold-out answer calls the hook, one call
/// publishes, and the book stops offering the coupon (its payment promotions would stay).
pub async fn claims_sell_out_republishes_the_price_book_once(s: DynStore) {
    let _alone = EXCLUSIVE.lock().await;
    let p = ns("sell-out");
    let campaign = claim_campaign(&p, 20, 1, 4);
    deploy(&s, &campaign).await;
    let clock = during();
    promo_shared::pricing::catalog::publish_price_book(&*s, clock.now(), 10, None).await.unwrap();
    assert!(book_offers(&s, &campaign.id).await, "in stock: offered");

    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let instances: Vec<Arc<Claimer<DynStore>>> = (0..4)
        .map(|_| {
            let hook =
                Recording { republisher: Republisher::new(s.clone(), clock.clone(), None), outcomes: outcomes.clone() };
            Arc::new(claimer(&s, clock.clone()).with_sold_out_hook(Arc::new(hook)))
        })
        .collect();
    let tasks = (0..300).map(|n| {
        let claimer = instances[n % instances.len()].clone();
        let (campaign, user) = (campaign.id.clone(), UserId::parse(format!("{p}-u{n}")).unwrap());
        tokio::spawn(async move { claimer.claim(&campaign, &user).await })
    });
    let (mut issued, mut sold_out) = (0, 0);
    for r in join_all(tasks).await {
        match r.unwrap() {
            Ok(_) => issued += 1,
            Err(ClaimError::SoldOut(_)) => sold_out += 1,
            Err(e) => panic!("unexpected claim error: {e}"),
        }
    }
    assert_eq!((issued, sold_out), (20, 280));
    let outcomes = outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), 280, "every sold-out answer tells the hook");
    let published: Vec<&Republished> = outcomes.iter().filter(|o| matches!(o, Republished::Published { .. })).collect();
    let others = outcomes.len() - published.len();
    assert_eq!(published.len(), 1, "exactly one publication ({others} calls did not publish)");
    assert!(!book_offers(&s, &campaign.id).await, "sold out: no longer offered");
    let marker = s.get(&promo_shared::claims::sold_out::key(&campaign.id)).await.unwrap().unwrap();
    assert!(marker.contains_key("published_at"));
}

/// A republication that never finished (its publisher crashed after marking the campaign) is
/// left alone within its lease and taken over after it; a finished one is never repeated.
pub async fn claims_an_unfinished_republication_is_taken_over_after_its_lease(s: DynStore) {
    let _alone = EXCLUSIVE.lock().await;
    let p = ns("sell-out-lease");
    let campaign = claim_campaign(&p, 1, 1, 1);
    deploy(&s, &campaign).await;
    let clock = during();
    promo_shared::pricing::catalog::publish_price_book(&*s, clock.now(), 10, None).await.unwrap();
    claimer(&s, clock.clone()).claim(&campaign.id, &UserId::parse(format!("{p}-u")).unwrap()).await.unwrap();
    // What a publisher that crashed right after winning the marker leaves behind.
    let mut marker = promo_shared::claims::sold_out::key(&campaign.id).item();
    marker.insert("marked_at".into(), clock.now().timestamp_millis().into());
    s.put(marker, None).await.unwrap();

    let lease = Duration::from_secs(60);
    let first = Republisher::new(s.clone(), clock.clone(), None).with_lease(lease);
    assert_eq!(first.republish(&campaign.id).await.unwrap(), Republished::InProgress);
    assert_eq!(first.republish(&campaign.id).await.unwrap(), Republished::Skipped, "rechecked later, not per claim");
    assert!(book_offers(&s, &campaign.id).await, "nothing republished yet");

    clock.advance(chrono::Duration::seconds(61));
    let second = Republisher::new(s.clone(), clock.clone(), None).with_lease(lease);
    match second.republish(&campaign.id).await.unwrap() {
        // (More than one round when another case's campaign sells out meanwhile: the store
        // is shared.)
        Republished::Published { .. } => {}
        other => panic!("the lease ran out: {other:?}"),
    }
    assert!(!book_offers(&s, &campaign.id).await);
    let third = Republisher::new(s.clone(), clock.clone(), None).with_lease(lease);
    assert_eq!(third.republish(&campaign.id).await.unwrap(), Republished::AlreadyPublished);
}

/// Another writer landing at a chosen moment: passes everything through, and before the
/// first single-item write (`put` or `update`) that `when` picks, first runs `meanwhile` on
/// the store underneath.
struct BeforeFirstWrite {
    inner: DynStore,
    when: Box<When>,
    meanwhile: tokio::sync::Mutex<Option<Meanwhile>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    Put,
    Update,
    Transact,
    /// A read (`get`), to run something before an operation reads what it will write.
    Read,
}

/// Which write `meanwhile` goes before.
type When = dyn Fn(Write, &Key) -> bool + Send + Sync;
type Meanwhile = Box<dyn FnOnce(DynStore) -> futures::future::BoxFuture<'static, ()> + Send>;

impl BeforeFirstWrite {
    fn over(
        inner: &DynStore,
        when: impl Fn(Write, &Key) -> bool + Send + Sync + 'static,
        meanwhile: Meanwhile,
    ) -> DynStore {
        let meanwhile = tokio::sync::Mutex::new(Some(meanwhile));
        Arc::new(BeforeFirstWrite { inner: inner.clone(), when: Box::new(when), meanwhile })
    }

    async fn before(&self, write: Write, key: &Key) {
        if (self.when)(write, key)
            && let Some(meanwhile) = self.meanwhile.lock().await.take()
        {
            meanwhile(self.inner.clone()).await;
        }
    }
}

#[async_trait]
impl Store for BeforeFirstWrite {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.before(Write::Read, key).await;
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.before(Write::Put, &Key::of(&item)?).await;
        self.inner.put(item, cond).await
    }
    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        self.before(Write::Update, key).await;
        self.inner.update(key, updates, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        self.inner.delete(key, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        if let Some(first) = ops.first() {
            self.before(Write::Transact, &first.key()?).await;
        }
        self.inner.transact(ops, token).await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.inner.query(q).await
    }
}

/// A campaign that sells out while a publisher is writing the book it built before is not
/// left offered: the publisher's recheck sees it and publishes a second round without it.
pub async fn claims_a_sell_out_during_a_republication_is_caught(s: DynStore) {
    let _alone = EXCLUSIVE.lock().await;
    let p = ns("sell-out-meanwhile");
    let (first, second) = (claim_campaign(&format!("{p}-a"), 1, 1, 1), claim_campaign(&format!("{p}-b"), 1, 1, 1));
    deploy(&s, &first).await;
    deploy(&s, &second).await;
    let clock = during();
    promo_shared::pricing::catalog::publish_price_book(&*s, clock.now(), 10, None).await.unwrap();
    claimer(&s, clock.clone()).claim(&first.id, &UserId::parse(format!("{p}-u")).unwrap()).await.unwrap();

    // The other campaign's last unit goes just before the first price-book write.
    let shard = promo_shared::campaigns::stock::claim_key(&second.id, 0);
    let racing = BeforeFirstWrite::over(
        &s,
        |write, key| write == Write::Put && *key == promo_shared::pricing::items::price_book_key(),
        Box::new(move |s| {
            Box::pin(async move {
                s.update(&shard, &[Update::set("remaining", 0)], None).await.unwrap();
            })
        }),
    );
    let republisher = Republisher::new(racing, clock.clone(), None);
    match republisher.republish(&first.id).await.unwrap() {
        Republished::Published { book, rounds } => {
            assert_eq!(rounds, 2, "the first round offered the campaign that sold out meanwhile");
            assert!(
                !book.coupons.iter().any(|c| [first.id.as_str(), second.id.as_str()].contains(&c.campaign_id.as_str()))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!book_offers(&s, &first.id).await && !book_offers(&s, &second.id).await);
}

/// What a signed-in shopper adds to a product page's price — their coupons, the claims they
/// have made and their mileage — is read in one query of their partition, no other read.
pub async fn claims_a_personal_read_is_one_query(s: DynStore) {
    let p = ns("personal");
    let campaign = claim_campaign(&p, 10, 2, 1);
    deploy(&s, &campaign).await;
    let user = UserId::parse(format!("{p}-u")).unwrap();
    let claimer = claimer(&s, during());
    let coupon = claimer.claim(&campaign.id, &user).await.unwrap().coupon;
    promo_shared::pricing::catalog::set_mileage(&*s, &user, 3000).await.unwrap();

    let counting = crate::counting::Counting::over(&s);
    let personal = promo_shared::pricing::catalog::personal(&*counting, &user).await.unwrap();
    assert_eq!(personal.coupons, [coupon]);
    assert_eq!(personal.claims, [(campaign.id.to_string(), 1)].into());
    assert_eq!(personal.mileage_balance, 3000);
    let (queries, gets) = (counting.queries.load(Ordering::SeqCst), counting.gets.load(Ordering::SeqCst));
    assert_eq!((queries, gets), (1, 0), "one query, no read");
}

/// A campaign that is not active, unknown, or without claims issues nothing.
pub async fn claims_inactive_unknown_and_ruleless_campaigns_issue_nothing(s: DynStore) {
    let p = ns("claims-inactive");
    let campaign = claim_campaign(&p, 10, 1, 2);
    deploy(&s, &campaign).await;
    let clock = Arc::new(ManualClock::new(at("2026-10-31T23:59:59Z")));
    let c = claimer(&s, clock.clone()).with_campaign_ttl(Duration::ZERO);
    let user = UserId::parse(format!("{p}-u")).unwrap();
    let tasks = (0..50).map(|_| c.claim(&campaign.id, &user));
    for r in join_all(tasks).await {
        assert_eq!(
            r.unwrap_err(),
            ClaimError::NotActive { campaign: campaign.id.clone(), status: CampaignStatus::Scheduled }
        );
    }
    clock.set(at("2026-12-01T00:00:00Z"));
    assert!(matches!(
        c.claim(&campaign.id, &user).await,
        Err(ClaimError::NotActive { status: CampaignStatus::Ended, .. })
    ));
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap(), [5, 5], "no stock taken");
    assert_eq!(claims::claimed_by(&*s, &user, &campaign.id).await.unwrap(), 0);
    assert_eq!(wallet_len(&s, &user).await, 0);

    clock.set(at("2026-11-15T00:00:00Z"));
    let unknown = CampaignId::parse(format!("{p}-nope")).unwrap();
    assert_eq!(c.claim(&unknown, &user).await.unwrap_err(), ClaimError::NotFound(unknown));
    let mut ruleless = claim_campaign(&format!("{p}-rewards-only"), 1, 1, 1).spec().clone();
    ruleless.claim = None;
    let ruleless = Campaign::new(ruleless).unwrap();
    deploy(&s, &ruleless).await;
    assert_eq!(c.claim(&ruleless.id, &user).await.unwrap_err(), ClaimError::NoClaims(ruleless.id.clone()));
    assert_eq!(wallet_len(&s, &user).await, 0);
    // Active now: the same shopper gets exactly one.
    c.claim(&campaign.id, &user).await.unwrap();
    assert_eq!(wallet_len(&s, &user).await, 1);
}

/// A campaign ended early by a redeploy: a claimer that still holds the campaign as it was
/// (cached for an hour) is refused by the claim's own condition — the stock shard carries
/// the deployed window — takes nothing, and reads the campaign afresh next time; moving the
/// end back opens it again.
pub async fn claims_a_redeployed_end_binds_a_stale_claimer(s: DynStore) {
    let p = ns("claims-ended");
    let campaign = claim_campaign(&p, 10, 5, 2);
    deploy(&s, &campaign).await;
    let clock = during();
    let c = claimer(&s, clock.clone()).with_campaign_ttl(Duration::from_secs(3600));
    let user = UserId::parse(format!("{p}-u")).unwrap();
    c.claim(&campaign.id, &user).await.unwrap();

    let mut ended = campaign.spec().clone();
    ended.ends_at = clock.now() - chrono::Duration::seconds(1);
    let ended = Campaign::new(ended).unwrap();
    deploy(&s, &ended).await;
    for _ in 0..3 {
        assert_eq!(
            c.claim(&campaign.id, &user).await.unwrap_err(),
            ClaimError::NotActive { campaign: campaign.id.clone(), status: CampaignStatus::Ended }
        );
    }
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap().iter().sum::<i64>(), 9, "nothing taken");
    assert_eq!(claims::claimed_by(&*s, &user, &campaign.id).await.unwrap(), 1);
    assert_eq!(wallet_len(&s, &user).await, 1);

    deploy(&s, &campaign).await;
    let fresh = claimer(&s, clock).with_campaign_ttl(Duration::from_secs(3600));
    fresh.claim(&campaign.id, &user).await.unwrap();
    assert_eq!(claims::claimed_by(&*s, &user, &campaign.id).await.unwrap(), 2);
}

/// Two shoppers' claims drawing the same coupon code: the second is refused by the code's
/// condition and claims under a fresh code; the first coupon and its code item are untouched,
/// and each claim took one unit.
pub async fn claims_a_code_collision_is_retried_with_a_fresh_code(s: DynStore) {
    let p = ns("claims-collide");
    let campaign = claim_campaign(&p, 10, 1, 1);
    deploy(&s, &campaign).await;
    let same = SeededIds::default().random_12();
    let seed = SeededIds::default().random_12();
    // Each claim draws a shard order, then a code.
    let ids = Arc::new(crate::issuer::Scripted::new([seed, same, seed, same]));
    let c = Claimer::new(s.clone(), during(), ids);
    let (u1, u2) = (UserId::parse(format!("{p}-u1")).unwrap(), UserId::parse(format!("{p}-u2")).unwrap());
    let code = promo_shared::domain::coupon::CouponCode::from_random(&same);
    assert_eq!(c.claim(&campaign.id, &u1).await.unwrap().coupon.code, code);
    let second = c.claim(&campaign.id, &u2).await.unwrap();
    assert_ne!(second.coupon.code, code);
    assert_eq!(second.attempts, 2, "one refused attempt, then the fresh code");
    let owner = s.get(&promo_shared::wallet::items::code_key(&code)).await.unwrap().unwrap();
    assert_eq!(owner.get("user_id"), Some(&json!(u1.as_str())), "the code item still names the first owner");
    assert_eq!((wallet_len(&s, &u1).await, wallet_len(&s, &u2).await), (1, 1));
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap(), [8]);
}

/// A claim whose transaction committed but whose answer was lost (the store said
/// `Unavailable`) is sent again unchanged under its client token: the shopper gets the one
/// coupon (not "limit reached" from their own first attempt), one unit is taken.
pub async fn claims_a_lost_answer_claims_once(s: DynStore) {
    let p = ns("claims-lost");
    let campaign = claim_campaign(&p, 10, 1, 1);
    deploy(&s, &campaign).await;
    let flaky = crate::flaky::Flaky::over(&s);
    flaky.lose_first_answers.store(true, Ordering::SeqCst);
    let retry = RetryPolicy { retries: 3, base: Duration::ZERO, cap: Duration::ZERO };
    let c = Claimer::new(flaky.clone() as DynStore, during(), Arc::new(SeededIds::default())).with_retry(retry);
    let user = UserId::parse(format!("{p}-u")).unwrap();
    let claimed = c.claim(&campaign.id, &user).await.unwrap();
    assert_eq!(claimed.attempts, 2, "the lost answer, then the same transaction again");
    assert_eq!(flaky.transacts.load(Ordering::SeqCst), 2);
    assert_eq!(wallet_len(&s, &user).await, 1);
    assert_eq!(claims::claimed_by(&*s, &user, &campaign.id).await.unwrap(), 1);
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap(), [9]);
}

/// Redeploys `campaign` (open, renamed) while another deploy that ends it runs from start to finish
/// just before the open one's `write` of the campaign item; a claimer read the campaign while
/// it was open and keeps it for an hour. Returns the open deploy's own answer, the claimer,
/// and the two versions of the campaign.
async fn deploy_racing_an_end(
    s: &DynStore,
    case: &str,
    write: Write,
) -> (Result<i64, campaigns::DeployError>, Claimer<DynStore>, Campaign, Campaign) {
    let p = ns(case);
    let campaign = claim_campaign(&p, 10, 1, 2);
    deploy(s, &campaign).await;
    let cached = claimer(s, during()).with_campaign_ttl(Duration::from_secs(3600));
    cached.claim(&campaign.id, &UserId::parse(format!("{p}-u")).unwrap()).await.unwrap();

    let mut ended = campaign.spec().clone();
    ended.ends_at = at("2026-11-10T00:00:00Z");
    let ended = Campaign::new(ended).unwrap();
    let other = ended.clone();
    let campaign_key = promo_shared::campaigns::items::key(&campaign.id);
    let racing = BeforeFirstWrite::over(
        s,
        move |w, key: &Key| w == write && *key == campaign_key,
        Box::new(move |s| Box::pin(async move { deploy(&s, &other).await })),
    );
    // A redeploy that changes something (a deploy of the campaign as stored writes nothing).
    let mut renamed = campaign.spec().clone();
    renamed.name = format!("{} (renamed)", renamed.name);
    let renamed = Campaign::new(renamed).unwrap();
    let answer = campaigns::deploy(&*racing, &ManualClock::new(at("2026-10-02T00:00:00Z")), &renamed).await;
    (answer, cached, renamed, ended)
}

/// Two redeploys race: the one that loses the version race (the other committed after it
/// read the version, before its transaction) fails and leaves the shards' window to the
/// winner — claims follow the campaign as stored, not the failed deploy.
pub async fn claims_a_deploy_that_lost_the_version_race_leaves_the_window_alone(s: DynStore) {
    let (lost, cached, campaign, ended) = deploy_racing_an_end(&s, "claims-deploys", Write::Transact).await;
    assert!(matches!(lost, Err(campaigns::DeployError::Conflict(_))), "{lost:?}");
    assert_eq!(campaigns::get(&*s, &campaign.id).await.unwrap().unwrap(), ended);
    // The shards follow the stored campaign: the cached open copy is refused by the condition.
    let p = ns("claims-deploys-v");
    assert_eq!(
        cached.claim(&campaign.id, &UserId::parse(p).unwrap()).await.unwrap_err(),
        ClaimError::NotActive { campaign: campaign.id.clone(), status: CampaignStatus::Ended }
    );
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap().iter().sum::<i64>(), 9, "one unit, before the race");
}

/// Two redeploys one after the other, the second having read after the first committed: the
/// shards' window is the second's, as the stored campaign is — a deploy never leaves the
/// window of an older one behind.
pub async fn claims_an_older_deploy_never_moves_the_window_back(s: DynStore) {
    let (answer, _, campaign, _) = deploy_racing_an_end(&s, "claims-older", Write::Read).await;
    answer.unwrap();
    assert_eq!(campaigns::get(&*s, &campaign.id).await.unwrap().unwrap(), campaign);
    let fresh = claimer(&s, during());
    fresh.claim(&campaign.id, &UserId::parse(ns("claims-older-v")).unwrap()).await.unwrap();
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap().iter().sum::<i64>(), 8);
}

/// One shopper racing many claims against a limit of 3 gets exactly 3, numbered 1..=3.
pub async fn claims_per_user_limit_under_concurrency(s: DynStore) {
    let p = ns("claims-limit");
    let campaign = claim_campaign(&p, 50, 3, 2);
    deploy(&s, &campaign).await;
    let c = Arc::new(claimer(&s, during()));
    let user = UserId::parse(format!("{p}-u")).unwrap();
    let tasks = (0..20).map(|_| {
        let (c, id, user) = (c.clone(), campaign.id.clone(), user.clone());
        tokio::spawn(async move { c.claim(&id, &user).await })
    });
    let mut numbers = Vec::new();
    for r in join_all(tasks).await {
        match r.unwrap() {
            Ok(claimed) => match claimed.coupon.source {
                IssueSource::Claim { claim_no } => numbers.push(claim_no),
                other => panic!("unexpected source {other:?}"),
            },
            Err(ClaimError::LimitReached { limit: 3, .. }) => {}
            Err(e) => panic!("unexpected claim error: {e}"),
        }
    }
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(wallet_len(&s, &user).await, 3);
    assert_eq!(claims::claimed_by(&*s, &user, &campaign.id).await.unwrap(), 3);
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap().iter().sum::<i64>(), 47);
}

/// Shards drain one by one; claims fall over to the others, then it is sold out. A redeploy
/// does not reset the stock.
pub async fn claims_fall_over_to_other_shards_and_sell_out(s: DynStore) {
    let p = ns("claims-drain");
    let campaign = claim_campaign(&p, 7, 1, 4);
    deploy(&s, &campaign).await;
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap(), [2, 2, 2, 1]);
    let c = claimer(&s, during());
    let mut won = 0;
    for n in 0..12 {
        let user = UserId::parse(format!("{p}-u{n}")).unwrap();
        match c.claim(&campaign.id, &user).await {
            Ok(_) => won += 1,
            Err(ClaimError::SoldOut(_)) => assert!(won == 7, "sold out after {won}"),
            Err(e) => panic!("unexpected claim error: {e}"),
        }
        if n == 2 {
            deploy(&s, &campaign).await;
        }
    }
    assert_eq!(won, 7);
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap(), [0, 0, 0, 0]);
    // A fresh instance (no memory of empty shards) also answers sold out, and writes nothing.
    let user = UserId::parse(format!("{p}-late")).unwrap();
    let fresh = claimer(&s, during());
    assert_eq!(fresh.claim(&campaign.id, &user).await.unwrap_err(), ClaimError::SoldOut(campaign.id.clone()));
    assert_eq!(claims::claimed_by(&*s, &user, &campaign.id).await.unwrap(), 0);
}

/// A store that throttles an item after `limit` writes in the current window, as DynamoDB
/// throttles a partition past its write capacity. Reads are not limited. Writes that are
/// refused are not counted; writes that fail their condition are (they consume capacity).
pub struct ThrottlingStore {
    inner: DynStore,
    limit: usize,
    /// What a transaction's write of one item costs (DynamoDB: 2 units; a plain write: 1).
    tx_units: usize,
    window: AtomicU64,
    writes: Mutex<HashMap<Key, (u64, usize)>>,
}

impl ThrottlingStore {
    pub fn new(inner: DynStore, writes_per_item_per_window: usize) -> ThrottlingStore {
        ThrottlingStore {
            inner,
            limit: writes_per_item_per_window,
            tx_units: 1,
            window: AtomicU64::new(0),
            writes: Mutex::new(HashMap::new()),
        }
    }

    /// Counts each item a transaction writes (or checks) as `units` writes, as DynamoDB's
    /// transactions cost two write units an item.
    pub fn with_transaction_units(mut self, units: usize) -> ThrottlingStore {
        self.tx_units = units;
        self
    }

    /// Moves to the next time window: every item has its full budget again.
    pub fn next_window(&self) {
        self.window.fetch_add(1, Ordering::SeqCst);
    }

    fn admit(&self, keys: &[Key]) -> Result<(), StoreError> {
        self.admit_units(keys, 1)
    }

    fn admit_units(&self, keys: &[Key], units: usize) -> Result<(), StoreError> {
        let window = self.window.load(Ordering::SeqCst);
        let mut writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let used = |k: &Key, w: &HashMap<Key, (u64, usize)>| match w.get(k) {
            Some((win, n)) if *win == window => *n,
            _ => 0,
        };
        if let Some(hot) = keys.iter().find(|k| used(k, &writes) + units > self.limit) {
            return Err(StoreError::Throttled(format!("{}/{} is over its write limit", hot.pk, hot.sk)));
        }
        for k in keys {
            let n = used(k, &writes) + units;
            writes.insert(k.clone(), (window, n));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for ThrottlingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.admit(&[Key::of(&item)?])?;
        self.inner.put(item, cond).await
    }
    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        self.admit(std::slice::from_ref(key))?;
        self.inner.update(key, updates, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        self.admit(std::slice::from_ref(key))?;
        self.inner.delete(key, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        let keys = ops.iter().map(TxOp::key).collect::<Result<Vec<_>, _>>()?;
        self.admit_units(&keys, self.tx_units)?;
        self.inner.transact(ops, token).await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.inner.query(q).await
    }
}

/// Rounds of `claimers` concurrent claims (distinct shoppers), one round per window of the
/// throttling store; returns the coupons issued in each round.
async fn rounds(
    throttled: &Arc<ThrottlingStore>,
    campaign: &Campaign,
    tag: &str,
    rounds: usize,
    claimers: usize,
) -> Vec<usize> {
    let store: DynStore = throttled.clone();
    // Retries without sleeping: time is the window, not the wall clock.
    let retry = RetryPolicy { retries: 3, base: Duration::ZERO, cap: Duration::ZERO };
    let claimer = Arc::new(claimer(&store, during()).with_retry(retry));
    let mut per_round = Vec::new();
    for r in 0..rounds {
        let tasks = (0..claimers).map(|n| {
            let (claimer, id) = (claimer.clone(), campaign.id.clone());
            let user = UserId::parse(format!("{}-{tag}-r{r}-u{n}", campaign.id)).unwrap();
            tokio::spawn(async move { claimer.claim(&id, &user).await })
        });
        let mut won = 0;
        for outcome in join_all(tasks).await {
            match outcome.unwrap() {
                Ok(_) => won += 1,
                Err(ClaimError::Transient(StoreError::Throttled(_)) | ClaimError::SoldOut(_)) => {}
                Err(e) => panic!("unexpected claim error: {e}"),
            }
        }
        per_round.push(won);
        throttled.next_window();
    }
    per_round
}

/// The same load on one stock counter and on 8 shards, under a per-item limit of K writes per
/// window: one counter issues at most K per window, 8 shards several times more — and the
/// total never exceeds the stock.
pub async fn claims_sharding_under_a_per_item_write_limit(s: DynStore) {
    // Hundreds of claimers per round: one big race at a time (see `EXCLUSIVE`).
    let _alone = EXCLUSIVE.lock().await;
    const K: usize = 10;
    const ROUNDS: usize = 5;
    const CLAIMERS: usize = 100;
    let p = ns("claims-shards");
    let mut totals = Vec::new();
    for shards in [1u16, 8] {
        let campaign = claim_campaign(&format!("{p}-s{shards}"), 10_000, 1, shards);
        deploy(&s, &campaign).await;
        let throttled = Arc::new(ThrottlingStore::new(s.clone(), K));
        let per_round = rounds(&throttled, &campaign, "load", ROUNDS, CLAIMERS).await;
        eprintln!("shards={shards}: claims per window {per_round:?} (limit {K} writes per item per window)");
        assert!(per_round.iter().all(|n| *n <= K * usize::from(shards)), "{per_round:?}");
        let total: usize = per_round.iter().sum();
        let left: i64 = claims::stock_left(&*s, &campaign).await.unwrap().iter().sum();
        assert_eq!(left, 10_000 - total as i64, "every coupon took one unit");
        totals.push(total);
    }
    assert_eq!(totals[0], K * ROUNDS, "one counter: exactly K per window under this load");
    assert!(totals[1] >= 4 * totals[0], "8 shards should issue several times more: {totals:?}");

    // Small stock, same throttling: never more than the stock, every shard drained.
    let campaign = claim_campaign(&format!("{p}-small"), 30, 1, 8);
    deploy(&s, &campaign).await;
    let throttled = Arc::new(ThrottlingStore::new(s.clone(), K));
    let per_round = rounds(&throttled, &campaign, "small", 3, CLAIMERS).await;
    assert_eq!(per_round.iter().sum::<usize>(), 30, "{per_round:?}");
    assert_eq!(claims::stock_left(&*s, &campaign).await.unwrap(), [0; 8]);
}

/// Deploys `campaign` with `stock` and `shards` for its claim (a new version of it).
async fn redeploy(
    s: &DynStore,
    campaign: &Campaign,
    stock: u32,
    shards: u16,
) -> Result<Campaign, campaigns::DeployError> {
    let mut spec = campaign.spec().clone();
    let claim = spec.claim.as_mut().unwrap();
    (claim.stock, claim.shards) = (stock, shards);
    let next = Campaign::new(spec).unwrap();
    campaigns::deploy(&**s, &ManualClock::new(at("2026-10-01T00:00:00Z")), &next).await.map(|_| next)
}

/// What every claim shard key of a campaign up to `slots` holds (absent: 0).
async fn shard_left(s: &DynStore, campaign: &Campaign, slots: u16) -> Vec<i64> {
    let keys: Vec<Key> = (0..slots).map(|n| promo_shared::campaigns::stock::claim_key(&campaign.id, n)).collect();
    campaigns::remaining(&**s, &keys).await.unwrap()
}

/// Claims by new shoppers `{prefix}-{n}` until the campaign is sold out; how many succeeded.
async fn claim_until_sold_out(c: &Claimer<DynStore>, campaign: &Campaign, prefix: &str) -> usize {
    let mut won = 0;
    loop {
        let user = UserId::parse(format!("{prefix}-{won}")).unwrap();
        match c.claim(&campaign.id, &user).await {
            Ok(_) => won += 1,
            Err(ClaimError::SoldOut(_)) => return won,
            Err(e) => panic!("unexpected claim error: {e}"),
        }
    }
}

/// Redeploys change the stock in force exactly: 100 over 2 shards with 10 claimed, spread
/// over 8 (90 left, every shard holding some), lowered to 60 (50 left), gathered into 3
/// (50 left, the 5 others empty), refused below what was issued (nothing changes), raised to
/// 200 (190 left, and exactly 190 more claims succeed). Before, a redeploy that changed the
/// shards put new shards beside the old ones (100 over 2 redeployed over 8 and then with a
/// stock of 60 let 174 shoppers claim) and a changed stock was ignored.
pub async fn claims_redeploys_apply_stock_and_shards_exactly(s: DynStore) {
    let p = ns("claims-redeploy");
    let campaign = claim_campaign(&p, 100, 1, 2);
    deploy(&s, &campaign).await;
    let c = claimer(&s, during()).with_campaign_ttl(Duration::ZERO);
    for n in 0..10 {
        c.claim(&campaign.id, &UserId::parse(format!("{p}-a{n}")).unwrap()).await.unwrap();
    }
    let eight = redeploy(&s, &campaign, 100, 8).await.unwrap();
    let left = shard_left(&s, &eight, 8).await;
    assert_eq!(left.iter().sum::<i64>(), 90, "{left:?}");
    assert!(left.iter().all(|l| *l > 0), "every shard holds units: {left:?}");
    let sixty = redeploy(&s, &campaign, 60, 8).await.unwrap();
    assert_eq!(shard_left(&s, &sixty, 8).await.iter().sum::<i64>(), 50);
    let three = redeploy(&s, &campaign, 60, 3).await.unwrap();
    let left = shard_left(&s, &three, 8).await;
    assert_eq!(left[..3].iter().sum::<i64>(), 50, "{left:?}");
    assert_eq!(&left[3..], [0; 5], "no unit stranded beyond the layout");
    let refused = redeploy(&s, &campaign, 5, 3).await.unwrap_err();
    assert!(
        matches!(&refused, campaigns::DeployError::Refused { reasons, .. }
        if reasons.iter().any(|r| r.contains("below the 10 already issued"))),
        "{refused}"
    );
    assert_eq!(campaigns::get(&*s, &campaign.id).await.unwrap().unwrap(), three, "nothing changed");
    assert_eq!(shard_left(&s, &three, 8).await.iter().sum::<i64>(), 50);
    let more = redeploy(&s, &campaign, 200, 3).await.unwrap();
    assert_eq!(claim_until_sold_out(&c, &more, &format!("{p}-b")).await, 190, "200 in all");

    // The issue's sequence, on a campaign of its own.
    let q = ns("claims-174");
    let first = claim_campaign(&q, 100, 1, 2);
    deploy(&s, &first).await;
    redeploy(&s, &first, 100, 8).await.unwrap();
    let last = redeploy(&s, &first, 60, 8).await.unwrap();
    assert_eq!(claim_until_sold_out(&c, &last, &format!("{q}-u")).await, 60, "never more than the stock in force");
}

/// 600 shoppers claim at once over 4 claimer instances while two deployers redeploy the
/// campaign with other stocks and shard counts (some refused as below what was issued, some
/// losing the version race to the other deployer): afterwards what was claimed plus what
/// is left is exactly the stock in force, nothing sits beyond the layout, and claiming the
/// rest issues exactly that stock in all.
pub async fn claims_redeploys_racing_claims_never_exceed_the_stock(s: DynStore) {
    let _alone = EXCLUSIVE.lock().await;
    let p = ns("claims-redeploy-race");
    let campaign = claim_campaign(&p, 300, 1, 4);
    deploy(&s, &campaign).await;
    let clock = during();
    let instances: Vec<Arc<Claimer<DynStore>>> = (0..4)
        .map(|i| {
            let ttl = if i % 2 == 0 { Duration::ZERO } else { claims::DEFAULT_CAMPAIGN_TTL };
            Arc::new(claimer(&s, clock.clone()).with_campaign_ttl(ttl))
        })
        .collect();
    let claims = (0..600).map(|n| {
        let claimer = instances[n % instances.len()].clone();
        let (id, user) = (campaign.id.clone(), UserId::parse(format!("{p}-u{n}")).unwrap());
        tokio::spawn(async move { claimer.claim(&id, &user).await })
    });
    let deployers =
        [[(300u32, 8u16), (250, 2), (400, 6), (350, 1), (320, 5)], [(280, 3), (420, 7), (330, 4), (310, 2), (360, 6)]]
            .map(|plan| {
                let (s, campaign) = (s.clone(), campaign.clone());
                tokio::spawn(async move {
                    for (stock, shards) in plan {
                        match redeploy(&s, &campaign, stock, shards).await {
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
            });
    let mut claimed = 0i64;
    for r in join_all(claims).await {
        match r.unwrap() {
            Ok(_) => claimed += 1,
            Err(ClaimError::SoldOut(_)) => {}
            Err(ClaimError::Transient(e)) => eprintln!("transient (allowed): {e}"),
            Err(e) => panic!("unexpected claim error: {e}"),
        }
    }
    for d in join_all(deployers).await {
        d.unwrap();
    }
    let stored = campaigns::get(&*s, &campaign.id).await.unwrap().unwrap();
    let in_force = i64::from(stored.claim.as_ref().unwrap().stock);
    let layout = stored.claim.as_ref().unwrap().shards;
    let left = shard_left(&s, &stored, 8).await;
    assert!(left[usize::from(layout)..].iter().all(|l| *l == 0), "stranded beyond {layout} shards: {left:?}");
    assert_eq!(claimed + left.iter().sum::<i64>(), in_force, "claimed {claimed}, left {left:?}, in force {in_force}");
    let fresh = claimer(&s, clock);
    let rest = claim_until_sold_out(&fresh, &stored, &format!("{p}-late")).await;
    assert_eq!(claimed + rest as i64, in_force, "exactly the stock in force, in all");
}

/// A sold-out campaign given more stock sells again, and its next sell-out republishes the
/// price book again (the deploy clears the sold-out marker).
pub async fn claims_a_sold_out_campaign_given_more_stock_sells_again(s: DynStore) {
    let _alone = EXCLUSIVE.lock().await;
    let p = ns("claims-restock");
    let campaign = claim_campaign(&p, 2, 1, 1);
    deploy(&s, &campaign).await;
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let recording = Recording { republisher: Republisher::new(s.clone(), during(), None), outcomes: outcomes.clone() };
    let c = claimer(&s, during()).with_campaign_ttl(Duration::ZERO).with_sold_out_hook(Arc::new(recording));
    assert_eq!(claim_until_sold_out(&c, &campaign, &format!("{p}-a")).await, 2);
    assert!(matches!(outcomes.lock().unwrap().as_slice(), [Republished::Published { .. }]));
    assert!(!book_offers(&s, &campaign.id).await);
    let more = redeploy(&s, &campaign, 5, 1).await.unwrap();
    assert!(
        s.get(&promo_shared::claims::sold_out::key(&campaign.id)).await.unwrap().is_none(),
        "the marker is cleared"
    );
    // A republisher that saw the first sell-out is a new instance here (its memory is per instance).
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let recording = Recording { republisher: Republisher::new(s.clone(), during(), None), outcomes: outcomes.clone() };
    let c = claimer(&s, during()).with_campaign_ttl(Duration::ZERO).with_sold_out_hook(Arc::new(recording));
    assert_eq!(claim_until_sold_out(&c, &more, &format!("{p}-b")).await, 3, "5 in all");
    assert!(matches!(outcomes.lock().unwrap().as_slice(), [Republished::Published { .. }]), "{:?}", outcomes);
}

/// Generates one `#[tokio::test]` per claims case for a store factory
/// (`async fn() -> Arc<dyn Store>`), with optional extra attributes on each test.
#[macro_export]
macro_rules! claims_conformance_tests {
    ($factory:path $(, #[$attr:meta])* $(,)?) => {
        $crate::claims_conformance_tests!(@cases $factory, [$(#[$attr])*],
            claims_race_thousand_on_stock_hundred,
            claims_inactive_unknown_and_ruleless_campaigns_issue_nothing,
            claims_per_user_limit_under_concurrency, claims_fall_over_to_other_shards_and_sell_out,
            claims_sharding_under_a_per_item_write_limit, claims_sell_out_republishes_the_price_book_once,
            claims_an_unfinished_republication_is_taken_over_after_its_lease,
            claims_a_personal_read_is_one_query, claims_a_sell_out_during_a_republication_is_caught,
            claims_a_redeployed_end_binds_a_stale_claimer, claims_a_code_collision_is_retried_with_a_fresh_code,
            claims_a_lost_answer_claims_once, claims_a_deploy_that_lost_the_version_race_leaves_the_window_alone,
            claims_an_older_deploy_never_moves_the_window_back, claims_redeploys_apply_stock_and_shards_exactly,
            claims_redeploys_racing_claims_never_exceed_the_stock,
            claims_a_sold_out_campaign_given_more_stock_sells_again);
    };
    (@cases $factory:path, $attrs:tt, $($case:ident),* $(,)?) => {
        $( $crate::claims_conformance_tests!(@one $factory, $attrs, $case); )*
    };
    (@one $factory:path, [$(#[$attr:meta])*], $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn $case() {
            $crate::claims::$case($factory().await).await;
        }
    };
}
