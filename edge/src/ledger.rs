//! The delivery ledger's Durable Object protocol: the commands the Worker sends to a
//! delivery's object and what the object does with its one record — the rules of
//! `promo_shared::idempotency` (the same decisions the store's records make by
//! condition), applied by [`apply`]. Plain code, tested on the host; `durable` runs it.

use chrono::{DateTime, TimeZone, Utc};
use promo_shared::idempotency::items::Record;
use promo_shared::idempotency::{self, BeginDecision, IdempotencyConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A command to a delivery's Durable Object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LedgerCommand {
    Begin {
        hash: String,
        now_ms: i64,
    },
    /// Completes the run; with a `message`, the object also puts it in its outbox, in the
    /// same write as the completed record (the hand-off of a run that began earlier).
    Complete {
        lease: String,
        answer: Value,
        now_ms: i64,
        keep_ms: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<Queued>,
    },
    Release {
        lease: String,
    },
    /// Begin, hand-off and complete in one round trip: takes the delivery, records `answer`
    /// and puts `message` in the outbox, all in one write; or answers as `Begin` would
    /// (a replay, a conflict, in progress), changing nothing.
    Accept {
        hash: String,
        now_ms: i64,
        answer: Value,
        keep_ms: i64,
        message: Queued,
    },
}

/// A message for the payment events queue, kept in its object's outbox until SQS has
/// acknowledged it (`crate::outbox`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// The event as the issuer reads it (`PaymentEvent::to_json`).
    pub body: String,
    /// The accepting request's id, sent as the message attribute `request_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The object's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LedgerReply {
    Started { lease: String },
    Completed { answer: Value },
    Conflict,
    InProgress,
    Done,
    LeaseLost,
}

/// What a command does: the reply, the record's write, and the message it puts in the
/// outbox (stored in the same write as the record).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub reply: LedgerReply,
    pub write: Write,
    pub enqueue: Option<Queued>,
}

impl Step {
    fn new(reply: LedgerReply, write: Write) -> Step {
        Step { reply, write, enqueue: None }
    }
}

/// What the object does with its record.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Keep,
    /// Store it, with an alarm at its expiry.
    Put(Record),
    Delete,
}

/// Objects the deliveries are spread over. An object runs one command at a time; 64 of them
/// spread a burst of deliveries (the throughput of one object on Cloudflare was not measured
/// here: Miniflare runs sequential requests at ~2 ms each, see BENCHMARKS.md).
pub const LEDGER_SHARDS: u64 = 64;
/// The header carrying the delivery key to its object.
pub const KEY_HEADER: &str = "x-ledger-key";
/// Expired records an alarm deletes at once; more wait for the next alarm, a second later.
pub const SWEEP_LIMIT: usize = 256;

/// The name of the object holding delivery `key` (FNV-1a, stable across deploys).
pub fn shard_of(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("ledger-{}", h % LEDGER_SHARDS)
}

/// Where an object keeps the record of `key`.
pub fn record_key(key: &str) -> String {
    format!("r:{key}")
}

/// The expiry index entry of `key` expiring at `expires_at` (epoch seconds): entries sort by
/// expiry, as the storage lists keys in order.
pub fn index_key(expires_at: i64, key: &str) -> String {
    format!("e:{expires_at:012}:{key}")
}

/// The (exclusive) end of the index entries expired at `now` (epoch seconds).
pub fn swept_until(now: i64) -> String {
    format!("e:{:012}", now.saturating_add(1))
}

/// The delivery key of an index entry.
pub fn key_of_index(index: &str) -> Option<String> {
    index.strip_prefix("e:")?.split_once(':').map(|(_, key)| key.to_string())
}

