//! First-come-first-served claims against a DynamoDB-compatible server through the real SDK
//! (`infra/test.sh` starts moto and sets `PROMO_TEST_DYNAMODB_ENDPOINT`): the same cases as
//! on the embedded store (`infra/tests/it/claims_conformance.rs`).

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

/// A store on a new table for each case: the races (thousands of writes) neither see nor
/// slow the other cases (moto's index queries and scans walk the whole table).
async fn store() -> Arc<dyn Store> {
    let endpoint = endpoint();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let name = format!("promo-claims-{}-{nanos}", std::process::id());
    let store = DynamoStore::from_env(name.clone(), Some(&endpoint)).await;
    create_table(store.client(), &name)
        .await
        .unwrap_or_else(|e| panic!("cannot create table {name} at {endpoint}: {e}"));
    Arc::new(store)
}

// The full 1,000-claim race, as on the embedded store (moto_locked.py keeps moto's memory
// flat under thousands of transactions).
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_race_thousand_on_stock_hundred);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_inactive_unknown_and_ruleless_campaigns_issue_nothing);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_per_user_limit_under_concurrency);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_fall_over_to_other_shards_and_sell_out);
// A sell-out republishes the price book once across racing claimer instances.
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_sell_out_republishes_the_price_book_once);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_an_unfinished_republication_is_taken_over_after_its_lease);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_a_personal_read_is_one_query);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_a_sell_out_during_a_republication_is_caught);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_a_redeployed_end_binds_a_stale_claimer);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_sharding_under_a_per_item_write_limit);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_a_code_collision_is_retried_with_a_fresh_code);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_a_lost_answer_claims_once);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_a_deploy_that_lost_the_version_race_leaves_the_window_alone);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_an_older_deploy_never_moves_the_window_back);
// Redeploys that change the stock or the shards, alone and racing claims.
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_redeploys_apply_stock_and_shards_exactly);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_redeploys_racing_claims_never_exceed_the_stock);
promo_conformance::claims_conformance_tests!(@one store, [#[ignore = "needs services: run infra/test.sh"]],
    claims_a_sold_out_campaign_given_more_stock_sells_again);
