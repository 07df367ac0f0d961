//! The store conformance suite against a DynamoDB-compatible server through the real SDK
//! (`infra/test.sh` starts moto and sets `PROMO_TEST_DYNAMODB_ENDPOINT`).

use crate::support;

use support::store;

promo_conformance::store_conformance_tests!(store, #[ignore = "needs services: run infra/test.sh"]);