/// The expiry of an index entry.
pub fn expiry_of(index: &str) -> Option<i64> {
    index.strip_prefix("e:")?.split_once(':')?.0.parse().ok()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Applies `cmd` to the object's record `current`; `lease` is the token a run taking the
/// delivery gets (unique per run).
pub fn apply(cmd: LedgerCommand, current: Option<&Record>, lease: String, cfg: &IdempotencyConfig) -> Step {
    let begun = |decision: BeginDecision, lease: String| match decision {
        BeginDecision::Take(record) => Step::new(LedgerReply::Started { lease }, Write::Put(record)),
        BeginDecision::Replay(answer) => Step::new(LedgerReply::Completed { answer }, Write::Keep),
        BeginDecision::Conflict => Step::new(LedgerReply::Conflict, Write::Keep),
        BeginDecision::InProgress => Step::new(LedgerReply::InProgress, Write::Keep),
    };
    match cmd {
        LedgerCommand::Begin { hash, now_ms } => {
            begun(idempotency::decide_begin(current, &hash, &lease, at(now_ms), cfg), lease)
        }
        LedgerCommand::Complete { lease, answer, now_ms, keep_ms, message } => {
            let keep = chrono::Duration::milliseconds(keep_ms);
            let step = match idempotency::decide_complete(current, &lease, &answer, at(now_ms), keep) {
                Some(record) => Step::new(LedgerReply::Done, Write::Put(record)),
                None => Step::new(LedgerReply::LeaseLost, Write::Keep),
            };
            // A run that lost its lease still hands its event off, as it did when it sent to
            // the queue itself before completing (the issuer dedupes by payment).
            Step { enqueue: message, ..step }
        }
        LedgerCommand::Release { lease } => {
            if idempotency::decide_release(current, &lease) {
                Step::new(LedgerReply::Done, Write::Delete)
            } else {
                Step::new(LedgerReply::LeaseLost, Write::Keep)
            }
        }
        LedgerCommand::Accept { hash, now_ms, answer, keep_ms, message } => {
            let now = at(now_ms);
            match idempotency::decide_begin(current, &hash, &lease, now, cfg) {
                BeginDecision::Take(taken) => {
                    let keep = chrono::Duration::milliseconds(keep_ms);
                    match idempotency::decide_complete(Some(&taken), &lease, &answer, now, keep) {
                        Some(done) => {
                            Step { reply: LedgerReply::Done, write: Write::Put(done), enqueue: Some(message) }
                        }
                        // Unreachable: the run just taken holds its lease.
                        None => Step::new(LedgerReply::LeaseLost, Write::Keep),
                    }
                }
                other => begun(other, lease),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_spread_over_the_shards_and_the_expiry_index_sorts_by_time() {
        let mut counts = vec![0u32; usize::try_from(LEDGER_SHARDS).unwrap()];
        for i in 0..6400 {
            let shard = shard_of(&format!("webhook:stripe:evt_{i}"));
            let n: usize = shard.strip_prefix("ledger-").unwrap().parse().unwrap();
            counts[n] += 1;
        }
        assert!(counts.iter().all(|&c| (50..=150).contains(&c)), "{counts:?}");
        assert_eq!(shard_of("webhook:stripe:evt_1"), shard_of("webhook:stripe:evt_1"), "stable");
        // Index entries sort by expiry (lexicographic = numeric), and carry the key back.
        let (a, b) = (index_key(999, "k:z"), index_key(1_000, "k:a"));
        assert!(a < b);
        assert_eq!((key_of_index(&b).as_deref(), expiry_of(&b)), (Some("k:a"), Some(1_000)));
        // The sweep's end includes what expires at `now` and nothing later.
        let end = swept_until(1_000);
        assert!(index_key(1_000, "zzz") < end && end <= index_key(1_001, ""));
        assert_eq!(key_of_index("r:x"), None);
    }

    /// Runs `cmds` against one object, as its single thread would.
    fn run(cmds: Vec<(LedgerCommand, &str)>) -> (Vec<LedgerReply>, Option<Record>) {
        let cfg = IdempotencyConfig::default();
        let mut record: Option<Record> = None;
        let mut replies = Vec::new();
        for (cmd, lease) in cmds {
            let Step { reply, write, .. } = apply(cmd, record.as_ref(), lease.to_string(), &cfg);
            match write {
                Write::Keep => {}
                Write::Put(r) => record = Some(r),
                Write::Delete => record = None,
            }
            replies.push(reply);
        }
        (replies, record)
    }

    fn begin(hash: &str, now_ms: i64) -> LedgerCommand {
        LedgerCommand::Begin { hash: hash.into(), now_ms }
    }

    fn complete(lease: &str, n: i64, now_ms: i64) -> LedgerCommand {
        LedgerCommand::Complete {
            lease: lease.into(),
            answer: serde_json::json!({"n": n}),
            now_ms,
            keep_ms: 60_000,
            message: None,
        }
    }

    #[test]
    fn a_delivery_is_taken_once_completed_and_replayed() {
        let (replies, _) = run(vec![
            (begin("h", 0), "a"),
            (begin("h", 10), "b"),
            (begin("other", 10), "c"),
            (complete("a", 1, 20), ""),
            (begin("h", 30), "d"),
        ]);
        assert_eq!(
            replies,
            [
                LedgerReply::Started { lease: "a".into() },
                LedgerReply::InProgress,
                LedgerReply::Conflict,
                LedgerReply::Done,
                LedgerReply::Completed { answer: serde_json::json!({"n": 1}) },
            ]
        );
    }

    #[test]
    fn a_run_that_lost_its_lease_changes_nothing() {
        let after_lease = IdempotencyConfig::default().in_progress_ttl.num_milliseconds() + 1;
        let (replies, record) = run(vec![
            (begin("h", 0), "a"),
            (begin("h", after_lease), "b"),
            (complete("a", 1, after_lease), ""),
            (LedgerCommand::Release { lease: "a".into() }, ""),
            (complete("b", 2, after_lease), ""),
        ]);
        assert_eq!(replies[2], LedgerReply::LeaseLost, "a's complete");
        assert_eq!(replies[3], LedgerReply::LeaseLost, "a's release");
        assert_eq!(replies[4], LedgerReply::Done);
        assert_eq!(record.and_then(|r| r.result), Some(serde_json::json!({"n": 2})));
    }

    #[test]
    fn a_released_delivery_is_taken_afresh_and_an_expired_one_too() {
        let (replies, _) =
            run(vec![(begin("h", 0), "a"), (LedgerCommand::Release { lease: "a".into() }, ""), (begin("h", 1), "b")]);
        assert_eq!(replies[2], LedgerReply::Started { lease: "b".into() });
        let short =
            LedgerCommand::Complete { lease: "a".into(), answer: Value::Null, now_ms: 0, keep_ms: 1000, message: None };
        let (replies, _) = run(vec![(begin("h", 0), "a"), (short, ""), (begin("h", 2_000), "c")]);
        assert_eq!(replies[2], LedgerReply::Started { lease: "c".into() }, "a short-lived answer expires");
    }

    #[test]
    fn commands_and_replies_have_a_stable_wire_form() {
        let wire = serde_json::to_value(begin("h", 5)).unwrap();
        assert_eq!(wire, serde_json::json!({"op": "begin", "hash": "h", "now_ms": 5}));
        let reply: LedgerReply = serde_json::from_value(serde_json::json!({"outcome": "lease_lost"})).unwrap();
        assert_eq!(reply, LedgerReply::LeaseLost);
    }

    fn accept(hash: &str, n: i64, now_ms: i64) -> LedgerCommand {
        LedgerCommand::Accept {
            hash: hash.into(),
            now_ms,
            answer: serde_json::json!({"n": n}),
            keep_ms: 60_000,
            message: Queued { body: format!("event-{n}"), request_id: Some(format!("req-{n}")) },
        }
    }

    /// Every step of `cmds` against one object, as its single thread would run them.
    fn steps(cmds: Vec<(LedgerCommand, &str)>) -> Vec<Step> {
        let cfg = IdempotencyConfig::default();
        let mut record: Option<Record> = None;
        let mut out = Vec::new();
        for (cmd, lease) in cmds {
            let step = apply(cmd, record.as_ref(), lease.to_string(), &cfg);
            match &step.write {
                Write::Keep => {}
                Write::Put(r) => record = Some(r.clone()),
                Write::Delete => record = None,
            }
            out.push(step);
        }
        out
    }

    #[test]
    fn accept_takes_records_and_queues_in_one_step_and_a_redelivery_is_a_replay_never_a_second_message() {
        let s = steps(vec![(accept("h", 1, 0), "a"), (accept("h", 2, 10), "b"), (accept("other", 3, 10), "c")]);
        assert_eq!(s[0].reply, LedgerReply::Done);
        let Write::Put(record) = &s[0].write else { panic!("{:?}", s[0].write) };
        assert!(record.completed, "recorded as completed in the same write");
        assert_eq!(record.result, Some(serde_json::json!({"n": 1})));
        assert_eq!(s[0].enqueue.as_ref().map(|m| m.body.as_str()), Some("event-1"));
        assert_eq!(s[1], Step::new(LedgerReply::Completed { answer: serde_json::json!({"n": 1}) }, Write::Keep));
        assert_eq!(s[2], Step::new(LedgerReply::Conflict, Write::Keep));
        // A run begun the two-step way holds the delivery: an accept meanwhile changes nothing.
        let s = steps(vec![(begin("h", 0), "a"), (accept("h", 2, 10), "b")]);
        assert_eq!(s[1], Step::new(LedgerReply::InProgress, Write::Keep));
    }

    #[test]
    fn complete_carries_the_runs_message_into_the_outbox() {
        let queued = Queued { body: "e".into(), request_id: None };
        let with = |lease: &str, now_ms| LedgerCommand::Complete {
            lease: lease.into(),
            answer: Value::Null,
            now_ms,
            keep_ms: 60_000,
            message: Some(queued.clone()),
        };
        let after_lease = IdempotencyConfig::default().in_progress_ttl.num_milliseconds() + 1;
        let s = steps(vec![(begin("h", 0), "a"), (begin("h", after_lease), "b"), (with("a", after_lease), "")]);
        // As when the run sent to the queue itself before completing: its event still goes.
        assert_eq!((&s[2].reply, s[2].enqueue.as_ref()), (&LedgerReply::LeaseLost, Some(&queued)));
        let s = steps(vec![(begin("h", 0), "a"), (with("a", 1), "")]);
        assert_eq!((&s[1].reply, s[1].enqueue.as_ref()), (&LedgerReply::Done, Some(&queued)));
        // Its wire form: without a message, as before.
        let plain =
            LedgerCommand::Complete { lease: "a".into(), answer: Value::Null, now_ms: 1, keep_ms: 2, message: None };
        assert!(serde_json::to_value(plain).unwrap().get("message").is_none());
    }
}
