//! When a claim campaign sells out, product pages must stop pricing with its coupon: the
//! spec's shoppers are never shown "a price they cannot get". The price book is rebuilt on
//! every `promoctl campaign deploy`, but stock runs out between deploys, so the claimer tells
//! a [`Republisher`] ([`SoldOutHook`]) the moment it finds every shard empty.
//!
//! Hundreds of claimers find the same campaign empty at once, on many Lambda instances. They
//! agree on one publisher with a conditional write, never by reading first:
//!
//! 1. put the marker `CAMPAIGN#<c>#SOLDOUT` if absent (`marked_at`): the winner publishes;
//! 2. publish: rebuild the price book from the deployed campaigns, leaving out every
//!    sold-out campaign's coupon and keeping the stored book's quote parameters (rounding
//!    unit, mileage policy: only `promoctl` configures them), store it, write it to the edge's
//!    KV when configured, then set the marker's `published_at`;
//! 3. a loser that finds `published_at` remembers the campaign as done (stock never comes
//!    back); one that finds a marker without it, older than the lease, takes it over with a
//!    conditional update on the `marked_at` it saw (a publisher that crashed mid-way), else
//!    leaves it to the live publisher and looks again after [`RECHECK`].
//!
//! Two campaigns selling out at once: each publisher, after its write, reads the sold-out set
//! again and publishes again if it grew meanwhile, so the last write to land always knows of
//! every sell-out that happened before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::claims::sold_out::{self, SoldOut};
use crate::domain::ids::CampaignId;
use crate::domain::price_book::PriceBook;
use crate::ports::clock::Clock;
use crate::ports::store::Cond;
use crate::ports::store::Store;
use crate::ports::store::StoreError;
use thiserror::Error;

use crate::campaigns;
use crate::claims;
use crate::claims::SoldOutHook;
use crate::ports::publish::PriceBookPublisher;
use crate::pricing::catalog;

/// How long a publisher may hold the marker before another instance takes over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// How long an instance leaves a campaign alone after finding another publisher at work.
pub const RECHECK: Duration = Duration::from_secs(5);
/// Republications when other campaigns keep selling out during one.
const MAX_ROUNDS: usize = 5;

#[derive(Debug, Error)]
pub enum SellOutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("publishing the price book to the edge: {0}")]
    Publish(String),
}

/// What one call did.
#[derive(Clone, Debug, PartialEq)]
pub enum Republished {
    /// This call published the price book (after `rounds` rebuilds).
    Published { book: PriceBook, rounds: usize },
    /// Another call already published it.
    AlreadyPublished,
    /// Another call is publishing it now (its lease has not run out).
    InProgress,
    /// Known done, or looked at less than [`RECHECK`] ago: nothing read or written.
    Skipped,
    /// The campaign as stored has stock left (the claimer held an older copy of it, before a
    /// deploy added stock or shards): nothing marked, nothing published.
    NotSoldOut,
}

enum Seen {
    Published,
    Busy(DateTime<Utc>),
}

/// Republishes the price book once per sold-out campaign, across instances.
pub struct Republisher<S> {
    store: S,
    clock: Arc<dyn Clock>,
    edge: Option<Arc<dyn PriceBookPublisher>>,
    lease: Duration,
    seen: Mutex<HashMap<CampaignId, Seen>>,
}

