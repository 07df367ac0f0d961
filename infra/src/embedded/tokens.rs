//! The embedded store's transaction client tokens, remembered in memory.
//!
//! A client token makes a *retry* of a transaction idempotent: the same token with the same
//! operations within [`WINDOW_SECONDS`] is answered as a success without running them again,
//! with other operations it is refused (DynamoDB's `ClientRequestToken`). On DynamoDB a retry
//! comes from a caller that did not hear the outcome of its request. The embedded store's
//! callers share its process and are answered only after the commit, so the only callers that
//! can ever send a token again are in this process and talk to this store value: a token kept
//! in memory, recorded once its transaction has committed, gives each of them what a table
//! would, without a row (and a B-tree page in the WAL) per issuance.
//!
//! Memory is bounded: at most [`CAPACITY`] tokens, the oldest forgotten first. A forgotten
//! token's retry runs its operations again, and their conditions decide — the issuer's and the
//! claims' invariants are carried by conditions, the token only spares the resend a
//! cancellation.

use std::collections::{HashMap, VecDeque};

use promo_shared::ports::store::StoreError;

/// How long a token makes a retry idempotent (DynamoDB: 10 minutes).
pub const WINDOW_SECONDS: i64 = 600;
/// Most tokens remembered: some 30 MB at most (about 270 bytes a token with its map and queue
/// slots). The issuer's and claims' retry loops give up within about 4.5 s (8 retries, 20 ms
/// doubling to a 2 s cap); at the store's top rate of about 7,000 transactions/s that is some
/// 32,000 tokens, a third of this.
pub const CAPACITY: usize = 100_000;

/// What a token says about a transaction about to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not seen within the window: run the operations.
    New,
    /// Already committed with the same operations: answer success, run nothing.
    Done,
}

/// Tokens of committed transactions, each with the digest of its operations and when it was
/// recorded (epoch seconds).
#[derive(Debug)]
pub struct Tokens {
    by_token: HashMap<String, (String, i64)>,
    /// Recording order, oldest first, for forgetting by age and by capacity.
    order: VecDeque<(String, i64)>,
    capacity: usize,
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens::with_capacity(CAPACITY)
    }
}

impl Tokens {
    pub fn with_capacity(capacity: usize) -> Tokens {
        Tokens { by_token: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// Whether a transaction with these operations (`digest`) may run under `token` at `now`.
    pub fn check(&self, token: &str, digest: &str, now: i64) -> Result<Seen, StoreError> {
        match self.by_token.get(token) {
            Some((seen, at)) if now - at < WINDOW_SECONDS => {
                if seen == digest {
                    Ok(Seen::Done)
                } else {
                    Err(StoreError::Invalid("client token reused with different operations".into()))
                }
            }
            _ => Ok(Seen::New),
        }
    }

    /// Records that the transaction `digest` committed under `token` at `now`.
    pub fn record(&mut self, token: &str, digest: &str, now: i64) {
        self.by_token.insert(token.to_string(), (digest.to_string(), now));
        self.order.push_back((token.to_string(), now));
        while let Some((oldest, at)) = self.order.front() {
            if now - at < WINDOW_SECONDS && self.order.len() <= self.capacity {
                break;
            }
            // A token recorded again later keeps its newer entry.
            if self.by_token.get(oldest).is_some_and(|(_, recorded)| recorded == at) {
                self.by_token.remove(oldest);
            }
            self.order.pop_front();
        }
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_token_answers_its_retry_and_refuses_other_operations() {
        let mut t = Tokens::default();
        assert_eq!(t.check("tok", "ops-a", 1_000).unwrap(), Seen::New);
        t.record("tok", "ops-a", 1_000);
        assert_eq!(t.check("tok", "ops-a", 1_001).unwrap(), Seen::Done);
        assert!(matches!(t.check("tok", "ops-b", 1_001), Err(StoreError::Invalid(_))));
        assert_eq!(t.check("other", "ops-a", 1_001).unwrap(), Seen::New);
    }

    #[test]
    fn a_token_is_fresh_again_once_its_window_has_passed() {
        let mut t = Tokens::default();
        t.record("tok", "ops-a", 1_000);
        assert_eq!(t.check("tok", "ops-b", 1_000 + WINDOW_SECONDS - 1).map_err(|_| ()), Err(()));
        assert_eq!(t.check("tok", "ops-b", 1_000 + WINDOW_SECONDS).unwrap(), Seen::New);
        // Recording anything later forgets it.
        t.record("later", "ops-c", 1_000 + WINDOW_SECONDS);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn capacity_forgets_the_oldest_first() {
        let mut t = Tokens::with_capacity(3);
        for (i, tok) in ["a", "b", "c", "d"].into_iter().enumerate() {
            t.record(tok, "ops", 1_000 + i64::try_from(i).unwrap());
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.check("a", "other", 1_010).unwrap(), Seen::New, "the oldest was forgotten");
        for tok in ["b", "c", "d"] {
            assert_eq!(t.check(tok, "ops", 1_010).unwrap(), Seen::Done, "{tok}");
        }
    }

    #[test]
    fn a_token_recorded_again_keeps_its_newer_entry() {
        let mut t = Tokens::with_capacity(2);
        t.record("a", "ops-1", 1_000);
        // Out of its window, "a" runs again with other operations and is recorded anew.
        t.record("a", "ops-2", 1_000 + WINDOW_SECONDS);
        t.record("b", "ops", 1_000 + WINDOW_SECONDS);
        assert_eq!(t.check("a", "ops-2", 1_000 + WINDOW_SECONDS).unwrap(), Seen::Done);
        assert_eq!(t.len(), 2);
    }
}
