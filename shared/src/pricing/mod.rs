//! Prices: the product catalog and price book (`catalog`), the cached max-benefit price read
//! (`prices`) and cart quotes (`quotes`), and the catalog's items. The pricing engine itself is
//! pure and lives in `domain::pricing`.

pub mod catalog;
pub mod fragment;
pub mod items;
pub mod prices;
pub mod quotes;
