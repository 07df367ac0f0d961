//! The AWS and RabbitMQ adapters against the real broker and the stand-ins `infra/test.sh`
//! starts (moto for DynamoDB and SQS, the SES v2 stand-in), and the Lambda entries: one test
//! binary for the crate. Shared fixtures live in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod support;

mod dynamodb_claims;
mod dynamodb_client_token;
mod dynamodb_conformance;
mod dynamodb_events;
mod dynamodb_issuer_races;
mod dynamodb_table_matches_template;
mod dynamodb_token_window;
mod rabbitmq_conformance;
mod rabbitmq_durability;
mod scheduler_entry;
mod ses_ambiguous;
mod ses_bulk;
mod sqs_conformance;
