//! Deployed campaigns in the store, and the one atomic change a deploy makes to them.
//!
//! # What a deploy writes
//!
//! A campaign has up to one claim stock and one stock per limited reward rule, each split
//! over `shards` counter items (`remaining`, and `initial`: the units ever allotted to the
//! shard, so `initial − remaining` is what it has issued). A deploy is **one transaction**:
//! the campaign item (conditioned on the version it read: two deploys cannot both commit
//! from the same version) and every stock shard it changes, each change an `ADD` of a
//! planned delta under a condition on what was read. So whatever deploys and claims race,
//! the stock in force is always the stored campaign's, exactly:
//!
//! - the issued count of a stock is what the stored campaign's stock says minus what is left
//!   (`issued = stock − Σ remaining`, or `Σ (initial − remaining)` when larger: a store
//!   written before this rule, whose shards were put-if-absent, once held more than its stock);
//! - the new stock `N` leaves `N − issued` to spread; `N < issued` is refused, nothing written;
//! - the same shard count: the difference is added (spread over the shards) or taken (from
//!   the fullest first, each take conditioned on `remaining >= take`);
//! - another shard count: the units left are spread afresh over the new shards, and shards
//!   beyond the new count are emptied under `remaining = what was read`, so a unit given back
//!   meanwhile makes the deploy read again rather than strand it. Nothing adds to them
//!   afterwards: a claim only takes, and a revocation gives a unit back to a shard of the
//!   layout in force (conditioned on the campaign's version, see `issuer`);
//! - a claim shard of the new layout also carries the campaign's window (`open_from`,
//!   `open_until`), so a claimer holding an older copy of the campaign is bound by it.
//!
//! A deploy whose shard conditions fail (claims took units between its read and its write)
//! reads again and retries a few times; one whose version condition fails lost to another
//! deploy and says so ([`DeployError::Conflict`]). DynamoDB's transactions hold at most 100
//! items, so a deploy changes at most [`MAX_SHARD_CHANGES`] shards: a campaign splits its
//! stocks over at most [`crate::domain::campaign::MAX_STOCK_SHARDS`] shards (checked when a
//! campaign file is validated), and a deploy that would reshard more than fits at once is
//! refused with a message saying to change the shards in smaller steps.

pub mod items;
pub mod stock;

use std::time::Duration;

use thiserror::Error;

use chrono::{DateTime, SubsecRound as _, Utc};

use crate::campaigns::items as campaign_item;
use crate::campaigns::items::{ChangeAction, Deployed, Paused};
use crate::campaigns::stock::StockShard;
use crate::claims::sold_out;
use crate::domain::campaign::{Campaign, CampaignSpec, RewardRule};
use crate::domain::campaign_diff;
use crate::domain::ids::{CampaignId, RuleId};
use crate::ports::clock::Clock;
use crate::ports::store::{ItemExt, Key, MAX_TX_OPS, Store, StoreError, Tx, TxOp, query_all};

/// Shard changes one deploy may make: the transaction's other items are the campaign, its
/// history line and, when a sold-out campaign gets stock again, its sold-out marker.
pub const MAX_SHARD_CHANGES: usize = MAX_TX_OPS - 3;
/// Times a deploy reads and plans again when claims changed the shards it read.
const DEPLOY_ATTEMPTS: u32 = 20;

#[derive(Debug, Error)]
pub enum DeployError {
    /// Another deploy of the campaign committed after this one read it: nothing written.
    #[error("campaign `{0}` was deployed by someone else meanwhile: nothing was changed; check it and deploy again")]
    Conflict(CampaignId),
    /// The change cannot be applied safely: nothing written; the reasons say what to change.
    #[error("campaign `{campaign}` cannot be deployed as it is: {}", .reasons.join("; "))]
    Refused { campaign: CampaignId, reasons: Vec<String> },
    /// Claims kept changing the shards between every read and write: nothing written.
    #[error("campaign `{0}`: its stock kept changing under heavy claims; nothing was changed, deploy again")]
    Busy(CampaignId),
    /// Pause, resume or end of a campaign that was never deployed.
    #[error("campaign `{0}` is not deployed")]
    NotDeployed(CampaignId),
    /// Pause or resume of a campaign that has ended.
    #[error("campaign `{0}` has ended: it can no longer be paused or resumed")]
    Ended(CampaignId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The operations of a deploy's transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeploySlot {
    /// The campaign, over the version the deploy read.
    Campaign,
    /// A change of a stock shard (under a condition on what was read).
    Shard,
    /// The sold-out marker, cleared when stock comes back.
    SoldOut,
    /// The history line of the change.
    History,
    /// An event's item or due entry (`events::deploy_ops`).
    Event,
}

/// What a change did: the version in force afterwards and what changed (nothing: the
/// change was already in force, no version was written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub version: i64,
    pub changes: Vec<String>,
}

