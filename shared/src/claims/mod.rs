//! First-come-first-served claims (`POST /v1/campaigns/{id}/claims`, SPEC flow 2): at most
//! the campaign's stock in total and at most its per-user limit per shopper, under any
//! concurrency, with no lost or double decrement.
//!
//! A claim is checked against the deployed campaign (it must exist, be ACTIVE now and have a
//! `claim` rule; otherwise nothing is written) and then written as **one** all-or-nothing
//! transaction — never read-then-write, the conditions carry the invariants:
//!
//! 0. one stock shard `CAMPAIGN#<c>#STOCK#<nnnn> / STOCK`: `ADD remaining -1` if
//!    `remaining > 0` — the total is never exceeded — and `open_from <= now < open_until`,
//!    the window of the campaign as last deployed, which every shard carries: a claimer
//!    whose cached campaign is stale (a redeploy ended it early) is still refused;
//! 1. the shopper's claim counter `USER#<u> / CLAIMS#<c>`: `ADD count 1` if `count` is what
//!    this claim expects (absent for a first claim) and `count < per_user_limit` — the
//!    per-user limit is never exceeded, and `claim_no` (the new count) is exact;
//! 2. the wallet coupon `USER#<u> / COUPON#<code>` — must not exist;
//! 3. the code's uniqueness item `CODE#<code>` — must not exist (a collision retries with a
//!    fresh code), as the payment issuer does.
//!
//! A cancelled transaction says which condition failed: the stock shard (empty: try the
//! next shard), the counter (another claim of the same shopper won: read the count and
//! either stop at the limit or retry with the new count), the code (collision). The common
//! first claim costs no read at all: it guesses "no claims yet".
//!
//! # Hot keys and the shard arithmetic
//!
//! DynamoDB serves at most ~1,000 write units per second per partition, and one item lives
//! in one partition. A transactional write of an item up to 1 KB costs 2 write units, so a
//! single stock counter takes roughly **500 claims/s** (1,000 plain writes/s); a flash drop
//! with 100k shoppers would be throttled on that one item while every other part of the
//! table idles. So the stock is split over `shards` items (a campaign setting), each with its
//! own partition key ([`stock::claim_key`]) and `stock / shards` units (the remainder on the
//! first shards), created at deploy. A claim decrements one shard picked at random, so the
//! load spreads evenly: **N shards take ~N × 500 claims/s** (N × 1,000 write units/s). Size
//! it from the expected peak: 10,000 claims/s → at least 20 shards; take 32 for headroom.
//! The other items of a claim are spread by nature (the counter and the wallet live in the
//! shopper's partition, codes are random), and the campaign item is read through a
//! per-instance cache (one read per instance per [`DEFAULT_CAMPAIGN_TTL`], not one per claim).
//!
//! The total still cannot be exceeded: each unit is taken under `remaining > 0` from exactly
//! one shard, and the shards' initial shares add up to the stock.
//!
//! **Fallover cost when shards drain.** A claim that hits an empty shard fails that
//! transaction (which still costs write units) and tries the other shards in random order.
//! With k of N shards left non-empty, a claim needs (N + 1) / (k + 1) transactions on average
//! (where the first non-empty shard falls in a random order), and the tail of the drop runs
//! at k × 500 claims/s. Once every shard is empty a claim would pay N failed transactions to
//! learn "sold out", so a claimer remembers the shards it found empty (per instance, until
//! its campaign cache entry expires) and answers `SoldOut` without writing once all are.
//! Throttling of a shard (retryable) also moves the next attempt to another shard.

pub mod items;
pub mod sell_out;
pub mod sold_out;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::campaigns::stock::{self, StockShard};
use crate::claims::items as counter;
use crate::domain::campaign::Campaign;
use crate::domain::campaign::CampaignStatus;
use crate::domain::coupon::CouponCode;
use crate::domain::coupon::CouponStatus;
use crate::domain::coupon::IssueSource;
use crate::domain::coupon::IssuedCoupon;
use crate::domain::ids::CampaignId;
use crate::domain::ids::UserId;
use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::store::{Cond, Store, StoreError, Tx, TxOp, client_token};
use crate::wallet::items as wallet;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::campaigns;

