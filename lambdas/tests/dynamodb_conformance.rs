//! The store conformance suite against a DynamoDB-compatible server through the real SDK
//! (`infra/test.sh` starts moto and sets `PROMO_TEST_DYNAMODB_ENDPOINT`).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use promo_lambdas::dynamodb::{DynamoStore, create_table};
use promo_shared::store::Store;
use tokio::sync::OnceCell;

fn endpoint() -> String {
    std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT").expect(
        "PROMO_TEST_DYNAMODB_ENDPOINT is not set: start moto with infra/services/dynamodb.sh start \
         (or run infra/test.sh) and `source infra/services/env.sh`",
    )
}

/// A store on this test process's own table, created once (cases use their own key
/// namespaces). Each `#[tokio::test]` has its own runtime and an SDK client's connection
/// pool belongs to the runtime that opened it, so every call makes a new client; only the
/// table name is shared.
async fn store() -> Arc<dyn Store> {
    static TABLE: OnceCell<String> = OnceCell::const_new();
    let endpoint = endpoint();
    let table = TABLE
        .get_or_init(|| async {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let name = format!("promo-conformance-{}-{nanos}", std::process::id());
            let store = DynamoStore::from_env(name.clone(), Some(&endpoint)).await;
            create_table(store.client(), &name)
                .await
                .unwrap_or_else(|e| panic!("cannot create table {name} at {endpoint}: {e}"));
            name
        })
        .await;
    Arc::new(DynamoStore::from_env(table.clone(), Some(&endpoint)).await)
}

promo_conformance::store_conformance_tests!(store, #[ignore = "needs services: run infra/test.sh"]);
