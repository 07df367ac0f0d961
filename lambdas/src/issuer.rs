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
//!    refunded — so an event that arrives after the cancellation never issues.
//!
//! Never read-then-write: a loser of the race learns it from the cancelled transaction,
//! which also returns the winner's marker (so a replay answers with the same coupon in one
//! round trip).
//!
//! A cancelled or refunded payment first marks its state item (strongly consistent), then
//! revokes every coupon its reward markers name, each with the condition `status = ISSUED`
//! (a used coupon is reported, not revoked). Any issuance that committed before the mark is
//! found by the marker query (primary index, strongly consistent); any later one fails its
//! state check. So a cancelled payment never keeps an unused coupon, in any order.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use promo_shared::campaign::{Campaign, RewardRule};
use promo_shared::coupon::{CouponCode, CouponStatus, IssueSource, IssuedCoupon};
use promo_shared::ids::{CampaignId, PaymentId, RuleId, UserId};
use promo_shared::keys;
use promo_shared::payment::{PaymentEvent, PaymentKind};
use promo_shared::ports::{Clock, IdGen, backoff};
use promo_shared::store::{Cond, ItemExt, Query, Store, StoreError, TxOp, Update, client_token};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use crate::campaigns;

/// Fresh codes tried before giving up on collisions (at 60 bits, one retry is already rare).
const CODE_ATTEMPTS: u32 = 5;
/// Retries of throttled or conflicting transactions.
const TRANSIENT_ATTEMPTS: u32 = 8;

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

/// One reward coupon of a payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reward {
    pub campaign_id: CampaignId,
    pub rule_id: RuleId,
    pub code: CouponCode,
    /// True when an earlier delivery already issued it.
    pub duplicate: bool,
}

pub struct Issuer<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    /// Deployed campaigns, re-read at most this often (a deploy is seen within it).
    campaign_ttl: Duration,
    campaigns: tokio::sync::RwLock<Option<(std::time::Instant, Arc<Vec<Campaign>>)>>,
}

/// How long the issuer reuses the list of deployed campaigns.
pub const DEFAULT_CAMPAIGN_TTL: Duration = Duration::from_secs(1);

