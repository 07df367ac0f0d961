//! The coupon issuer: payment events in, reward coupons out — exactly once per
//! (payment, campaign rule), by construction.
//!
//! Each reward is one all-or-nothing transaction of three conditional puts:
//! 1. the payment's reward marker `PAYMENT#<p> / REWARD#<campaign>#<rule>` — must not exist:
//!    this condition is the exactly-once guarantee, whatever mix of webhook deliveries and
//!    client callbacks races;
//! 2. the coupon in the wallet `USER#<u> / COUPON#<code>` — must not exist;
//! 3. the code's uniqueness item `CODE#<code>` — must not exist (a collision retries with a
//!    fresh code).
//!
//! 4. a check that the payment's state item `PAYMENT#<p> / STATE` is not cancelled or
//!    refunded, and, after a partial refund, that what is still paid meets the rule's
//!    minimum — so an event that arrives after the cancellation never issues;
//! 5. for a rule with a `stock` ("the first 1,000 orders"): one of its stock shards
//!    `CAMPAIGN#<c>#REWARD#<rule>#STOCK#<nnnn>`, `ADD remaining -1` if `remaining > 0` — a
//!    random shard first, then the others; when every shard refuses, the payment gets no
//!    coupon from that rule. The marker names the shard.
//!
//! Never read-then-write: a loser of the race learns it from the cancelled transaction,
//! which also returns the winner's marker (so a replay answers with the same coupon in one
//! round trip).
//!
//! A cancelled or refunded payment first marks its state item (strongly consistent), then
//! revokes every coupon its reward markers name, each with the condition `status = ISSUED`
//! (a used coupon is reported, not revoked). A partial refund (the event says what was paid,
//! and less than that was refunded) records the lowest amount still paid on the state item
//! and revokes only the coupons of rules whose `min_payment` that amount no longer meets;
//! the others stay, and a later delivery of the payment earns only the rules it still meets. Any issuance that committed before the mark is
//! found by the marker query (primary index, strongly consistent); any later one fails its
//! state check. So a cancelled payment never keeps an unused coupon, in any order. A coupon
//! of a rule with a stock is revoked in one transaction with `ADD remaining 1` on the shard
//! its marker names: the unit goes back exactly once (only the `ISSUED → REVOKED` transition
//! returns it), and never for a used coupon.
//!
//! Stock shards found empty are not remembered (unlike claims): units come back when
//! payments are cancelled. Once a rule's stock is all taken, a payment pays one refused
//! transaction per shard to learn it — rewards follow orders, not a flash drop, so size
//! `shards` from the expected peak (one shard takes about 500 issuances/s on DynamoDB, as a
//! claim stock shard does) and no larger.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::campaign::Campaign;
use crate::domain::campaign::RewardRule;
use crate::domain::coupon::CouponCode;
use crate::domain::coupon::CouponStatus;
use crate::domain::coupon::IssueSource;
use crate::domain::coupon::IssuedCoupon;
use crate::domain::ids::CampaignId;
use crate::domain::ids::PaymentId;
use crate::domain::ids::RuleId;
use crate::domain::ids::UserId;
use crate::domain::payment::PaymentEvent;
use crate::domain::payment::PaymentKind;
use crate::items::keys;
use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::store::Cond;
use crate::ports::store::Item;
use crate::ports::store::ItemExt;
use crate::ports::store::Key;
use crate::ports::store::Query;
use crate::ports::store::Store;
use crate::ports::store::StoreError;
use crate::ports::store::TxOp;
use crate::ports::store::Update;
use crate::ports::store::client_token;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use crate::app::campaigns;

use crate::app::campaigns::Deployed;
use crate::app::retry::RetryPolicy;

/// Fresh codes tried before giving up on collisions (at 60 bits, one retry is already rare).
const CODE_ATTEMPTS: u32 = 5;

#[derive(Debug, Error)]
pub enum IssueError {
    /// Worth retrying later (throttling, store unavailable).
    #[error("transient: {0}")]
    Transient(StoreError),
    /// Retrying will not help.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl IssueError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, IssueError::Transient(_))
    }
}

impl From<StoreError> for IssueError {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() { IssueError::Transient(e) } else { IssueError::Permanent(e.to_string()) }
    }
}

