//! A store wrapper that fails on purpose, for cases that prove how a flow retries.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use promo_shared::ports::store::Cond;

use promo_shared::ports::store::Item;

use promo_shared::ports::store::Key;

use promo_shared::ports::store::Page;

use promo_shared::ports::store::Query;

use promo_shared::ports::store::Store;

use promo_shared::ports::store::StoreError;

use promo_shared::ports::store::TxOp;

use promo_shared::ports::store::Update;

use crate::store::DynStore;

/// Throttles the next N calls of a kind (nothing reaches the store), or lets transactions
/// commit and then answers `Unavailable` (a lost answer); counts every call.
pub struct Flaky {
    inner: DynStore,
    pub throttle_updates: AtomicUsize,
    pub throttle_queries: AtomicUsize,
    pub throttle_transacts: AtomicUsize,
    /// While set, the first answer of each transaction (by its client token) is lost after
    /// the commit: a retry under the same token gets its answer.
    pub lose_first_answers: AtomicBool,
    lost: Mutex<HashSet<String>>,
    pub updates: AtomicUsize,
    pub queries: AtomicUsize,
    pub transacts: AtomicUsize,
}

impl Flaky {
    pub fn over(s: &DynStore) -> Arc<Flaky> {
        let zero = AtomicUsize::new;
        Arc::new(Flaky {
            inner: s.clone(),
            throttle_updates: zero(0),
            throttle_queries: zero(0),
            throttle_transacts: zero(0),
            lose_first_answers: AtomicBool::new(false),
            lost: Mutex::new(HashSet::new()),
            updates: zero(0),
            queries: zero(0),
            transacts: zero(0),
        })
    }
}

/// Takes one from `n` if it is not zero; whether it did.
fn take(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok()
}

fn throttled() -> StoreError {
    StoreError::Throttled("injected by the test".into())
}

#[async_trait::async_trait]
impl Store for Flaky {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.inner.put(item, cond).await
    }
    async fn update(&self, key: &Key, updates: &[Update], cond: Option<Cond>) -> Result<Item, StoreError> {
        self.updates.fetch_add(1, Ordering::SeqCst);
        if take(&self.throttle_updates) {
            return Err(throttled());
        }
        self.inner.update(key, updates, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, StoreError> {
        self.inner.delete(key, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>, token: Option<&str>) -> Result<(), StoreError> {
        self.transacts.fetch_add(1, Ordering::SeqCst);
        if take(&self.throttle_transacts) {
            return Err(throttled());
        }
        self.inner.transact(ops, token).await?;
        if self.lose_first_answers.load(Ordering::SeqCst)
            && let Some(t) = token
            && self.lost.lock().unwrap_or_else(|p| p.into_inner()).insert(t.to_string())
        {
            return Err(StoreError::Unavailable("answer lost after the commit (injected by the test)".into()));
        }
        Ok(())
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        if take(&self.throttle_queries) {
            return Err(throttled());
        }
        self.inner.query(q).await
    }
}