impl<S: Store> Issuer<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Self {
        Issuer { store, clock, ids, campaign_ttl: DEFAULT_CAMPAIGN_TTL, campaigns: Default::default() }
    }

    /// Re-reads deployed campaigns at most every `ttl` (zero: on every event).
    pub fn with_campaign_ttl(mut self, ttl: Duration) -> Self {
        self.campaign_ttl = ttl;
        self
    }

    async fn deployed_campaigns(&self) -> Result<Arc<Vec<Campaign>>, IssueError> {
        let fresh = |cached: &Option<(std::time::Instant, Arc<Vec<Campaign>>)>| {
            cached.as_ref().filter(|(at, _)| at.elapsed() < self.campaign_ttl).map(|(_, list)| list.clone())
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
        let list = Arc::new(campaigns::list(&self.store).await?);
        *cached = Some((std::time::Instant::now(), list.clone()));
        Ok(list)
    }

    /// Handles a payment event. A paid payment earns the rewards of every campaign rule it
    /// meets (replays return the same coupons with `duplicate: true`; a payment cancelled
    /// meanwhile earns nothing); a cancelled or refunded one revokes its unused coupons.
    pub async fn handle_payment(&self, event: &PaymentEvent) -> Result<PaymentOutcome, IssueError> {
        match event.kind {
            PaymentKind::Paid => {
                let mut rewards = Vec::new();
                for campaign in self.deployed_campaigns().await?.iter() {
                    for rule in campaign.rewards_for(event) {
                        if let Some(r) = self.issue_reward(campaign, rule, event).await? {
                            rewards.push(r);
                        }
                    }
                }
                Ok(PaymentOutcome { rewards, revocations: vec![] })
            }
            PaymentKind::Cancelled | PaymentKind::Refunded => {
                Ok(PaymentOutcome { rewards: vec![], revocations: self.revoke(event).await? })
            }
        }
    }

    async fn revoke(&self, event: &PaymentEvent) -> Result<Vec<Revocation>, IssueError> {
        let state = if event.kind == PaymentKind::Cancelled { STATE_CANCELLED } else { STATE_REFUNDED };
        let now = self.clock.now();
        // First the mark: from here on no issuance for this payment can commit.
        self.store
            .update(
                &keys::payment_state(&event.payment_id),
                &[Update::set("status", state), Update::set("updated_at", now.to_rfc3339())],
                None,
            )
            .await?;
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .query(
                    &Query::partition(keys::payment_partition(&event.payment_id))
                        .prefix(keys::REWARD_SK_PREFIX)
                        .after(after),
                )
                .await?;
            for marker in &page.items {
                let (Some(code), Some(user)) = (
                    marker.str_attr("code").and_then(|c| CouponCode::parse(c).ok()),
                    marker.str_attr("user_id").and_then(|u| UserId::parse(u).ok()),
                ) else {
                    return Err(IssueError::Permanent("reward marker without code or user".into()));
                };
                let outcome = self.revoke_one(&user, &code, state, now).await?;
                tracing::info!(payment = %event.payment_id, outcome = ?outcome, "payment coupon revocation");
                out.push(Revocation { code, user_id: user, outcome });
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    async fn revoke_one(
        &self,
        user: &UserId,
        code: &CouponCode,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<RevocationOutcome, IssueError> {
        let key = keys::wallet_coupon(user, code);
        let revoke = [
            Update::set("status", json!(CouponStatus::Revoked)),
            Update::set("revoked_at", now.to_rfc3339()),
            Update::set("revoked_because", reason),
        ];
        match self.store.update(&key, &revoke, Some(Cond::eq("status", json!(CouponStatus::Issued)))).await {
            Ok(_) => Ok(RevocationOutcome::Revoked),
            // The refused update returns the coupon as it is.
            Err(StoreError::ConditionFailed { found }) => match found.as_ref().and_then(|c| c.get("status")) {
                Some(s) if *s == json!(CouponStatus::Used) => Ok(RevocationOutcome::Used),
                Some(s) if *s == json!(CouponStatus::Revoked) => Ok(RevocationOutcome::AlreadyRevoked),
                _ => Err(IssueError::Permanent(format!("coupon {code} of a reward marker is missing"))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Issues one reward; `None` when the payment was cancelled or refunded meanwhile.
    async fn issue_reward(
        &self,
        campaign: &Campaign,
        rule: &RewardRule,
        event: &PaymentEvent,
    ) -> Result<Option<Reward>, IssueError> {
        let template = campaign
            .coupon(&rule.coupon)
            .ok_or_else(|| IssueError::Permanent(format!("rule {} names a missing coupon", rule.id)))?;
        let marker = keys::payment_reward(&event.payment_id, &campaign.id, &rule.id);
        let mut transient = 0;
        let mut collisions = 0;
        loop {
            let now = self.clock.now();
            let code = CouponCode::from_random(&self.ids.random_12());
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

            let wallet_key = keys::wallet_coupon(&event.user_id, &code);
            let mut wallet_item = wallet_key.item();
            if let serde_json::Value::Object(fields) =
                serde_json::to_value(&coupon).map_err(|e| IssueError::Permanent(e.to_string()))?
            {
                wallet_item.extend(fields);
            }
            wallet_item.insert("type".into(), "coupon".into());

            let mut code_item = keys::coupon_code(&code).item();
            code_item.insert("type".into(), "coupon_code".into());
            code_item.insert("user_id".into(), event.user_id.as_str().into());

            let ops = vec![
                TxOp::Put { item: marker_item, cond: Some(Cond::NotExists) },
                TxOp::Put { item: wallet_item, cond: Some(Cond::NotExists) },
                TxOp::Put { item: code_item, cond: Some(Cond::NotExists) },
                payment_not_cancelled(&event.payment_id),
            ];
            let token = reward_token(&event.payment_id, &campaign.id, &rule.id, &code);
            match self.store.transact(ops, Some(&token)).await {
                Ok(()) => {
                    tracing::info!(payment = %event.payment_id, campaign = %campaign.id, rule = %rule.id, "reward issued");
                    return Ok(Some(Reward {
                        campaign_id: campaign.id.clone(),
                        rule_id: rule.id.clone(),
                        code,
                        duplicate: false,
                    }));
                }
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
                    return Ok(Some(Reward {
                        campaign_id: campaign.id.clone(),
                        rule_id: rule.id.clone(),
                        code,
                        duplicate: true,
                    }));
                }
                Err(e) if e.failed_at(3) => {
                    tracing::info!(payment = %event.payment_id, "payment cancelled or refunded meanwhile: no reward");
                    return Ok(None);
                }
                Err(e) if (e.failed_at(1) || e.failed_at(2)) && collisions < CODE_ATTEMPTS => collisions += 1,
                Err(e) if e.is_retryable() && transient < TRANSIENT_ATTEMPTS => {
                    transient += 1;
                    let random = u64::from_le_bytes(self.ids.random_12()[..8].try_into().unwrap_or([0; 8]));
                    tokio::time::sleep(backoff(transient, Duration::from_millis(20), Duration::from_secs(2), random))
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The check every reward issuance carries: the payment has not been cancelled or refunded
/// (its state item is absent or says otherwise), so a cancellation that commits first wins.
pub fn payment_not_cancelled(payment: &PaymentId) -> TxOp {
    TxOp::Check {
        key: keys::payment_state(payment),
        cond: Cond::Or(vec![
            Cond::AttrNotExists("status".into()),
            Cond::And(vec![Cond::eq("status", STATE_CANCELLED).negate(), Cond::eq("status", STATE_REFUNDED).negate()]),
        ]),
    }
}

/// The client token of one reward issuance attempt (a fresh code is a new attempt).
pub fn reward_token(payment: &PaymentId, campaign: &CampaignId, rule: &RuleId, code: &CouponCode) -> String {
    client_token(&[payment.as_str(), campaign.as_str(), rule.as_str(), code.as_str()])
}

fn coupon_end(campaign: &Campaign, valid_days: Option<u32>, now: DateTime<Utc>) -> DateTime<Utc> {
    match valid_days {
        Some(d) => now + chrono::Duration::days(i64::from(d)),
        None => campaign.ends_at,
    }
}