/// What handling a payment event did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PaymentOutcome {
    pub rewards: Vec<Reward>,
    pub revocations: Vec<Revocation>,
    /// Rules the payment met whose stock was all taken: no coupon from them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub out_of_stock: Vec<RuleRef>,
}

/// A reward rule of a campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub campaign_id: CampaignId,
    pub rule_id: RuleId,
}

/// What became of one coupon of a cancelled or refunded payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Revocation {
    pub code: CouponCode,
    pub user_id: UserId,
    pub outcome: RevocationOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationOutcome {
    Revoked,
    /// A replay of the cancellation: it was revoked before.
    AlreadyRevoked,
    /// The shopper already used it: reported, not revoked.
    Used,
}

const STATE_CANCELLED: &str = "CANCELLED";
const STATE_REFUNDED: &str = "REFUNDED";
const STATE_PARTIALLY_REFUNDED: &str = "PARTIALLY_REFUNDED";
/// The payment state's attribute: the lowest amount still paid after partial refunds.
const STILL_PAID: &str = "still_paid";
/// A reward coupon without `valid_days` is valid until its campaign ends, and in any case for
/// at least this long after it is issued: a payment reported late (after the campaign ended,
/// a provider's retry) still earns a coupon the shopper can use.
pub const MIN_REWARD_VALIDITY: chrono::Duration = chrono::Duration::days(7);

/// One reward coupon of a payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reward {
    pub campaign_id: CampaignId,
    pub rule_id: RuleId,
    pub code: CouponCode,
    /// True when an earlier delivery already issued it.
    pub duplicate: bool,
}

/// The deployed campaigns as read at an instant.
type CachedCampaigns = (DateTime<Utc>, Arc<Vec<Deployed>>);

pub struct Issuer<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    /// Deployed campaigns, re-read at most this often (a deploy is seen within it).
    campaign_ttl: Duration,
    /// Retries of retryable store errors.
    retry: RetryPolicy,
    campaigns: tokio::sync::RwLock<Option<CachedCampaigns>>,
}

/// How long the issuer reuses the list of deployed campaigns.
pub const DEFAULT_CAMPAIGN_TTL: Duration = Duration::from_secs(1);