impl Deployment {
    pub fn unchanged(&self) -> bool {
        self.changes.is_empty()
    }
}

/// An operator's change of a deployed campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Hold it: no claims, no rewards, no promotion in the price book.
    Pause,
    Resume,
    /// End it now (its `ends_at` becomes now), stock shards' windows included.
    End,
}

/// Writes (or replaces) a campaign and applies its stock changes, in one transaction (see the
/// module docs), recorded as deployed by `system`. Returns the version in force.
pub async fn deploy<S: Store + ?Sized>(store: &S, clock: &dyn Clock, campaign: &Campaign) -> Result<i64, DeployError> {
    Ok(deploy_as(store, clock, campaign, "system").await?.version)
}

/// Deploys `campaign` on behalf of `by`: nothing is written when the deployed campaign is the
/// same (an idempotent deploy); otherwise one transaction writes the campaign, its stock
/// changes and a history line with what changed. An operator's pause is kept.
pub async fn deploy_as<S: Store + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    campaign: &Campaign,
    by: &str,
) -> Result<Deployment, DeployError> {
    change(store, clock, Change::Deploy(campaign), by).await
}

/// Pauses, resumes or ends deployed campaign `id` on behalf of `by`; nothing is written when
/// it is already so.
pub async fn control<S: Store + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    id: &CampaignId,
    what: Control,
    by: &str,
) -> Result<Deployment, DeployError> {
    change(store, clock, Change::Control(id, what), by).await
}

