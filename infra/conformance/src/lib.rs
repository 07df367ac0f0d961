//! Conformance suites for the domain's ports: one set of tests per port, written once,
//! that every adapter must pass. See [`store`], [`queue`], [`claims`], [`events`] and the `*_conformance_tests!` macros.

#![allow(clippy::unwrap_used)] // test suites: a failed unwrap is a failed test

pub mod claims;
pub mod cloudflare_kv;
pub mod counting;
pub mod events;
pub mod events_lines;
pub mod flaky;
pub mod issuer;
pub mod queue;
pub mod store;