impl<S: Store> Issuer<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Self {
        Issuer {
            store,
            clock,
            ids,
            campaign_ttl: DEFAULT_CAMPAIGN_TTL,
            retry: RetryPolicy::default(),
            campaigns: Default::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Re-reads deployed campaigns at most every `ttl` (zero: on every event).
    pub fn with_campaign_ttl(mut self, ttl: Duration) -> Self {
        self.campaign_ttl = ttl;
        self
    }

    async fn deployed_campaigns(&self) -> Result<Arc<Vec<Deployed>>, IssueError> {
        let fresh = |cached: &Option<CachedCampaigns>| {
            let now = self.clock.now();
            cached
                .as_ref()
                .filter(|(at, _)| crate::ports::clock::fresh(now, *at, self.campaign_ttl))
                .map(|(_, list)| list.clone())
        };
        if let Some(list) = fresh(&*self.campaigns.read().await) {
            return Ok(list);
        }
        // One refresh at a time: concurrent events wait for it instead of each re-reading
        // the campaigns (a stampede of identical queries every `campaign_ttl` under load).
        let mut cached = self.campaigns.write().await;
        if let Some(list) = fresh(&cached) {
            return Ok(list);
        }
        let list = Arc::new(self.retrying(|| campaigns::list_deployed(&self.store)).await?);
        *cached = Some((self.clock.now(), list.clone()));
        Ok(list)
    }

    /// The deployed campaigns read afresh (a deploy changed what the cached copy says).
    async fn refreshed_campaigns(&self) -> Result<Arc<Vec<Deployed>>, IssueError> {
        let list = Arc::new(self.retrying(|| campaigns::list_deployed(&self.store)).await?);
        *self.campaigns.write().await = Some((self.clock.now(), list.clone()));
        Ok(list)
    }

    /// Handles a payment event. A paid payment earns the rewards of every campaign rule it
    /// meets (replays return the same coupons with `duplicate: true`; a payment cancelled
    /// meanwhile earns nothing); a cancelled or refunded one revokes its unused coupons.
    pub async fn handle_payment(&self, event: &PaymentEvent) -> Result<PaymentOutcome, IssueError> {
        match event.kind {
            PaymentKind::Paid => {
                let mut outcome = PaymentOutcome::default();
                for deployed in self.deployed_campaigns().await?.iter() {
                    let campaign = &deployed.campaign;
                    for rule in campaign.rewards_for(event) {
                        let mut issued = self.issue_reward(campaign, rule, event).await?;
                        if matches!(issued, Issued::OutOfStock) {
                            // The cached campaign may predate a deploy that added stock or
                            // shards: look once more at the campaign as it is now.
                            issued = self.issue_reward_again(deployed, rule, event).await?.unwrap_or(issued);
                        }
                        match issued {
                            Issued::Reward(r) => outcome.rewards.push(r),
                            Issued::NoLongerEarned => {}
                            Issued::OutOfStock => outcome
                                .out_of_stock
                                .push(RuleRef { campaign_id: campaign.id.clone(), rule_id: rule.id.clone() }),
                        }
                    }
                }
                Ok(outcome)
            }
            PaymentKind::Cancelled | PaymentKind::Refunded => {
                Ok(PaymentOutcome { revocations: self.revoke(event).await?, ..PaymentOutcome::default() })
            }
        }
    }

    async fn revoke(&self, event: &PaymentEvent) -> Result<Vec<Revocation>, IssueError> {
        let now = self.clock.now();
        // First the mark: from here on no issuance for this payment can commit (or, after a
        // partial refund, none of a rule the rest no longer meets).
        let (reason, still_paid) = match event.still_paid() {
            Some(still) => self.mark_partial_refund(event, still.minor(), now).await?,
            None => {
                let state = if event.kind == PaymentKind::Cancelled { STATE_CANCELLED } else { STATE_REFUNDED };
                let mark = [Update::set("status", state), Update::set("updated_at", now.to_rfc3339())];
                let state_key = keys::payment_state(&event.payment_id);
                self.retrying(|| self.store.update(&state_key, &mark, None)).await?;
                (state, None)
            }
        };
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let query = Query::partition(keys::payment_partition(&event.payment_id))
                .prefix(keys::REWARD_SK_PREFIX)
                .after(after);
            let page = self.retrying(|| self.store.query(&query)).await?;
            for marker in &page.items {
                let (Some(code), Some(user)) = (
                    marker.str_attr("code").and_then(|c| CouponCode::parse(c).ok()),
                    marker.str_attr("user_id").and_then(|u| UserId::parse(u).ok()),
                ) else {
                    return Err(IssueError::Permanent("reward marker without code or user".into()));
                };
                if let Some(still) = still_paid
                    && self.still_earned(marker, still).await?
                {
                    continue;
                }
                let outcome = self.revoke_one(marker, &user, &code, reason, now).await?;
                tracing::info!(payment = %event.payment_id, outcome = ?outcome, "payment coupon revocation");
                out.push(Revocation { code, user_id: user, outcome });
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Records a partial refund on the payment's state: the lowest amount still paid, unless
    /// a full cancellation or refund is there already. Returns the revocation reason and the
    /// amount still paid that the rewards are judged by (`None`: a full one, revoke all).
    async fn mark_partial_refund(
        &self,
        event: &PaymentEvent,
        still: i64,
        now: DateTime<Utc>,
    ) -> Result<(&'static str, Option<i64>), IssueError> {
        let state_key = keys::payment_state(&event.payment_id);
        let mark = [
            Update::set("status", STATE_PARTIALLY_REFUNDED),
            Update::set(STILL_PAID, still),
            Update::set("updated_at", now.to_rfc3339()),
        ];
        // Out-of-order refunds: the lowest amount still paid stands; a full one stays full.
        let lower = Cond::And(vec![
            not_fully_refunded(),
            Cond::Or(vec![Cond::AttrNotExists(STILL_PAID.into()), Cond::Gt(STILL_PAID.into(), still)]),
        ]);
        match self.retrying(|| self.store.update(&state_key, &mark, Some(lower.clone()))).await {
            Ok(_) => Ok((STATE_PARTIALLY_REFUNDED, Some(still))),
            Err(StoreError::ConditionFailed { found }) => {
                let found = found.unwrap_or_default();
                match found.str_attr("status") {
                    Some(s @ (STATE_CANCELLED | STATE_REFUNDED)) => {
                        Ok((if s == STATE_CANCELLED { STATE_CANCELLED } else { STATE_REFUNDED }, None))
                    }
                    _ => Ok((STATE_PARTIALLY_REFUNDED, Some(found.i64_attr(STILL_PAID).unwrap_or(still).min(still)))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the reward a marker names is still earned when `still` is what the payment
    /// still pays: its rule's minimum (recorded on the marker, else the deployed rule's) is met.
    /// A reward whose rule can no longer be found is kept: nothing says it is not earned.
    async fn still_earned(&self, marker: &Item, still: i64) -> Result<bool, IssueError> {
        if let Some(min) = marker.i64_attr(MIN_PAYMENT_ATTR) {
            return Ok(min <= still);
        }
        let (campaign, rule) = marker_rule(marker);
        let deployed = self.deployed_campaigns().await?;
        let min = deployed
            .iter()
            .find(|c| Some(&c.campaign.id) == campaign.as_ref())
            .and_then(|c| c.campaign.rewards.iter().find(|r| Some(&r.id) == rule.as_ref()))
            .map(|r| r.min_payment.minor());
        if min.is_none() {
            tracing::warn!(?campaign, ?rule, "partial refund: the rule of a reward is gone; the reward is kept");
        }
        Ok(min.is_none_or(|m| m <= still))
    }

    /// Issues a reward whose rule seemed out of stock once more, if a deploy changed the campaign
    /// since `seen` was read: `None` when it did not (or no longer has the rule).
    async fn issue_reward_again(
        &self,
        seen: &Deployed,
        rule: &RewardRule,
        event: &PaymentEvent,
    ) -> Result<Option<Issued>, IssueError> {
        let fresh = self.refreshed_campaigns().await?;
        let Some(now) = fresh.iter().find(|d| d.campaign.id == seen.campaign.id && d.version != seen.version) else {
            return Ok(None);
        };
        let Some(rule) = now.campaign.rewards_for(event).find(|r| r.id == rule.id) else { return Ok(None) };
        Ok(Some(self.issue_reward(&now.campaign, rule, event).await?))
    }

    /// Revokes the coupon a reward marker names if it is still unused and, when it took a stock
    /// unit, gives the unit back in the same transaction: it returns exactly once, with the
    /// `ISSUED → REVOKED` transition, and never for a used coupon.
    async fn revoke_one(
        &self,
        marker: &Item,
        user: &UserId,
        code: &CouponCode,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<RevocationOutcome, IssueError> {
        let key = keys::wallet_coupon(user, code);
        let revoke = vec![
            Update::set("status", json!(CouponStatus::Revoked)),
            Update::set("revoked_at", now.to_rfc3339()),
            Update::set("revoked_because", reason),
        ];
        let unused = Cond::eq("status", json!(CouponStatus::Issued));
        // A retry after an unknown outcome that did commit finds the coupon revoked: it then
        // reports `AlreadyRevoked`, and the unit went back once.
        let mut layout_reads = 0;
        let refused = loop {
            let give_back = match marker.i64_attr(STOCK_SHARD_ATTR) {
                None => None,
                Some(taken_from) => self.give_back_to(marker, taken_from, layout_reads > 0).await?,
            };
            let Some((shard, check)) = give_back else {
                match self.retrying(|| self.store.update(&key, &revoke, Some(unused.clone()))).await {
                    Ok(_) => return Ok(RevocationOutcome::Revoked),
                    // The refused update returns the coupon as it is.
                    Err(StoreError::ConditionFailed { found }) => break found,
                    Err(e) => return Err(e.into()),
                }
            };
            let ops = vec![
                TxOp::Update { key: key.clone(), updates: revoke.clone(), cond: Some(unused.clone()) },
                TxOp::Update { key: shard, updates: vec![Update::Add("remaining".into(), 1)], cond: None },
                check,
            ];
            match self.retrying(|| self.store.transact(ops.clone(), None)).await {
                Ok(()) => return Ok(RevocationOutcome::Revoked),
                // The cancelled transaction returns the coupon as it is.
                Err(e) if e.failed_at(0) => break e.found_at(0).cloned(),
                // A deploy changed the stock's layout since it was read: read it again.
                Err(e) if e.failed_at(2) && layout_reads < 5 => layout_reads += 1,
                Err(e) => return Err(e.into()),
            }
        };
        match refused.as_ref().and_then(|c| c.get("status")) {
            Some(s) if *s == json!(CouponStatus::Used) => Ok(RevocationOutcome::Used),
            Some(s) if *s == json!(CouponStatus::Revoked) => Ok(RevocationOutcome::AlreadyRevoked),
            _ => Err(IssueError::Permanent(format!("coupon {code} of a reward marker is missing"))),
        }
    }

    /// Issues one reward: the coupon, a duplicate's answer, or why there is none.
    async fn issue_reward(
        &self,
        campaign: &Campaign,
        rule: &RewardRule,
        event: &PaymentEvent,
    ) -> Result<Issued, IssueError> {
        let template = campaign
            .coupon(&rule.coupon)
            .ok_or_else(|| IssueError::Permanent(format!("rule {} names a missing coupon", rule.id)))?;
        // A limited rule's shards not yet found empty, in random order.
        let mut shards = match rule.stock {
            Some(_) => crate::app::claims::shuffled(rule.shards, self.ids.random_u64()),
            None => Vec::new(),
        };
        let mut at = 0usize;
        let mut transient = 0;
        let mut collisions = 0;
        // An attempt whose outcome is unknown, to be sent again unchanged (same token).
        let mut pending: Option<(CouponCode, Option<u16>, DateTime<Utc>)> = None;
        loop {
            let (code, shard, now) = match pending.take() {
                Some(attempt) => attempt,
                None => {
                    let shard = match rule.stock {
                        None => None,
                        Some(_) if shards.is_empty() => {
                            tracing::info!(payment = %event.payment_id, campaign = %campaign.id, rule = %rule.id, "reward stock all taken: no coupon");
                            return Ok(Issued::OutOfStock);
                        }
                        Some(_) => Some(shards[at % shards.len()]),
                    };
                    (CouponCode::from_random(&self.ids.random_12()), shard, self.clock.now())
                }
            };
            let ops = reward_ops(campaign, rule, template, event, &code, shard, now)?;
            let token = reward_token(&event.payment_id, &campaign.id, &rule.id, &code);
            match self.store.transact(ops, Some(&token)).await {
                Ok(()) => {
                    tracing::info!(payment = %event.payment_id, campaign = %campaign.id, rule = %rule.id, "reward issued");
                    return Ok(Issued::Reward(Reward {
                        campaign_id: campaign.id.clone(),
                        rule_id: rule.id.clone(),
                        code,
                        duplicate: false,
                    }));
                }
                // Checked first: a replay also finds the stock taken, or the payment cancelled.
                Err(e) if e.failed_at(0) => {
                    // An earlier delivery issued it: the cancelled transaction returned its
                    // marker, which names the coupon (no second round trip).
                    let existing = e.found_at(0).ok_or_else(|| {
                        IssueError::Permanent("the store did not return the existing reward marker".into())
                    })?;
                    let code = existing
                        .str_attr("code")
                        .and_then(|c| CouponCode::parse(c).ok())
                        .ok_or_else(|| IssueError::Permanent("reward marker without a code".into()))?;
                    return Ok(Issued::Reward(Reward {
                        campaign_id: campaign.id.clone(),
                        rule_id: rule.id.clone(),
                        code,
                        duplicate: true,
                    }));
                }
                Err(e) if e.failed_at(3) => {
                    tracing::info!(payment = %event.payment_id, rule = %rule.id, "payment cancelled or refunded meanwhile: no reward");
                    return Ok(Issued::NoLongerEarned);
                }
                Err(e) if e.failed_at(4) => {
                    // This shard is empty: the next one (no reward once all are).
                    shards.retain(|s| Some(*s) != shard);
                }
                Err(e) if (e.failed_at(1) || e.failed_at(2)) && collisions < CODE_ATTEMPTS => collisions += 1,
                Err(e) if e.is_retryable() && transient < self.retry.retries => {
                    transient += 1;
                    if matches!(e, StoreError::Unavailable(_)) {
                        // It may have committed: the very same transaction again, so the
                        // client token answers for it instead of a second attempt.
                        pending = Some((code, shard, now));
                    } else {
                        // Throttled or conflicting, nothing written: another shard next.
                        at += 1;
                    }
                    self.retry.pause(&*self.clock, transient, self.ids.random_u64()).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A store call, retried with jittered backoff while the store says it is worth it; the
    /// last error otherwise.
    async fn retrying<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        self.retry.run(&*self.clock, || self.ids.random_u64(), f).await
    }
}

/// The transaction of one reward attempt: its code, its stock shard (limited rules), its time.
fn reward_ops(
    campaign: &Campaign,
    rule: &RewardRule,
    template: &crate::domain::coupon::CouponTemplate,
    event: &PaymentEvent,
    code: &CouponCode,
    shard: Option<u16>,
    now: DateTime<Utc>,
) -> Result<Vec<TxOp>, IssueError> {
    let marker = keys::payment_reward(&event.payment_id, &campaign.id, &rule.id);
    let coupon = IssuedCoupon {
        code: code.clone(),
        user_id: event.user_id.clone(),
        campaign_id: campaign.id.clone(),
        template: template.clone(),
        currency: campaign.currency,
        status: CouponStatus::Issued,
        source: IssueSource::PaymentReward { payment_id: event.payment_id.clone(), rule_id: rule.id.clone() },
        issued_at: now,
        starts_at: now,
        ends_at: coupon_end(campaign, template.valid_days, now),
    };
    let mut marker_item = marker.item();
    marker_item.insert("type".into(), "payment_reward".into());
    marker_item.insert("code".into(), code.as_str().into());
    marker_item.insert("user_id".into(), event.user_id.as_str().into());
    marker_item.insert("issued_at".into(), now.to_rfc3339().into());
    // What a partial refund judges the reward by, and revocation gives a unit back to.
    marker_item.insert("campaign_id".into(), campaign.id.as_str().into());
    marker_item.insert("rule_id".into(), rule.id.as_str().into());
    marker_item.insert(MIN_PAYMENT_ATTR.into(), rule.min_payment.minor().into());
    if let Some(n) = shard {
        marker_item.insert(STOCK_SHARD_ATTR.into(), n.into());
    }

    let wallet_item = crate::app::wallet::item(&coupon).map_err(|e| IssueError::Permanent(e.to_string()))?;
    let code_item = crate::app::wallet::code_item(code, &event.user_id);

    let mut ops = vec![
        TxOp::Put { item: marker_item, cond: Some(Cond::NotExists) },
        TxOp::Put { item: wallet_item, cond: Some(Cond::NotExists) },
        TxOp::Put { item: code_item, cond: Some(Cond::NotExists) },
        payment_still_earns(&event.payment_id, rule.min_payment.minor()),
    ];
    if let Some(n) = shard {
        ops.push(TxOp::Update {
            key: keys::reward_stock_shard(&campaign.id, &rule.id, n),
            updates: vec![Update::Add("remaining".into(), -1)],
            cond: Some(Cond::Gt("remaining".into(), 0)),
        });
    }
    Ok(ops)
}

/// What one reward rule gave a paid payment.
enum Issued {
    Reward(Reward),
    /// The payment was cancelled or refunded meanwhile (or partly refunded below the rule's minimum).
    NoLongerEarned,
    /// The rule's stock is all taken.
    OutOfStock,
}

/// The reward marker's attribute naming the stock shard its coupon took a unit from.
const STOCK_SHARD_ATTR: &str = "stock_shard";
/// The reward marker's copy of its rule's `min_payment` when it was issued.
const MIN_PAYMENT_ATTR: &str = "min_payment";

/// The campaign and rule a reward marker is for: its attributes, else its sort key
/// (`REWARD#<campaign>#<rule>`; ids never contain `#`).
fn marker_rule(marker: &Item) -> (Option<CampaignId>, Option<RuleId>) {
    let from_sk = marker.str_attr("sk").and_then(|sk| sk.strip_prefix(keys::REWARD_SK_PREFIX)?.split_once('#'));
    let campaign = marker.str_attr("campaign_id").or(from_sk.map(|(c, _)| c)).and_then(|c| CampaignId::parse(c).ok());
    let rule = marker.str_attr("rule_id").or(from_sk.map(|(_, r)| r)).and_then(|r| RuleId::parse(r).ok());
    (campaign, rule)
}

impl<S: Store> Issuer<S> {
    /// Where a revoked coupon's unit goes back: a shard of its rule's stock as deployed now
    /// (the one it came from, or the same number modulo the shards the layout has now), and
    /// the check that the campaign is still at the version that layout was read from — so a
    /// unit is never given to a shard a deploy has emptied. `None`: the rule has no stock any
    /// more (or is gone), and nothing goes back. `afresh` reads the campaigns again first.
    async fn give_back_to(
        &self,
        marker: &Item,
        taken_from: i64,
        afresh: bool,
    ) -> Result<Option<(Key, TxOp)>, IssueError> {
        let (Some(campaign), Some(rule)) = marker_rule(marker) else {
            return Err(IssueError::Permanent("reward marker with a malformed stock shard".into()));
        };
        let deployed = if afresh { self.refreshed_campaigns().await? } else { self.deployed_campaigns().await? };
        let Some(d) = deployed.iter().find(|d| d.campaign.id == campaign) else { return Ok(None) };
        let Some(layout) = campaigns::layout(&d.campaign, &campaigns::StockRef::Reward(rule.clone())) else {
            return Ok(None);
        };
        let shards = i64::from(layout.shards.max(1));
        let shard = u16::try_from(taken_from.rem_euclid(shards)).unwrap_or(0);
        let check = TxOp::Check { key: keys::campaign(&campaign), cond: Cond::eq("version", d.version) };
        Ok(Some((keys::reward_stock_shard(&campaign, &rule, shard), check)))
    }
}

/// Remaining stock of each shard of a reward rule with a stock (absent shards count 0; empty
/// for an unlimited rule).
pub async fn reward_stock_left<S: Store + ?Sized>(
    store: &S,
    campaign: &Campaign,
    rule: &RewardRule,
) -> Result<Vec<i64>, StoreError> {
    campaigns::remaining(store, &campaigns::reward_shards(campaign, rule)).await
}

/// The payment state is not a full cancellation or refund (absent counts as not).
fn not_fully_refunded() -> Cond {
    Cond::Or(vec![
        Cond::AttrNotExists("status".into()),
        Cond::And(vec![Cond::eq("status", STATE_CANCELLED).negate(), Cond::eq("status", STATE_REFUNDED).negate()]),
    ])
}

/// The check every reward issuance carries: the payment has not been cancelled or refunded,
/// and what a partial refund left paid still meets the rule's `min_payment` — so a
/// cancellation or refund that commits first wins.
pub fn payment_still_earns(payment: &PaymentId, min_payment: i64) -> TxOp {
    TxOp::Check {
        key: keys::payment_state(payment),
        cond: Cond::And(vec![
            not_fully_refunded(),
            Cond::Or(vec![Cond::AttrNotExists(STILL_PAID.into()), Cond::Ge(STILL_PAID.into(), min_payment)]),
        ]),
    }
}

/// The client token of one reward issuance attempt (a fresh code is a new attempt).
pub fn reward_token(payment: &PaymentId, campaign: &CampaignId, rule: &RuleId, code: &CouponCode) -> String {
    client_token(&[payment.as_str(), campaign.as_str(), rule.as_str(), code.as_str()])
}

/// When a reward coupon issued at `now` ends: `valid_days` after issuance, else when its
/// campaign ends but never sooner than [`MIN_REWARD_VALIDITY`] after issuance.
pub fn coupon_end(campaign: &Campaign, valid_days: Option<u32>, now: DateTime<Utc>) -> DateTime<Utc> {
    match valid_days {
        Some(d) => now + chrono::Duration::days(i64::from(d)),
        None => campaign.ends_at.max(now + MIN_REWARD_VALIDITY),
    }
}
