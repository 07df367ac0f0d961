//! Max-benefit pricing (docs/marketers/pricing.md): the lowest price a shopper can really reach for
//! a product or a cart, and how — which coupons, which payment promotion, how much mileage.
//!
//! ```text
//! JSON ──ValidQuote::parse──▶ ValidQuote ──quote──▶ Answer ──serde──▶ JSON
//!                      (every rule checked)   (exact optimum)
//! ```
//!
//! * [`request`]: the request JSON, its defaults and its checks ([`ValidQuote`], [`QuoteError`]).
//! * [`choice`]: the objective and tie-break as one total order ([`Choice`]).
//! * [`engine`]: the exact optimum, fast: coupon outcomes (`cart`) × a memoised, pruned payment
//!   step whose mileage is solved analytically (`mileage`, `modular`).
//! * [`reference`](mod@reference): the same rules by trying every combination, for tests and benchmarks.
//! * [`answer`]: what a page prints ([`Answer`], its breakdown and `valid_until`).
//!
//! Where the spec is silent: a cart coupon counts only when it applies to **every** line of the
//! cart (it never discounts a product it excludes); a payment promotion is not a "coupon" in the
//! tie-break's coupon count; a cart's product coupons are compared line by line (see [`Choice`]).
//!
//! Pure computation on integers (minor units, never floats), no I/O: it runs in the edge worker
//! (wasm) and natively alike.

pub mod answer;
mod cart;
pub mod choice;
pub mod engine;
mod mileage;
mod modular;
pub mod reference;
pub mod request;

pub use answer::{Answer, AnswerLine, BreakdownKind, BreakdownLine};
pub use choice::Choice;
pub use request::{BenefitId, MAX_ASSIGNMENTS, QuoteError, QuoteRequest, ValidQuote};

/// The max-benefit price of a checked quote (single product or cart).
pub fn quote(q: &ValidQuote) -> Answer {
    answer::settle(q, &engine::best_choice(q))
}

/// Parses, checks and prices a quote request's JSON.
pub fn quote_json(json: &str) -> Result<Answer, QuoteError> {
    Ok(quote(&ValidQuote::parse(json)?))
}