/// What [`change`] applies.
#[derive(Clone, Copy)]
enum Change<'a> {
    Deploy(&'a Campaign),
    Control(&'a CampaignId, Control),
}

/// The campaign a change leaves, its pause, the history action and what changed (empty:
/// already so), from what is deployed.
fn target(
    what: Change<'_>,
    old: Option<&Deployed>,
    now: DateTime<Utc>,
    by: &str,
) -> Result<(Campaign, Option<Paused>, ChangeAction, Vec<String>), DeployError> {
    let (id, ctl) = match what {
        Change::Deploy(c) => {
            let lines = campaign_diff::diff(old.map(|o| &o.campaign), c);
            let paused = old.and_then(|o| o.paused.clone());
            return Ok((c.clone().with_paused(paused.is_some()), paused, ChangeAction::Deploy, lines));
        }
        Change::Control(id, ctl) => (id, ctl),
    };
    let old = old.ok_or_else(|| DeployError::NotDeployed(id.clone()))?;
    let c = old.campaign.clone();
    let ended = now >= c.ends_at;
    match ctl {
        Control::Pause if ended => Err(DeployError::Ended(id.clone())),
        Control::Pause if old.paused.is_some() => Ok((c, old.paused.clone(), ChangeAction::Pause, vec![])),
        Control::Pause => {
            let paused = Some(Paused { at: now, by: by.to_string() });
            Ok((c.with_paused(true), paused, ChangeAction::Pause, vec!["paused".to_string()]))
        }
        Control::Resume if ended => Err(DeployError::Ended(id.clone())),
        Control::Resume if old.paused.is_none() => Ok((c, None, ChangeAction::Resume, vec![])),
        Control::Resume => Ok((c.with_paused(false), None, ChangeAction::Resume, vec!["resumed".to_string()])),
        Control::End if ended => Ok((c, old.paused.clone(), ChangeAction::End, vec![])),
        Control::End => {
            // Ends now, to the second; a campaign not started yet gets a one-second window
            // ending now (a window is never empty).
            let end = now.trunc_subsecs(0);
            let mut spec: CampaignSpec = c.spec().clone();
            spec.starts_at = spec.starts_at.min(end - chrono::Duration::seconds(1));
            spec.ends_at = end;
            let ended = Campaign::new(spec)
                .map_err(|e| DeployError::Refused { campaign: id.clone(), reasons: vec![e.to_string()] })?
                .with_paused(old.paused.is_some());
            let lines = campaign_diff::diff(Some(&c), &ended);
            Ok((ended, old.paused.clone(), ChangeAction::End, lines))
        }
    }
}

async fn change<S: Store + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    what: Change<'_>,
    by: &str,
) -> Result<Deployment, DeployError> {
    let id = match what {
        Change::Deploy(c) => &c.id,
        Change::Control(id, _) => id,
    };
    for attempt in 0..DEPLOY_ATTEMPTS {
        let now = clock.now();
        let old = get_deployed(store, id).await?;
        let (campaign, paused, action, lines) = target(what, old.as_ref(), now, by)?;
        if lines.is_empty() {
            return Ok(Deployment { version: old.map_or(0, |o| o.version), changes: lines });
        }
        let campaign = &campaign;
        let version = old.as_ref().map_or(0, |d| d.version) + 1;
        let mut shards = Vec::new();
        let mut refusals = Vec::new();
        let mut sold_out_again = false;
        for which in stocks(campaign) {
            let new = layout(campaign, &which).unwrap_or(Layout { stock: 0, shards: 0 });
            let old_layout = old.as_ref().and_then(|o| layout(&o.campaign, &which));
            let slots = new.shards.max(old_layout.map_or(0, |l| l.shards));
            let keys: Vec<Key> = (0..slots).map(|n| shard_key(&campaign.id, &which, n)).collect();
            let mut read = Vec::with_capacity(keys.len());
            for key in &keys {
                read.push(StockShard::from_item(store.get(key).await?.as_ref()));
            }
            let window = matches!(which, StockRef::Claim).then(|| Window::of(campaign));
            match plan_stock(&which.name(), old_layout, new, &read, window) {
                Ok(changes) => {
                    if matches!(which, StockRef::Claim) && changes.left > 0 {
                        sold_out_again = true;
                    }
                    shards.extend(changes.shards.iter().map(|c| c.op(&keys[usize::from(c.shard)], campaign, version)));
                }
                Err(reason) => refusals.push(reason),
            }
        }
        let event_ops = match what {
            Change::Deploy(_) => {
                let old_campaign = old.as_ref().map(|o| &o.campaign);
                refusals.extend(crate::events::removal_refusals(store, campaign, old_campaign).await?);
                crate::events::deploy_ops(campaign, old_campaign)
            }
            Change::Control(..) => vec![],
        };
        if !refusals.is_empty() {
            return Err(DeployError::Refused { campaign: campaign.id.clone(), reasons: refusals });
        }
        if shards.len() + event_ops.len() > MAX_SHARD_CHANGES {
            return Err(DeployError::Refused {
                campaign: campaign.id.clone(),
                reasons: vec![format!(
                    "this deploy would change {} stock shards at once, and at most {MAX_SHARD_CHANGES} fit in one \
                     atomic change: change `shards` in smaller steps",
                    shards.len()
                )],
            });
        }
        let deployed = Deployed {
            campaign: campaign.clone(),
            version,
            deployed_at: Some(now),
            deployed_by: Some(by.to_string()),
            paused,
        };
        let history = campaign_item::Change {
            campaign: campaign.id.clone(),
            version,
            action,
            at: now,
            by: by.to_string(),
            changes: if action == ChangeAction::Deploy { lines.clone() } else { vec![] },
            deployed: (action == ChangeAction::Deploy).then(|| deployed.campaign.clone()),
        };
        let mut tx = Tx::new().with(DeploySlot::Campaign, deployed.put()?).with(DeploySlot::History, history.put()?);
        for op in shards {
            tx.push(DeploySlot::Shard, op);
        }
        for op in event_ops {
            tx.push(DeploySlot::Event, op);
        }
        if sold_out_again && store.get(&sold_out::key(&campaign.id)).await?.is_some() {
            // Stock again: the next sell-out republishes the price book again.
            tx.push(DeploySlot::SoldOut, TxOp::Delete { key: sold_out::key(&campaign.id), cond: None });
        }
        let (ops, tx) = tx.split();
        match store.transact(ops, None).await {
            Ok(()) => return Ok(Deployment { version, changes: lines }),
            Err(e) if tx.failed(&e, DeploySlot::Campaign) || tx.failed(&e, DeploySlot::History) => {
                return Err(DeployError::Conflict(campaign.id.clone()));
            }
            Err(e) if tx.failed(&e, DeploySlot::Event) => {
                return Err(DeployError::Refused {
                    campaign: campaign.id.clone(),
                    reasons: event_refusals(campaign, &e),
                });
            }
            // A shard moved under a claim, or the store says "conflict" or "slow down": again.
            Err(e @ StoreError::TransactionCancelled { .. }) | Err(e @ StoreError::Throttled(_)) => {
                tracing::info!(campaign = %campaign.id, attempt, error = %e, "deploy: the stock moved; reading again");
                clock.sleep(Duration::from_millis(5 * u64::from(attempt + 1))).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(DeployError::Busy(id.clone()))
}

/// Why the events of a refused deploy could not be written, from the items their conditions
/// failed against.
fn event_refusals(campaign: &Campaign, e: &StoreError) -> Vec<String> {
    let StoreError::TransactionCancelled { reasons, found } = e else { return vec![e.to_string()] };
    let mut out = Vec::new();
    for (i, reason) in reasons.iter().enumerate() {
        if *reason != crate::ports::store::CancelReason::ConditionFailed {
            continue;
        }
        let Some(item) = found.get(i).and_then(Option::as_ref) else { continue };
        let Ok(state) = crate::events::items::EventState::from_item(item) else { continue };
        let id = state.id();
        if state.campaign != campaign.id.as_str() {
            out.push(format!("event id `{id}` is already used by campaign `{}`: choose another id", state.campaign));
        } else if let Some(new) = campaign.events.iter().find(|x| &x.id == id)
            && i64::from(new.stock) < state.taken
        {
            out.push(format!("event `{id}`: stock {} is below the {} places already taken", new.stock, state.taken));
        } else if let Some(new) = campaign.events.iter().find(|x| &x.id == id)
            && i64::from(new.waitlist_lines) != state.lines
            && state.status != crate::domain::limited_event::EventStatus::Inactive
        {
            out.push(format!(
                "event `{id}` is {}: its waitlist_lines ({}) can change only before it opens",
                state.status.as_str(),
                state.lines
            ));
        } else {
            out.push(format!("event `{id}` is {}: its window can no longer change", state.status.as_str()));
        }
    }
    if out.is_empty() {
        out.push("an event changed meanwhile; deploy again".into());
    }
    out
}

/// A campaign's history of changes, oldest first.
pub async fn history<S: Store + ?Sized>(store: &S, id: &CampaignId) -> Result<Vec<campaign_item::Change>, StoreError> {
    query_all(store, campaign_item::history(id)).await?.iter().map(campaign_item::Change::from_item).collect()
}

/// Version `version` of campaign `id`'s history, if there is one.
pub async fn version<S: Store + ?Sized>(
    store: &S,
    id: &CampaignId,
    version: i64,
) -> Result<Option<campaign_item::Change>, StoreError> {
    store.get(&campaign_item::change_key(id, version)).await?.map(|i| campaign_item::Change::from_item(&i)).transpose()
}

pub async fn get<S: Store + ?Sized>(store: &S, id: &CampaignId) -> Result<Option<Campaign>, StoreError> {
    Ok(get_deployed(store, id).await?.map(|d| d.campaign))
}

/// A deployed campaign with its version.
pub async fn get_deployed<S: Store + ?Sized>(store: &S, id: &CampaignId) -> Result<Option<Deployed>, StoreError> {
    store.get(&campaign_item::key(id)).await?.map(|i| Deployed::from_item(&i)).transpose()
}

/// Every deployed campaign.
pub async fn list<S: Store + ?Sized>(store: &S) -> Result<Vec<Campaign>, StoreError> {
    Ok(list_deployed(store).await?.into_iter().map(|d| d.campaign).collect())
}

/// Every deployed campaign with its version.
pub async fn list_deployed<S: Store + ?Sized>(store: &S) -> Result<Vec<Deployed>, StoreError> {
    query_all(store, campaign_item::all()).await?.iter().map(Deployed::from_item).collect()
}

/// The keys of a campaign's claim stock shards (none without a `claim` rule).
pub fn claim_shards(campaign: &Campaign) -> Vec<Key> {
    let shards = campaign.claim.as_ref().map_or(0, |c| c.shards);
    (0..shards).map(|n| stock::claim_key(&campaign.id, n)).collect()
}

/// The keys of a reward rule's stock shards (none for an unlimited rule).
pub fn reward_shards(campaign: &Campaign, rule: &RewardRule) -> Vec<Key> {
    let shards = if rule.stock.is_some() { rule.shards } else { 0 };
    (0..shards).map(|n| stock::reward_key(&campaign.id, &rule.id, n)).collect()
}

/// What each stock shard has left (an absent shard counts 0), read strongly consistent.
pub async fn remaining<S: Store + ?Sized>(store: &S, shards: &[Key]) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::with_capacity(shards.len());
    for shard in shards {
        out.push(store.get(shard).await?.and_then(|i| i.i64_attr(stock::REMAINING)).unwrap_or(0));
    }
    Ok(out)
}

/// One stock of a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StockRef {
    Claim,
    Reward(RuleId),
}

impl StockRef {
    fn name(&self) -> String {
        match self {
            StockRef::Claim => "claim".into(),
            StockRef::Reward(r) => format!("reward rule `{r}`"),
        }
    }
}

/// The stocks a campaign has (its claim, its limited reward rules).
fn stocks(campaign: &Campaign) -> Vec<StockRef> {
    let claim = campaign.claim.as_ref().map(|_| StockRef::Claim);
    let rewards = campaign.rewards.iter().filter(|r| r.stock.is_some()).map(|r| StockRef::Reward(r.id.clone()));
    claim.into_iter().chain(rewards).collect()
}

fn shard_key(campaign: &CampaignId, which: &StockRef, n: u16) -> Key {
    match which {
        StockRef::Claim => stock::claim_key(campaign, n),
        StockRef::Reward(rule) => stock::reward_key(campaign, rule, n),
    }
}

/// A stock's total and how many shards it is split over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub stock: u32,
    pub shards: u16,
}

