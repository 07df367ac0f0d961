//! SES v2, everything the platform says to it or hears from it: the mailer (`SesMailer`, the
//! `Mailer` and `BulkMailer` ports), its bounce and complaint notifications (`events`) and the
//! account's send rate (`send_rate`).

pub mod events;
#[cfg(feature = "aws")]
mod mailer;
pub mod send_rate;

#[cfg(feature = "aws")]
pub use mailer::{BULK_POOL_IDLE, SesMailer};
