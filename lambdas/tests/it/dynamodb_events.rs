//! Limited events against a DynamoDB-compatible server through the real SDK (`infra/test.sh`
//! starts moto and sets `PROMO_TEST_DYNAMODB_ENDPOINT`): the same cases as on the embedded
//! store (`infra/tests/it/events_conformance.rs`). The two large races run at a fifth of their
//! size here (2,000 reservations on a stock of 200; 300 shoppers in the mixed race): moto
//! serves one request at a time behind its lock, and the full 10,000 would take minutes of CI
//! for no other finding — the conditions are the same code either way.

use crate::support;

use std::sync::Arc;

use promo_shared::ports::store::Store;

/// A table of its own for each case: the due index is global and each case drives its own clock.
async fn store() -> Arc<dyn Store> {
    support::fresh_store().await
}

promo_conformance::events_conformance_tests!(store, 5, #[ignore = "needs services: run infra/test.sh"]);