/// Fresh codes tried before giving up on collisions (at 60 bits, one retry is already rare).
const CODE_ATTEMPTS: u32 = 5;
/// How long a claimer reuses a campaign it read (a deploy is seen within it).
pub const DEFAULT_CAMPAIGN_TTL: Duration = Duration::from_secs(1);
/// Cached campaigns per claimer before the cache is cleared (unknown ids are cached too).
const CACHE_CAPACITY: usize = 1024;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClaimError {
    #[error("campaign `{0}` does not exist")]
    NotFound(CampaignId),
    #[error("campaign `{campaign}` is not active now (it is {status:?})")]
    NotActive { campaign: CampaignId, status: CampaignStatus },
    #[error("campaign `{0}` has no coupons to claim")]
    NoClaims(CampaignId),
    #[error("campaign `{0}` is sold out")]
    SoldOut(CampaignId),
    #[error("campaign `{campaign}` allows {limit} claim(s) per shopper")]
    LimitReached { campaign: CampaignId, limit: u32 },
    /// Worth retrying later (throttling, store unavailable), after the retries here.
    #[error("transient: {0}")]
    Transient(StoreError),
    /// Retrying will not help.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl ClaimError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ClaimError::Transient(_))
    }
}

impl From<StoreError> for ClaimError {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() { ClaimError::Transient(e) } else { ClaimError::Permanent(e.to_string()) }
    }
}

/// Told when a claim finds every stock shard of a campaign empty — product pages must stop
/// offering its coupon ([`crate::claims::sell_out::Republisher`]). Called on each sold-out answer;
/// the hook makes repeats cheap. It never fails the claim: its errors are its own to log.
#[async_trait::async_trait]
pub trait SoldOutHook: Send + Sync {
    async fn sold_out(&self, campaign: &CampaignId);
}

/// A successful claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The coupon now in the shopper's wallet; its source is `Claim { claim_no }`.
    pub coupon: IssuedCoupon,
    /// The stock shard the unit came from.
    pub shard: u16,
    /// Transactions it took (1 unless shards were empty, throttled or contended).
    pub attempts: u32,
}

use crate::retry::RetryPolicy;

struct Cached {
    read_at: DateTime<Utc>,
    campaign: Option<Arc<Campaign>>,
    /// Shards found empty since the campaign was read (stock never comes back).
    empty: BTreeSet<u16>,
}

/// Issues first-come-first-served claims over the store port.
pub struct Claimer<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    campaign_ttl: Duration,
    retry: RetryPolicy,
    cache: Mutex<HashMap<CampaignId, Cached>>,
    on_sold_out: Option<Arc<dyn SoldOutHook>>,
}

/// The operations of one claim transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimSlot {
    /// A unit of one stock shard, inside the campaign's window as last deployed.
    Stock,
    /// The shopper's claim counter, under the per-user limit.
    Counter,
    /// The wallet coupon, put if absent.
    Coupon,
    /// The code item, put if absent: codes are unique.
    Code,
}

/// One transaction, kept to be retried unchanged (same token) when its outcome is unknown.
struct Attempt {
    tx: Tx<ClaimSlot>,
    token: String,
    coupon: IssuedCoupon,
    shard: u16,
}

