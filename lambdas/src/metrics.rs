//! The Lambdas' metrics, as CloudWatch Embedded Metric Format: one JSON line per invocation
//! on stdout, which CloudWatch Logs turns into metrics (namespace `Promo`, dimension
//! `Function`) with no API call and no agent. Counted by the entries from what the use cases
//! returned: the issuer's `issued`, `duplicates`, `revoked`, `sold_out`, `failed`,
//! `throttled` and `dead_lettered` (a record that can never succeed, or that failed its last
//! delivery: SQS moves it to the dead-letter queue); the API's `claimed`,
//! `sold_out`, `claim_limit_reached`, `claim_rejected` and `throttled`; the sender's
//! `EmailsSent`, `EmailsSkipped`, `EmailsFailed`, `EmailsUncertain`, `EmailJobsReturned` and
//! `EmailJobsHeld`. A metric with nothing to count is left out of the line (CloudWatch shows
//! no datapoint, which alarms and dashboards read as zero). The line's timestamp is the
//! caller's clock's.
//!
//! The line is built with serde_json here: the format is one JSON object, and a metrics
//! crate (`metrics` with an EMF recorder) would add a process-wide recorder for what is one
//! value per invocation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use promo_shared::email::sender::Tally;
use promo_shared::payments::handlers::HandlerError;
use promo_shared::payments::issuer::{IssueError, PaymentOutcome};
use promo_shared::ports::store::StoreError;
use serde_json::{Value, json};

pub const NAMESPACE: &str = "Promo";

/// The deliveries after which SQS dead-letters a message: template.yaml's `maxReceiveCount`
/// of the payment events queue.
pub const MAX_RECEIVES: u32 = 5;

/// Counts of one invocation, by metric name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<&'static str, u64>);

impl Counts {
    pub fn add(&mut self, name: &'static str, n: u64) {
        if n > 0 {
            *self.0.entry(name).or_default() += n;
        }
    }

    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// What handling one payment event did.
    pub fn payment(&mut self, outcome: &PaymentOutcome) {
        let duplicates = outcome.rewards.iter().filter(|r| r.duplicate).count() as u64;
        self.add("issued", outcome.rewards.len() as u64 - duplicates);
        self.add("duplicates", duplicates);
        self.add("revoked", outcome.revocations.len() as u64);
        self.add("sold_out", outcome.out_of_stock.len() as u64);
    }

    /// What one sender invocation did: its jobs' tally, the jobs returned to the queue (to
    /// retry) and those held (paused, or waiting for the send window).
    pub fn email(&mut self, t: &Tally, returned: usize, held: usize) {
        self.add("EmailsSent", t.sent);
        self.add("EmailsSkipped", t.skipped);
        self.add("EmailsFailed", t.failed);
        self.add("EmailsUncertain", t.uncertain);
        self.add("EmailJobsReturned", returned as u64);
        self.add("EmailJobsHeld", held as u64);
    }

    /// A payment event that failed, on its `receives`-th delivery when known.
    pub fn failure(&mut self, e: &HandlerError, receives: Option<u32>) {
        self.add("failed", 1);
        if matches!(e, HandlerError::Issue(IssueError::Transient(StoreError::Throttled(_)))) {
            self.add("throttled", 1);
        }
        if !e.is_retryable() || receives.is_some_and(|n| n >= MAX_RECEIVES) {
            self.add("dead_lettered", 1);
        }
    }

    /// The EMF line for `function` at `now_ms` (epoch milliseconds); `None` when nothing was
    /// counted.
    pub fn emf(&self, function: &str, now_ms: i64) -> Option<Value> {
        if self.0.is_empty() {
            return None;
        }
        let metrics: Vec<Value> = self.0.keys().map(|name| json!({"Name": name, "Unit": "Count"})).collect();
        let mut line = json!({
            "_aws": {"Timestamp": now_ms, "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": [["Function"]], "Metrics": metrics}
            ]},
            "Function": function,
        });
        for (name, n) in &self.0 {
            line[*name] = json!(n);
        }
        Some(line)
    }

    /// Writes the EMF line, stamped `now`, to stdout, where the Lambda runtime sends it to
    /// CloudWatch Logs.
    pub fn emit(&self, function: &str, now: DateTime<Utc>) {
        if let Some(line) = self.emf(function, now.timestamp_millis()) {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_senders_invocation_is_one_emf_document_without_its_zeros() {
        let mut c = Counts::default();
        let tally = Tally { sent: 48, skipped: 2, failed: 0, uncertain: 0, already: 5 };
        c.email(&tally, 1, 0);
        let line = c.emf("sender", 7).unwrap();
        assert_eq!((line["Function"].as_str(), line["_aws"]["Timestamp"].as_i64()), (Some("sender"), Some(7)));
        assert_eq!((line["EmailsSent"].as_u64(), line["EmailsSkipped"].as_u64()), (Some(48), Some(2)));
        assert_eq!(line["EmailJobsReturned"].as_u64(), Some(1));
        assert!(line.get("EmailsFailed").is_none() && line.get("EmailJobsHeld").is_none(), "zeros left out: {line}");
    }

    #[test]
    fn an_invocations_counts_are_one_emf_document() {
        let mut c = Counts::default();
        assert_eq!(c.emf("issuer", 0), None, "nothing counted, nothing written");
        c.add("issued", 2);
        c.add("duplicates", 1);
        c.add("issued", 1);
        c.add("failed", 0);
        let line = c.emf("issuer", 1_800_000_000_000).unwrap();
        assert_eq!(line["_aws"]["Timestamp"], 1_800_000_000_000i64);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Promo");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "duplicates", "Unit": "Count"}, {"Name": "issued", "Unit": "Count"}])
        );
        assert_eq!(
            (line["Function"].as_str(), line["issued"].as_u64(), line["duplicates"].as_u64()),
            (Some("issuer"), Some(3), Some(1))
        );
        assert!(line.get("failed").is_none(), "a zero is not a metric of this invocation");
    }

    #[test]
    fn failures_count_throttles_and_last_deliveries() {
        let mut c = Counts::default();
        let throttled = HandlerError::Issue(IssueError::Transient(StoreError::Throttled("slow down".into())));
        c.failure(&throttled, Some(1));
        c.failure(&throttled, Some(MAX_RECEIVES));
        c.failure(&HandlerError::Malformed("not json".into()), Some(1));
        assert_eq!((c.get("failed"), c.get("throttled"), c.get("dead_lettered")), (3, 2, 2));
    }
}
