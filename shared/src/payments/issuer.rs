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

use crate::domain::ids::ReservationId;
use crate::events::{EventError, Events, Paid, PlacePayment, Released};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use crate::campaigns::items::{self as campaign_item, Deployed};
use crate::campaigns::stock;
use crate::campaigns::{self, StockRef};
use crate::domain::campaign::{Campaign, RewardRule};
use crate::domain::coupon::{CouponCode, CouponStatus, CouponTemplate, IssueSource, IssuedCoupon};
use crate::domain::ids::{CampaignId, PaymentId, RuleId, UserId};
use crate::domain::payment::{PaymentEvent, PaymentKind};
use crate::payments::items::payment::{self as payment_state, PaymentState};
use crate::payments::items::reward::{self, RewardMarker};
use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::store::{Cond, Store, StoreError, Tx, TxOp, Update, client_token, query_all};
use crate::retry::RetryPolicy;
use crate::wallet::items as wallet;

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
    /// The limited-event reservation a paid payment carried, and what paying it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationPaid>,
}

/// What a payment did to the reservation it carried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReservationPaid {
    pub reservation_id: ReservationId,
    /// What paying did: `confirmed`, `already_confirmed`, `confirmed_late`, `refund_due`,
    /// `unknown_reservation` or `payment_cancelled`; what a cancellation or full refund did to
    /// the place it had paid for: `place_released` (to the next in line, or back to stock) or
    /// `already_released`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ReservationPaid {
    fn of(reservation_id: ReservationId, paid: Paid) -> ReservationPaid {
        let (outcome, reason) = match paid {
            Paid::Confirmed => ("confirmed", None),
            Paid::AlreadyConfirmed => ("already_confirmed", None),
            Paid::ConfirmedLate => ("confirmed_late", None),
            Paid::RefundDue(why) => ("refund_due", Some(why)),
            Paid::UnknownReservation => ("unknown_reservation", None),
            Paid::PaymentCancelled => ("payment_cancelled", None),
        };
        ReservationPaid { reservation_id, outcome, reason }
    }

    fn released(reservation_id: ReservationId, released: &Released) -> ReservationPaid {
        let outcome = match released {
            Released::AlreadyDone => "already_released",
            Released::Promoted(_) | Released::ToStock => "place_released",
        };
        ReservationPaid { reservation_id, outcome, reason: None }
    }
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