/// The layout of one of `campaign`'s stocks (`None`: it has no such stock).
pub fn layout(campaign: &Campaign, which: &StockRef) -> Option<Layout> {
    match which {
        StockRef::Claim => campaign.claim.as_ref().map(|c| Layout { stock: c.stock, shards: c.shards }),
        StockRef::Reward(rule) => campaign
            .rewards
            .iter()
            .find(|r| &r.id == rule)
            .and_then(|r| Some(Layout { stock: r.stock?, shards: r.shards })),
    }
}

/// A claim campaign's window on its stock shards (epoch seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub until: i64,
}

impl Window {
    fn of(c: &Campaign) -> Window {
        Window { from: c.starts_at.timestamp(), until: c.ends_at.timestamp() }
    }
}

/// What a shard change is conditioned on, from what was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Adds: commutes with claims and give-backs.
    None,
    /// Takes: there must still be at least this much.
    AtLeast(i64),
    /// Empties a shard beyond the new layout: nothing may have changed since it was read.
    Exactly(i64),
}

/// One shard's change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardChange {
    pub shard: u16,
    /// Added to `remaining` and `initial`.
    pub delta: i64,
    pub guard: Guard,
    /// The window to set (claim shards of the new layout whose window is not this yet).
    pub window: Option<Window>,
}

