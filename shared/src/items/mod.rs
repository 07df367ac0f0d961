//! The store's single-table layout: every item's key in one place ([`keys`]).

pub mod keys;