fn event_error(e: EventError) -> IssueError {
    match e {
        EventError::Store(e) => IssueError::from(e),
        EventError::Busy(what) => IssueError::Transient(StoreError::Throttled(format!("{what} is busy"))),
        other => IssueError::Permanent(other.to_string()),
    }
}

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
                if let Some(rid) = &event.reservation_id {
                    let paid =
                        self.events().pay(&event.user_id, rid, &PlacePayment::of(event)).await.map_err(event_error)?;
                    outcome.reservation = Some(ReservationPaid::of(rid.clone(), paid));
                }
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
                let mut outcome =
                    PaymentOutcome { revocations: self.revoke(event).await?, ..PaymentOutcome::default() };
                // A full cancellation or refund (marked by `revoke` first, so a confirmation
                // racing it either landed before and is found here, or fails its check) frees
                // the place the payment paid for; a partial refund keeps it.
                if event.still_paid().is_none()
                    && let Some((rid, released)) =
                        self.events().payment_refunded(&event.payment_id).await.map_err(event_error)?
                {
                    outcome.reservation = Some(ReservationPaid::released(rid, &released));
                }
                Ok(outcome)
            }
        }
    }

    fn events(&self) -> Events<'_, S> {
        Events::new(&self.store, self.clock.as_ref(), self.ids.as_ref())
    }

    async fn revoke(&self, event: &PaymentEvent) -> Result<Vec<Revocation>, IssueError> {
        let now = self.clock.now();
        // First the mark: from here on no issuance for this payment can commit (or, after a
        // partial refund, none of a rule the rest no longer meets).
        let (reason, still_paid) = match event.still_paid() {
            Some(still) => self.mark_partial_refund(event, still.minor(), now).await?,
            None => {
                let status = if event.kind == PaymentKind::Cancelled {
                    payment_state::CANCELLED
                } else {
                    payment_state::REFUNDED
                };
                let mark = payment_state::mark_full(status, now);
                let key = payment_state::key(&event.payment_id);
                self.retrying(|| self.store.update(&key, &mark, None)).await?;
                (status, None)
            }
        };
        let markers = self.retrying(|| query_all(&self.store, reward::of_payment(&event.payment_id))).await?;
        let mut out = Vec::new();
        for item in &markers {
            let marker = RewardMarker::from_item(item).map_err(|e| IssueError::Permanent(e.to_string()))?;
            if let Some(still) = still_paid
                && self.still_earned(&marker, still).await?
            {
                continue;
            }
            let outcome = self.revoke_one(&marker, reason, now).await?;
            tracing::info!(payment = %event.payment_id, outcome = ?outcome, "payment coupon revocation");
            out.push(Revocation { code: marker.code, user_id: marker.user_id, outcome });
        }
        Ok(out)
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
        let key = payment_state::key(&event.payment_id);
        let (mark, lower) = payment_state::mark_partial(still, now);
        match self.retrying(|| self.store.update(&key, &mark, Some(lower.clone()))).await {
            Ok(_) => Ok((payment_state::PARTIALLY_REFUNDED, Some(still))),
            Err(StoreError::ConditionFailed { found }) => {
                let found = found.map(|f| PaymentState::from_item(&f)).unwrap_or_default();
                match found.status.as_deref() {
                    Some(payment_state::CANCELLED) => Ok((payment_state::CANCELLED, None)),
                    Some(payment_state::REFUNDED) => Ok((payment_state::REFUNDED, None)),
                    _ => Ok((payment_state::PARTIALLY_REFUNDED, Some(found.still_paid.unwrap_or(still).min(still)))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the reward a marker names is still earned when `still` is what the payment
    /// still pays: its rule's minimum (recorded on the marker, else the deployed rule's) is met.
    /// A reward whose rule can no longer be found is kept: nothing says it is not earned.
    async fn still_earned(&self, marker: &RewardMarker, still: i64) -> Result<bool, IssueError> {
        if let Some(min) = marker.min_payment {
            return Ok(min <= still);
        }
        let deployed = self.deployed_campaigns().await?;
        let min = deployed
            .iter()
            .find(|d| d.campaign.id == marker.campaign_id)
            .and_then(|d| d.campaign.rewards.iter().find(|r| r.id == marker.rule_id))
            .map(|r| r.min_payment.minor());
        if min.is_none() {
            tracing::warn!(campaign = %marker.campaign_id, rule = %marker.rule_id, "partial refund: the rule of a reward is gone; the reward is kept");
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
        marker: &RewardMarker,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<RevocationOutcome, IssueError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Slot {
            Coupon,
            GiveBack,
            Layout,
        }
        let key = wallet::key(&marker.user_id, &marker.code);
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
            let give_back = match marker.stock_shard {
                None => None,
                Some(taken_from) => self.give_back_to(marker, taken_from, layout_reads > 0).await?,
            };
            let Some((shard, layout)) = give_back else {
                match self.retrying(|| self.store.update(&key, &revoke, Some(unused.clone()))).await {
                    Ok(_) => return Ok(RevocationOutcome::Revoked),
                    // The refused update returns the coupon as it is.
                    Err(StoreError::ConditionFailed { found }) => break found,
                    Err(e) => return Err(e.into()),
                }
            };
            let tx = Tx::new()
                .with(
                    Slot::Coupon,
                    TxOp::Update { key: key.clone(), updates: revoke.clone(), cond: Some(unused.clone()) },
                )
                .with(Slot::GiveBack, TxOp::Update { key: shard, updates: stock::give_back_one(), cond: None })
                .with(Slot::Layout, layout);
            match self.retrying(|| self.store.transact(tx.ops(), None)).await {
                Ok(()) => return Ok(RevocationOutcome::Revoked),
                // The cancelled transaction returns the coupon as it is.
                Err(e) if tx.failed(&e, Slot::Coupon) => break tx.found(&e, Slot::Coupon).cloned(),
                // A deploy changed the stock's layout since it was read: read it again.
                Err(e) if tx.failed(&e, Slot::Layout) && layout_reads < 5 => layout_reads += 1,
                Err(e) => return Err(e.into()),
            }
        };
        match refused.as_ref().and_then(|c| c.get("status")) {
            Some(s) if *s == json!(CouponStatus::Used) => Ok(RevocationOutcome::Used),
            Some(s) if *s == json!(CouponStatus::Revoked) => Ok(RevocationOutcome::AlreadyRevoked),
            _ => Err(IssueError::Permanent(format!("coupon {} of a reward marker is missing", marker.code))),
        }
    }

    /// Where a revoked coupon's unit goes back: a shard of its rule's stock as deployed now
    /// (the one it came from, or the same number modulo the shards the layout has now), and
    /// the check that the campaign is still at the version that layout was read from — so a
    /// unit is never given to a shard a deploy has emptied. `None`: the rule has no stock any
    /// more (or is gone), and nothing goes back. `afresh` reads the campaigns again first.
    async fn give_back_to(
        &self,
        marker: &RewardMarker,
        taken_from: u16,
        afresh: bool,
    ) -> Result<Option<(crate::ports::store::Key, TxOp)>, IssueError> {
        let deployed = if afresh { self.refreshed_campaigns().await? } else { self.deployed_campaigns().await? };
        let Some(d) = deployed.iter().find(|d| d.campaign.id == marker.campaign_id) else { return Ok(None) };
        let Some(layout) = campaigns::layout(&d.campaign, &StockRef::Reward(marker.rule_id.clone())) else {
            return Ok(None);
        };
        let shard = taken_from % layout.shards.max(1);
        let key = stock::reward_key(&marker.campaign_id, &marker.rule_id, shard);
        Ok(Some((key, campaign_item::still_at(&marker.campaign_id, d.version))))
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
            Some(_) => crate::claims::shuffled(rule.shards, self.ids.random_u64()),
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
            let (ops, tx) = reward_tx(campaign, rule, template, event, &code, shard, now)?.split();
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
                Err(e) if tx.failed(&e, RewardSlot::Marker) => {
                    // An earlier delivery issued it: the cancelled transaction returned its
                    // marker, which names the coupon (no second round trip).
                    let existing = tx.found(&e, RewardSlot::Marker).ok_or_else(|| {
                        IssueError::Permanent("the store did not return the existing reward marker".into())
                    })?;
                    let code = RewardMarker::code_of(existing).map_err(|e| IssueError::Permanent(e.to_string()))?;
                    return Ok(Issued::Reward(Reward {
                        campaign_id: campaign.id.clone(),
                        rule_id: rule.id.clone(),
                        code,
                        duplicate: true,
                    }));
                }
                Err(e) if tx.failed(&e, RewardSlot::PaymentState) => {
                    tracing::info!(payment = %event.payment_id, rule = %rule.id, "payment cancelled or refunded meanwhile: no reward");
                    return Ok(Issued::NoLongerEarned);
                }
                Err(e) if tx.failed(&e, RewardSlot::Stock) => {
                    // This shard is empty: the next one (no reward once all are).
                    shards.retain(|s| Some(*s) != shard);
                }
                Err(e)
                    if (tx.failed(&e, RewardSlot::Coupon) || tx.failed(&e, RewardSlot::Code))
                        && collisions < CODE_ATTEMPTS =>
                {
                    collisions += 1
                }
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

/// The operations of one reward transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewardSlot {
    /// The payment's reward marker, put if absent: the exactly-once condition.
    Marker,
    /// The wallet coupon, put if absent.
    Coupon,
    /// The code item, put if absent: codes are unique.
    Code,
    /// The payment's state: not cancelled or refunded below the rule's minimum.
    PaymentState,
    /// A unit of a limited rule's stock.
    Stock,
}

/// The transaction of one reward attempt: its code, its stock shard (limited rules), its time.
pub fn reward_tx(
    campaign: &Campaign,
    rule: &RewardRule,
    template: &CouponTemplate,
    event: &PaymentEvent,
    code: &CouponCode,
    shard: Option<u16>,
    now: DateTime<Utc>,
) -> Result<Tx<RewardSlot>, IssueError> {
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
    let marker = RewardMarker {
        campaign_id: campaign.id.clone(),
        rule_id: rule.id.clone(),
        code: code.clone(),
        user_id: event.user_id.clone(),
        issued_at: now,
        min_payment: Some(rule.min_payment.minor()),
        stock_shard: shard,
    };
    let permanent = |e: StoreError| IssueError::Permanent(e.to_string());
    let mut tx = Tx::new()
        .with(
            RewardSlot::Marker,
            TxOp::Put { item: marker.to_item(&event.payment_id).map_err(permanent)?, cond: Some(Cond::NotExists) },
        )
        .with(
            RewardSlot::Coupon,
            TxOp::Put { item: wallet::coupon_item(&coupon).map_err(permanent)?, cond: Some(Cond::NotExists) },
        )
        .with(
            RewardSlot::Code,
            TxOp::Put { item: wallet::code_item(code, &event.user_id), cond: Some(Cond::NotExists) },
        )
        .with(RewardSlot::PaymentState, payment_state::still_earns(&event.payment_id, rule.min_payment.minor()));
    if let Some(n) = shard {
        tx.push(
            RewardSlot::Stock,
            TxOp::Update {
                key: stock::reward_key(&campaign.id, &rule.id, n),
                updates: stock::take_one(),
                cond: Some(stock::has_stock()),
            },
        );
    }
    Ok(tx)
}

/// What one reward rule gave a paid payment.
enum Issued {
    Reward(Reward),
    /// The payment was cancelled or refunded meanwhile (or partly refunded below the rule's minimum).
    NoLongerEarned,
    /// The rule's stock is all taken.
    OutOfStock,
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
