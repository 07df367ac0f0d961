//! promoctl's integration tests, one binary (one link) for the crate: the local platform end to
//! end, the conformance suites on the embedded adapters, the CLI as a user runs it, and the
//! production adapters against the stand-ins `infra/test.sh` starts. Shared fixtures live in
//! `support`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod support;

mod architecture_names;
mod campaign_history;
mod campaign_history_dynamodb;
mod cargo_lambda_watch;
mod claims_conformance;
mod cli;
mod deploy_script;
mod e2e_body_limits;
mod e2e_claims;
mod e2e_errors;
mod e2e_events;
mod e2e_log_masking;
mod e2e_malformed;
mod e2e_payment_consumer;
mod e2e_prices;
mod e2e_prices_ready;
mod e2e_providers;
mod e2e_webhook;
mod edge_kv_publish;
mod email_broker_restart;
mod email_chaos;
mod email_fanout;
mod email_fanout_services;
mod email_tally;
mod env_add;
mod events_conformance;
mod issuer_races;
mod lambda_entry;
mod portone_standin;
mod prod_dlq;
mod prod_email;
mod prod_safety;
mod queue_conformance;
mod readme_walkthrough;
mod reference_libraries;
mod sqlite_wal_bounded;
mod store_conformance;
