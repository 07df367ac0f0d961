//! Limited events against a DynamoDB-compatible server through the real SDK (`infra/test.sh`
//! starts moto and sets `PROMO_TEST_DYNAMODB_ENDPOINT`): the same cases as on the embedded
//! store (`infra/tests/events_conformance.rs`). The two large races run at a fifth of their
//! size here (2,000 reservations on a stock of 200; 300 shoppers in the mixed race): moto
//! serves one request at a time behind its lock, and the full 10,000 would take minutes of CI
//! for no other finding — the conditions are the same code either way.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use promo_lambdas::dynamodb::DynamoStore;
use promo_lambdas::dynamodb::create_table;
use promo_shared::ports::store::Store;

fn endpoint() -> String {
    std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT").expect(
        "PROMO_TEST_DYNAMODB_ENDPOINT is not set: start moto with infra/services/dynamodb.sh start \
         (or run infra/test.sh) and `source infra/services/env.sh`",
    )
}

/// A table of its own for each case: the due index is global and each case drives its own clock.
async fn store() -> Arc<dyn Store> {
    let endpoint = endpoint();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let name = format!("promo-events-{}-{nanos}", std::process::id());
    let store = DynamoStore::from_env(name.clone(), Some(&endpoint)).await;
    create_table(store.client(), &name)
        .await
        .unwrap_or_else(|e| panic!("cannot create table {name} at {endpoint}: {e}"));
    Arc::new(store)
}

promo_conformance::events_conformance_tests!(store, 5, #[ignore = "needs services: run infra/test.sh"]);
