//! The core's decision tables and properties: one test binary for the crate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod pricing_props;
mod pricing_rules;
