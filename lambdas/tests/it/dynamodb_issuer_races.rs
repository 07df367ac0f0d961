//! The coupon issuer's races (payments reported many times, cancellations racing issuance)
//! against a DynamoDB-compatible server through the real SDK, on a table of their own.

use crate::support;

use support::fresh_store;

// The full races, as on the embedded store (moto_locked.py keeps moto's memory flat under
// thousands of transactions).
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    payments_reported_five_times_issue_once);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    cancellation_racing_issuance_never_leaves_a_coupon);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    used_coupons_are_reported_not_revoked);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    concurrent_events_read_the_campaigns_once);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    a_replay_is_one_round_trip);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    limited_rewards_never_exceed_their_stock);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    cancelled_limited_rewards_give_their_stock_back);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    a_used_limited_reward_keeps_its_unit);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    the_issuer_retries_and_a_lost_answer_issues_once);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    payments_delivered_through_every_entry_issue_once);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    a_code_collision_is_retried_with_a_fresh_code);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    partial_refunds_keep_what_the_rest_still_earns);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    partial_refunds_racing_issuance);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    a_late_reward_is_born_valid);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    reward_stock_redeploys_racing_payments_and_refunds);
promo_conformance::issuer_race_tests!(@one fresh_store, [#[ignore = "needs services: run infra/test.sh"]],
    a_unit_given_back_after_a_reshard_lands_in_the_layout_in_force);
