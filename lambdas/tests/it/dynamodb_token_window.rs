//! The DynamoDB adapter reads a client token's window from the clock port: with a clock
//! that only moves when told, a token reused with other operations is refused for 600 s and
//! runs again once they have passed. Needs the DynamoDB stand-in (infra/test.sh).

use crate::support;

use std::sync::Arc;

use promo_lambdas::dynamodb::{DynamoStore, create_table};
use promo_shared::ports::clock::ManualClock;
use promo_shared::ports::store::{Key, Store, StoreError, TxOp};
use promo_shared::testing::at;

fn put(pk: &str) -> TxOp {
    TxOp::Put { item: Key::new(pk, "S").item(), cond: None }
}

#[tokio::test]
#[ignore = "needs services: run infra/test.sh"]
async fn a_client_tokens_window_follows_the_clock_port() {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let name = format!("promo-token-window-{}-{nanos}", std::process::id());
    let clock = Arc::new(ManualClock::new(at("2026-12-01T00:00:00Z")));
    let store = DynamoStore::from_env(name.clone(), Some(&support::endpoint())).await.with_clock(clock.clone());
    create_table(store.client(), &name).await.unwrap();
    let token = format!("tok-{nanos}");
    store.transact(vec![put(&format!("A-{nanos}"))], Some(&token)).await.unwrap();
    clock.advance(chrono::Duration::seconds(599));
    let within = store.transact(vec![put(&format!("B-{nanos}"))], Some(&token)).await;
    assert!(matches!(within, Err(StoreError::Invalid(_))), "{within:?}");
    clock.advance(chrono::Duration::seconds(2));
    // Past the window on the clock: the token item no longer decides (DynamoDB's own
    // ClientRequestToken is not enforced by the stand-in).
    store.transact(vec![put(&format!("B-{nanos}"))], Some(&token)).await.unwrap();
    assert!(store.get(&Key::new(format!("B-{nanos}"), "S")).await.unwrap().is_some());
    let _ = store.client().delete_table().table_name(&name).send().await;
}
