//! The coupon issuer's races (payments reported many times, cancellations racing issuance)
//! against a DynamoDB-compatible server through the real SDK, on a table of their own.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use support::fresh_store;

promo_conformance::issuer_race_tests!(fresh_store, #[ignore = "needs services: run infra/test.sh"]);