impl ShardChange {
    fn op(&self, key: &Key, campaign: &Campaign, version: i64) -> TxOp {
        let updates = stock::change(&campaign.id, self.delta, self.window.map(|w| (w.from, w.until, version)));
        let cond = match self.guard {
            Guard::None => None,
            Guard::AtLeast(n) => Some(stock::at_least(n)),
            Guard::Exactly(n) => Some(stock::exactly(n)),
        };
        TxOp::Update { key: key.clone(), updates, cond }
    }
}

/// The plan of one stock: its shard changes, and what will be left to issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockPlan {
    pub shards: Vec<ShardChange>,
    /// Units left to issue once applied.
    pub left: i64,
    /// Units already issued.
    pub issued: i64,
}

/// Plans the change of one stock from `old` (the stored campaign's layout, `None` if it had
/// none) to `new`, given what its shards hold now (`read`: one per shard up to the larger
/// layout). Refuses a stock below what was already issued. `window`: the window the new
/// layout's shards must carry (claim stocks).
pub fn plan_stock(
    name: &str,
    old: Option<Layout>,
    new: Layout,
    read: &[StockShard],
    window: Option<Window>,
) -> Result<StockPlan, String> {
    let left_now: i64 = read.iter().map(|s| s.remaining).sum();
    let by_shards: i64 = read.iter().map(|s| s.initial - s.remaining).sum();
    let issued = match old {
        Some(o) => (i64::from(o.stock) - left_now).max(by_shards),
        None => by_shards.max(0),
    };
    let stock = i64::from(new.stock);
    if stock < issued {
        return Err(format!("{name}: a stock of {stock} is below the {issued} already issued"));
    }
    let left = stock - issued;
    let b = usize::from(new.shards);
    let mut deltas = vec![0i64; read.len()];
    let mut guards = vec![Guard::None; read.len()];
    if old.map(|o| o.shards) == Some(new.shards) {
        let change = left - left_now;
        if change > 0 {
            for (d, share) in deltas.iter_mut().zip(shares(change, b)) {
                *d = share;
            }
        } else if change < 0 {
            // From the fullest shards first: as few takes as possible.
            let mut order: Vec<usize> = (0..b).collect();
            order.sort_by_key(|i| std::cmp::Reverse(read[*i].remaining));
            let mut owed = -change;
            for i in order {
                let take = owed.min(read[i].remaining.max(0));
                if take > 0 {
                    deltas[i] = -take;
                    guards[i] = Guard::AtLeast(take);
                    owed -= take;
                }
            }
        }
    } else {
        let targets = shares(left, b);
        for (i, now) in read.iter().enumerate() {
            let target = targets.get(i).copied().unwrap_or(0);
            deltas[i] = target - now.remaining;
            guards[i] = if i >= b {
                Guard::Exactly(now.remaining)
            } else if deltas[i] < 0 {
                Guard::AtLeast(-deltas[i])
            } else {
                Guard::None
            };
        }
    }
    let shards = (0..read.len())
        .filter_map(|i| {
            let window = window.filter(|w| i < b && read[i].window != Some((w.from, w.until)));
            let needed = deltas[i] != 0 || window.is_some() || (i >= b && read[i].remaining != 0);
            needed.then(|| ShardChange {
                shard: u16::try_from(i).unwrap_or(u16::MAX),
                delta: deltas[i],
                guard: guards[i],
                window,
            })
        })
        .collect();
    Ok(StockPlan { shards, left, issued })
}

