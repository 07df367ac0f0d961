//! The Worker's clock: the time, read once per use, for the core (handed to `Edge::respond`)
//! and for the adapters that stamp what they write.

use chrono::{DateTime, TimeZone, Utc};
use worker::Date;

pub fn now() -> DateTime<Utc> {
    let ms = i64::try_from(Date::now().as_millis()).unwrap_or(0);
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