impl<S: Store> Claimer<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Self {
        Claimer {
            store,
            clock,
            ids,
            campaign_ttl: DEFAULT_CAMPAIGN_TTL,
            retry: RetryPolicy::default(),
            cache: Mutex::new(HashMap::new()),
            on_sold_out: None,
        }
    }

    /// Calls `hook` whenever a claim finds the campaign sold out.
    pub fn with_sold_out_hook(mut self, hook: Arc<dyn SoldOutHook>) -> Self {
        self.on_sold_out = Some(hook);
        self
    }

    /// Re-reads a campaign at most every `ttl` (zero: on every claim).
    pub fn with_campaign_ttl(mut self, ttl: Duration) -> Self {
        self.campaign_ttl = ttl;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Claims one coupon of `campaign_id` for `user`.
    pub async fn claim(&self, campaign_id: &CampaignId, user: &UserId) -> Result<Claimed, ClaimError> {
        let now = self.clock.now();
        let campaign = self.campaign(campaign_id).await?.ok_or_else(|| ClaimError::NotFound(campaign_id.clone()))?;
        match campaign.status_at(now) {
            CampaignStatus::Active => {}
            status => return Err(ClaimError::NotActive { campaign: campaign_id.clone(), status }),
        }
        let rule = campaign.claim.as_ref().ok_or_else(|| ClaimError::NoClaims(campaign_id.clone()))?;
        let template = campaign
            .coupon(&rule.coupon)
            .ok_or_else(|| ClaimError::Permanent(format!("the claim rule names a missing coupon {}", rule.coupon)))?;
        let limit = i64::from(rule.per_user_limit);

        // Shards not known to be empty, in random order.
        let known_empty = self.known_empty(campaign_id);
        let mut shards: Vec<u16> =
            shuffled(rule.shards, self.ids.random_u64()).into_iter().filter(|s| !known_empty.contains(s)).collect();
        let mut at = 0usize;
        // The shopper's claims so far, as far as we know: a first claim needs no read.
        let mut expected: i64 = 0;
        let (mut attempts, mut transient, mut collisions, mut contended) = (0u32, 0u32, 0u32, 0u32);
        let mut pending: Option<Attempt> = None;
        loop {
            if shards.is_empty() {
                if let Some(hook) = &self.on_sold_out {
                    hook.sold_out(campaign_id).await;
                }
                return Err(ClaimError::SoldOut(campaign_id.clone()));
            }
            if expected >= limit {
                return Err(ClaimError::LimitReached { campaign: campaign_id.clone(), limit: rule.per_user_limit });
            }
            let attempt = match pending.take() {
                Some(a) => a,
                None => {
                    let shard = shards[at % shards.len()];
                    self.attempt(&campaign, template, user, shard, expected, limit, self.clock.now())?
                }
            };
            attempts += 1;
            let tx = &attempt.tx;
            match self.store.transact(tx.ops(), Some(&attempt.token)).await {
                Ok(()) => {
                    tracing::info!(campaign = %campaign_id, user = %user.masked(), shard = attempt.shard, attempts, "coupon claimed");
                    return Ok(Claimed { coupon: attempt.coupon, shard: attempt.shard, attempts });
                }
                Err(e)
                    if tx.failed(&e, ClaimSlot::Stock)
                        && StockShard::closed_at(tx.found(&e, ClaimSlot::Stock), now).is_some() =>
                {
                    // Not active by the campaign as deployed now (a redeploy this claimer has
                    // not seen yet moved its window): nothing taken; read it afresh next time.
                    self.forget(campaign_id);
                    let status = match StockShard::closed_at(tx.found(&e, ClaimSlot::Stock), now) {
                        Some(true) => CampaignStatus::Scheduled,
                        _ => CampaignStatus::Ended,
                    };
                    return Err(ClaimError::NotActive { campaign: campaign_id.clone(), status });
                }
                Err(e) if tx.failed(&e, ClaimSlot::Stock) || tx.failed(&e, ClaimSlot::Counter) => {
                    if tx.failed(&e, ClaimSlot::Counter) {
                        // Another claim of this shopper committed first: learn the count.
                        contended += 1;
                        if contended > self.retry.retries + rule.per_user_limit {
                            return Err(ClaimError::Permanent(format!(
                                "the claim counter of {} keeps failing",
                                user.masked()
                            )));
                        }
                        // The cancelled transaction returned the counter it found.
                        expected = counter::count_of(tx.found(&e, ClaimSlot::Counter));
                    }
                    if tx.failed(&e, ClaimSlot::Stock) {
                        shards.retain(|s| *s != attempt.shard);
                        self.mark_empty(campaign_id, attempt.shard);
                    }
                }
                Err(e) if tx.failed(&e, ClaimSlot::Coupon) || tx.failed(&e, ClaimSlot::Code) => {
                    collisions += 1;
                    if collisions > CODE_ATTEMPTS {
                        return Err(ClaimError::Permanent(format!("{collisions} coupon code collisions in a row")));
                    }
                }
                Err(e) if e.is_retryable() && transient < self.retry.retries => {
                    transient += 1;
                    if matches!(e, StoreError::Unavailable(_)) {
                        // The outcome is unknown: retry the very same transaction (same token),
                        // so a commit we did not hear of is not repeated.
                        pending = Some(attempt);
                    } else {
                        // Throttled or conflicting: nothing was written; spread to another shard.
                        at += 1;
                    }
                    self.retry.pause(&*self.clock, transient, self.ids.random_u64()).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Builds the claim transaction for one shard, expecting the shopper to hold `expected` claims.
    #[allow(clippy::too_many_arguments)]
    fn attempt(
        &self,
        campaign: &Campaign,
        template: &crate::domain::coupon::CouponTemplate,
        user: &UserId,
        shard: u16,
        expected: i64,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Attempt, ClaimError> {
        let claim_no = expected + 1;
        let code = CouponCode::from_random(&self.ids.random_12());
        let coupon = IssuedCoupon {
            code: code.clone(),
            user_id: user.clone(),
            campaign_id: campaign.id.clone(),
            template: template.clone(),
            currency: campaign.currency,
            status: CouponStatus::Issued,
            source: IssueSource::Claim {
                claim_no: u32::try_from(claim_no).map_err(|_| ClaimError::Permanent("claim number overflow".into()))?,
            },
            issued_at: now,
            starts_at: now,
            ends_at: match template.valid_days {
                Some(d) => now + chrono::Duration::days(i64::from(d)),
                None => campaign.ends_at,
            },
        };
        let permanent = |e: StoreError| ClaimError::Permanent(e.to_string());
        let (count, under_limit) = counter::one_more(&campaign.id, user, expected, limit, now);
        let tx = Tx::new()
            .with(
                ClaimSlot::Stock,
                TxOp::Update {
                    key: stock::claim_key(&campaign.id, shard),
                    updates: stock::take_one(),
                    cond: Some(stock::claimable_at(now)),
                },
            )
            .with(
                ClaimSlot::Counter,
                TxOp::Update { key: counter::key(user, &campaign.id), updates: count, cond: Some(under_limit) },
            )
            .with(
                ClaimSlot::Coupon,
                TxOp::Put { item: wallet::coupon_item(&coupon).map_err(permanent)?, cond: Some(Cond::NotExists) },
            )
            .with(ClaimSlot::Code, TxOp::Put { item: wallet::code_item(&code, user), cond: Some(Cond::NotExists) });
        let token = client_token(&[campaign.id.as_str(), user.as_str(), &claim_no.to_string(), code.as_str()]);
        Ok(Attempt { tx, token, coupon, shard })
    }

    /// The deployed campaign, through the per-instance cache.
    async fn campaign(&self, id: &CampaignId) -> Result<Option<Arc<Campaign>>, ClaimError> {
        if let Some(c) = self.lock().get(id)
            && crate::ports::clock::fresh(self.clock.now(), c.read_at, self.campaign_ttl)
        {
            return Ok(c.campaign.clone());
        }
        let campaign = self.read(|| campaigns::get(&self.store, id)).await?.map(Arc::new);
        let mut cache = self.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(
            id.clone(),
            Cached { read_at: self.clock.now(), campaign: campaign.clone(), empty: BTreeSet::new() },
        );
        Ok(campaign)
    }

    fn forget(&self, id: &CampaignId) {
        self.lock().remove(id);
    }

    fn known_empty(&self, id: &CampaignId) -> BTreeSet<u16> {
        self.lock().get(id).map(|c| c.empty.clone()).unwrap_or_default()
    }

    fn mark_empty(&self, id: &CampaignId, shard: u16) {
        if let Some(c) = self.lock().get_mut(id) {
            c.empty.insert(shard);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CampaignId, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A read, retried with backoff while the store says so.
    async fn read<T, F, Fut>(&self, f: F) -> Result<T, ClaimError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        Ok(self.retry.run(&*self.clock, || self.ids.random_u64(), f).await?)
    }
}

/// Remaining stock of each shard of a campaign (absent shards count 0).
pub async fn stock_left<S: Store + ?Sized>(store: &S, campaign: &Campaign) -> Result<Vec<i64>, StoreError> {
    campaigns::remaining(store, &campaigns::claim_shards(campaign)).await
}

/// The claim campaigns among `campaigns`, not ended at `now`, whose stock is all taken (every
/// shard read, strongly consistent).
pub async fn sold_out<S: Store + ?Sized>(
    store: &S,
    campaigns: &[Campaign],
    now: DateTime<Utc>,
) -> Result<Vec<CampaignId>, StoreError> {
    let mut out = Vec::new();
    for c in campaigns.iter().filter(|c| c.claim.is_some() && c.status_at(now) != CampaignStatus::Ended) {
        if stock_left(store, c).await?.iter().all(|left| *left <= 0) {
            out.push(c.id.clone());
        }
    }
    Ok(out)
}

/// How many coupons a shopper has claimed from a campaign.
pub async fn claimed_by<S: Store + ?Sized>(store: &S, user: &UserId, campaign: &CampaignId) -> Result<i64, StoreError> {
    Ok(counter::count_of(store.get(&counter::key(user, campaign)).await?.as_ref()))
}

/// `0..n` in a random order (Fisher–Yates over a splitmix64 stream; not security-relevant).
pub(crate) fn shuffled(n: u16, seed: u64) -> Vec<u16> {
    let mut v: Vec<u16> = (0..n.max(1)).collect();
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::shuffled;

    #[test]
    fn shuffles_are_permutations_and_vary() {
        let a = shuffled(8, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
        let firsts: std::collections::BTreeSet<u16> = (0..200).map(|s| shuffled(8, s)[0]).collect();
        assert_eq!(firsts.len(), 8, "every shard gets picked first for some seed");
        assert_eq!(shuffled(1, 42), [0]);
    }
}
