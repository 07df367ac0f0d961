//! A store wrapper that counts round trips, for cases that prove how many a flow takes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use promo_shared::campaigns;
use promo_shared::ports::store::Cond;
use promo_shared::ports::store::Item;
use promo_shared::ports::store::Key;
use promo_shared::ports::store::Page;
use promo_shared::ports::store::Query;
use promo_shared::ports::store::Store;
use promo_shared::ports::store::StoreError;
use promo_shared::ports::store::TxOp;
use promo_shared::ports::store::Update;

/// Counts round trips to the store (campaign-list queries, reads, puts, transactions);
/// everything passes through.
pub struct Counting {
    inner: Arc<dyn Store>,
    pub campaign_queries: AtomicUsize,
    /// Every query, whatever its partition.
    pub queries: AtomicUsize,
    pub gets: AtomicUsize,
    pub puts: AtomicUsize,
    pub updates: AtomicUsize,
    pub deletes: AtomicUsize,
    pub transacts: AtomicUsize,
}

impl Counting {
    pub fn over(s: &Arc<dyn Store>) -> Arc<Counting> {
        let zero = AtomicUsize::new;
        Arc::new(Counting {
            inner: s.clone(),
            campaign_queries: zero(0),
            queries: zero(0),
            gets: zero(0),
            puts: zero(0),
            updates: zero(0),
            deletes: zero(0),
            transacts: zero(0),
        })
    }
    /// Every round trip counted so far.
    pub fn total(&self) -> usize {
        [&self.queries, &self.gets, &self.puts, &self.updates, &self.deletes, &self.transacts]
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .sum()
    }

    pub fn reset(&self) {
        for n in [
            &self.campaign_queries,
            &self.queries,
            &self.gets,
            &self.puts,
            &self.updates,
            &self.deletes,
            &self.transacts,
        ] {
            n.store(0, Ordering::SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl Store for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(item, cond).await
    }
    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        self.updates.fetch_add(1, Ordering::SeqCst);
        self.inner.update(key, updates, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        self.transacts.fetch_add(1, Ordering::SeqCst);
        self.inner.transact(ops, token).await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        if q.pk == campaigns::items::PARTITION {
            self.campaign_queries.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.query(q).await
    }
}
