//! A DynamoDB-compatible server for the tests (`infra/test.sh` starts moto and sets
//! `PROMO_TEST_DYNAMODB_ENDPOINT`).

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;

use promo_lambdas::dynamodb::DynamoStore;

use promo_lambdas::dynamodb::create_table;
use promo_shared::ports::store::Store;
use tokio::sync::OnceCell;

pub fn endpoint() -> String {
    std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT").expect(
        "PROMO_TEST_DYNAMODB_ENDPOINT is not set: start moto with infra/services/dynamodb.sh start \
         (or run infra/test.sh) and `source infra/services/env.sh`",
    )
}

/// A store on this test process's own table, created once (cases use their own key
/// namespaces). Each `#[tokio::test]` has its own runtime and an SDK client's connection
/// pool belongs to the runtime that opened it, so every call makes a new client; only the
/// table name is shared.
pub async fn store() -> Arc<dyn Store> {
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
            // Test binaries run one after another: tables of earlier ones are garbage. Moto
            // copies every table on each transaction, so leftovers make it slow and large.
            let client = store.client();
            if let Ok(tables) = client.list_tables().send().await {
                for t in tables.table_names().iter().filter(|t| t.starts_with("promo-conformance-")) {
                    let _ = client.delete_table().table_name(t).send().await;
                }
            }
            create_table(store.client(), &name)
                .await
                .unwrap_or_else(|e| panic!("cannot create table {name} at {endpoint}: {e}"));
            name
        })
        .await;
    Arc::new(DynamoStore::from_env(table.clone(), Some(&endpoint)).await)
}

/// A store on a new table of its own: a race case that writes thousands of items neither
/// sees nor slows the other cases (moto's index queries and scans walk the whole table).
pub async fn fresh_store() -> Arc<dyn Store> {
    let _ = store().await; // first call: clears the tables of earlier test binaries
    let endpoint = endpoint();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let name = format!("promo-conformance-{}-{nanos}-fresh", std::process::id());
    let store = DynamoStore::from_env(name.clone(), Some(&endpoint)).await;
    create_table(store.client(), &name).await.unwrap_or_else(|e| panic!("cannot create table {name}: {e}"));
    Arc::new(store)
}