impl<S: Store> Republisher<S> {
    /// `edge`: the Worker's KV namespace (production); without it only the store's copy of the
    /// price book is rebuilt (what `promoctl dev` serves from).
    pub fn new(store: S, clock: Arc<dyn Clock>, edge: Option<Arc<dyn PriceBookPublisher>>) -> Self {
        Republisher { store, clock, edge, lease: DEFAULT_LEASE, seen: Mutex::new(HashMap::new()) }
    }

    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// `campaign` was found sold out: republish the price book unless it is (being) done.
    pub async fn republish(&self, campaign: &CampaignId) -> Result<Republished, SellOutError> {
        match self.lock().get(campaign) {
            Some(Seen::Published) => return Ok(Republished::Skipped),
            Some(Seen::Busy(until)) if self.clock.now() < *until => return Ok(Republished::Skipped),
            _ => {}
        }
        let now = self.clock.now();
        // Marked only when the stored campaign's stock is really all taken: a marker is never
        // published for a campaign that still offers its coupon.
        let Some(stored) = campaigns::get(&self.store, campaign).await? else { return Ok(self.not_sold_out(campaign)) };
        if claims::sold_out(&self.store, std::slice::from_ref(&stored), now).await?.is_empty() {
            return Ok(self.not_sold_out(campaign));
        }
        let key = sold_out::key(campaign);
        match self.store.put(sold_out::item(campaign, now), Some(Cond::NotExists)).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { found }) => {
                let found = SoldOut::from_item(&found.unwrap_or_default());
                if found.published {
                    self.lock().insert(campaign.clone(), Seen::Published);
                    return Ok(Republished::AlreadyPublished);
                }
                let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
                if now.timestamp_millis().saturating_sub(found.marked_at) < lease_ms {
                    return Ok(self.busy(campaign));
                }
                // The publisher that marked it did not finish within its lease: take over.
                let (take, seen) = sold_out::take_over(found.marked_at, now);
                match self.store.update(&key, &take, Some(seen)).await {
                    Ok(_) => tracing::warn!(campaign = %campaign, "taking over an unfinished sold-out republication"),
                    Err(StoreError::ConditionFailed { .. }) => return Ok(self.busy(campaign)),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        let (book, rounds) = self.publish().await?;
        self.store.update(&key, &sold_out::published(self.clock.now()), None).await?;
        self.lock().insert(campaign.clone(), Seen::Published);
        tracing::info!(campaign = %campaign, coupons = book.coupons.len(), rounds, "sold out: price book republished");
        Ok(Republished::Published { book, rounds })
    }

    /// Rebuilds and writes the book until no campaign sold out while it was being written.
    /// Campaigns and stock are read once per round: the read that checks a round is the one
    /// the next round builds from.
    async fn publish(&self) -> Result<(PriceBook, usize), SellOutError> {
        let current = catalog::StoreCatalog(&self.store)
            .price_book()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut deployed = campaigns::list(&self.store).await?;
        let mut sold_out = claims::sold_out(&self.store, &deployed, self.clock.now()).await?;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let now = self.clock.now();
            let book = PriceBook::from_campaigns(&deployed, &sold_out, now, current.rounding_unit, current.mileage);
            catalog::store_price_book(&self.store, &book, now).await?;
            if let Some(edge) = &self.edge {
                edge.publish(&book).await.map_err(SellOutError::Publish)?;
            }
            deployed = campaigns::list(&self.store).await?;
            sold_out = claims::sold_out(&self.store, &deployed, self.clock.now()).await?;
            let offered = |id: &CampaignId| book.coupons.iter().any(|c| c.campaign_id == id.as_str());
            if rounds >= MAX_ROUNDS || !sold_out.iter().any(offered) {
                return Ok((book, rounds));
            }
        }
    }

    fn not_sold_out(&self, campaign: &CampaignId) -> Republished {
        self.lock().insert(
            campaign.clone(),
            Seen::Busy(self.clock.now() + chrono::Duration::from_std(RECHECK).unwrap_or_default()),
        );
        Republished::NotSoldOut
    }

    fn busy(&self, campaign: &CampaignId) -> Republished {
        self.lock().insert(
            campaign.clone(),
            Seen::Busy(self.clock.now() + chrono::Duration::from_std(RECHECK).unwrap_or_default()),
        );
        Republished::InProgress
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CampaignId, Seen>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl<S: Store> SoldOutHook for Republisher<S> {
    async fn sold_out(&self, campaign: &CampaignId) {
        match self.republish(campaign).await {
            Ok(_) => {}
            // The claim's answer (sold out) stands; the marker's lease lets a later claim retry.
            Err(e) => {
                tracing::warn!(campaign = %campaign, error = %e, "republishing the price book after a sell-out failed")
            }
        }
    }
}