/// `total` spread over `n` shards, the remainder one by one over the first (10 over 4: 3, 3,
/// 2, 2). Nothing for `n = 0`.
fn shares(total: i64, n: usize) -> Vec<i64> {
    let Ok(n64) = i64::try_from(n) else { return vec![] };
    if n64 == 0 {
        return vec![];
    }
    (0..n64).map(|i| total / n64 + i64::from(i < total % n64)).collect()
}

/// The stock of each shard: `stock / shards`, the remainder spread one by one over the
/// first shards (stock 10 over 4 shards: 3, 3, 2, 2).
pub fn stock_shares(stock: u32, shards: u16) -> Vec<i64> {
    shares(i64::from(stock), usize::from(shards.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left(r: &[i64]) -> Vec<StockShard> {
        r.iter().map(|&remaining| StockShard { remaining, initial: remaining, window: None }).collect()
    }

    /// Shards as a deploy of `stock` over `initial.len()` shards left them, after the claims
    /// that took them down to `remaining`.
    fn after_claims(initial: &[i64], remaining: &[i64]) -> Vec<StockShard> {
        initial.iter().zip(remaining).map(|(&i, &r)| StockShard { remaining: r, initial: i, window: None }).collect()
    }

    fn apply(read: &[StockShard], plan: &StockPlan) -> Vec<i64> {
        let mut out: Vec<i64> = read.iter().map(|s| s.remaining).collect();
        for c in &plan.shards {
            out[usize::from(c.shard)] += c.delta;
        }
        out
    }

    fn l(stock: u32, shards: u16) -> Option<Layout> {
        Some(Layout { stock, shards })
    }

    #[test]
    fn stock_is_spread_over_the_shards_with_the_remainder_first() {
        assert_eq!(stock_shares(10, 4), [3, 3, 2, 2]);
        assert_eq!(stock_shares(100, 4), [25; 4]);
        assert_eq!(stock_shares(7, 1), [7]);
        assert_eq!(stock_shares(1000, 7).iter().sum::<i64>(), 1000);
    }

    #[test]
    fn a_first_deploy_spreads_the_stock() {
        let read = left(&[0, 0, 0, 0]);
        let plan = plan_stock("claim", None, Layout { stock: 10, shards: 4 }, &read, None).unwrap();
        assert_eq!((apply(&read, &plan), plan.left, plan.issued), (vec![3, 3, 2, 2], 10, 0));
        assert!(plan.shards.iter().all(|c| c.guard == Guard::None));
    }

    #[test]
    fn the_same_layout_redeployed_changes_nothing() {
        let read = after_claims(&[3, 3, 2, 2], &[1, 3, 0, 2]);
        let plan = plan_stock("claim", l(10, 4), Layout { stock: 10, shards: 4 }, &read, None).unwrap();
        assert!(plan.shards.is_empty(), "{plan:?}");
        assert_eq!((plan.left, plan.issued), (6, 4));
    }

    #[test]
    fn raising_and_lowering_the_stock_are_applied_exactly() {
        let read = after_claims(&[3, 3, 2, 2], &[1, 3, 0, 2]);
        let up = plan_stock("claim", l(10, 4), Layout { stock: 30, shards: 4 }, &read, None).unwrap();
        assert_eq!(apply(&read, &up).iter().sum::<i64>(), 26, "30 − 4 issued");
        let down = plan_stock("claim", l(10, 4), Layout { stock: 7, shards: 4 }, &read, None).unwrap();
        assert_eq!(apply(&read, &down).iter().sum::<i64>(), 3);
        assert!(down.shards.iter().all(|c| c.delta < 0 && c.guard == Guard::AtLeast(-c.delta)), "{down:?}");
        assert_eq!(down.shards.len(), 1, "taken from the fullest shard alone");
        let err = plan_stock("claim", l(10, 4), Layout { stock: 3, shards: 4 }, &read, None).unwrap_err();
        assert_eq!(err, "claim: a stock of 3 is below the 4 already issued");
        assert!(plan_stock("claim", l(10, 4), Layout { stock: 4, shards: 4 }, &read, None).is_ok(), "sold out is fine");
    }

    #[test]
    fn changing_the_shards_moves_the_units_left_and_empties_the_rest() {
        // The case: 100 over 2, redeployed over 8, then with a stock of 60.
        let read = after_claims(&[50, 50], &[50, 50]);
        let mut wide = read.clone();
        wide.extend(left(&[0; 6]));
        let eight = plan_stock("claim", l(100, 2), Layout { stock: 100, shards: 8 }, &wide, None).unwrap();
        let after = apply(&wide, &eight);
        assert_eq!(after, [13, 13, 13, 13, 12, 12, 12, 12], "100 in force, not 150");
        let read8: Vec<StockShard> =
            after.iter().map(|&r| StockShard { remaining: r, initial: r, window: None }).collect();
        let sixty = plan_stock("claim", l(100, 8), Layout { stock: 60, shards: 8 }, &read8, None).unwrap();
        assert_eq!(apply(&read8, &sixty).iter().sum::<i64>(), 60);

        // Fewer shards: the units of the dropped ones move, under an exact condition.
        let read = after_claims(&[3, 3, 2, 2], &[1, 3, 0, 2]);
        let two = plan_stock("claim", l(10, 4), Layout { stock: 10, shards: 2 }, &read, None).unwrap();
        assert_eq!(apply(&read, &two), [3, 3, 0, 0]);
        let guards: Vec<Guard> = two.shards.iter().filter(|c| c.shard >= 2).map(|c| c.guard).collect();
        assert_eq!(guards, [Guard::Exactly(2)], "shard 2 is already empty; shard 3 must still hold 2");
    }

    #[test]
    fn a_store_inflated_by_put_if_absent_deploys_is_brought_back_to_its_stock() {
        // 100 over 2 (50 + 50), then a redeploy over 4 that added 2 × 25 beside them: 150.
        let read = after_claims(&[50, 50, 25, 25], &[45, 50, 25, 20]);
        let plan = plan_stock("claim", l(100, 4), Layout { stock: 100, shards: 4 }, &read, None).unwrap();
        assert_eq!(plan.issued, 10, "counted by what each shard issued");
        assert_eq!(apply(&read, &plan).iter().sum::<i64>(), 90);
    }

    #[test]
    fn claim_shards_carry_the_window_only_where_it_changes() {
        let w = Window { from: 1, until: 2 };
        let mut read = left(&[5, 5]);
        read[0].window = Some((1, 2));
        let plan = plan_stock("claim", l(10, 2), Layout { stock: 10, shards: 2 }, &read, Some(w)).unwrap();
        assert_eq!(plan.shards.len(), 1);
        assert_eq!((plan.shards[0].shard, plan.shards[0].delta, plan.shards[0].window), (1, 0, Some(w)));
    }
}
