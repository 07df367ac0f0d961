//! The store port's conformance suite: one set of tests, written once, that every store
//! adapter must pass — the embedded SQLite store and the DynamoDB adapter alike.
//!
//! Use it from an adapter's test file:
//!
//! ```ignore
//! async fn store() -> std::sync::Arc<dyn promo_shared::ports::store::Store> { ... }
//! promo_conformance::store_conformance_tests!(store);
//! ```
//!
//! Extra attributes (e.g. `#[ignore = "needs services"]`) follow the factory and are put on
//! every generated test. Every case works in its own key namespace, so adapters may share
//! one table between cases. The race cases run hundreds of concurrent tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures::future::join_all;
use promo_shared::idempotency;
use promo_shared::idempotency::IdempotencyConfig;

use crate::counting::Counting;
use promo_shared::ports::store::CancelReason;
use promo_shared::ports::store::Cond;
use promo_shared::ports::store::Item;
use promo_shared::ports::store::Key;
use promo_shared::ports::store::Query;
use promo_shared::ports::store::Store;
use promo_shared::ports::store::StoreError;
use promo_shared::ports::store::TxOp;
use promo_shared::ports::store::Update;
use serde_json::{Value, json};

pub type DynStore = Arc<dyn Store>;

/// Tasks racing in the concurrency cases.
pub const RACERS: usize = 300;

/// A key namespace unique to this case and run.
pub fn ns(case: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("t{}{}-{case}", t % 1_000_000_000_000, N.fetch_add(1, Ordering::Relaxed))
}

fn item(key: &Key, extra: Value) -> Item {
    let mut i = key.item();
    if let Value::Object(m) = extra {
        i.extend(m);
    }
    i
}

pub async fn put_then_get(s: DynStore) {
    let k = Key::new(ns("put"), "a");
    assert_eq!(s.get(&k).await.unwrap(), None);
    let it = item(&k, json!({"n": 7, "s": "x", "b": true, "l": [1, "two"], "m": {"k": "v"}, "z": null}));
    s.put(it.clone(), None).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), Some(it));
    // A put replaces the whole item.
    let replaced = item(&k, json!({"other": 1}));
    s.put(replaced.clone(), None).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), Some(replaced));
}

pub async fn put_needs_keys(s: DynStore) {
    let mut no_sk = Item::new();
    no_sk.insert("pk".into(), json!(ns("keys")));
    assert!(matches!(s.put(no_sk, None).await, Err(StoreError::Invalid(_))));
}

pub async fn conditional_put(s: DynStore) {
    let k = Key::new(ns("cput"), "a");
    s.put(item(&k, json!({"v": 1})), Some(Cond::NotExists)).await.unwrap();
    // A refused write returns the item its condition found.
    let refused = |v: i64| StoreError::ConditionFailed { found: Some(item(&k, json!({"v": v}))) };
    assert_eq!(s.put(item(&k, json!({"v": 2})), Some(Cond::NotExists)).await, Err(refused(1)));
    assert_eq!(s.get(&k).await.unwrap().unwrap()["v"], json!(1), "a failed condition writes nothing");
    s.put(item(&k, json!({"v": 3})), Some(Cond::eq("v", 1))).await.unwrap();
    assert_eq!(s.put(item(&k, json!({"v": 4})), Some(Cond::eq("v", 1))).await, Err(refused(3)));
    let absent = Key::new(ns("cput"), "b");
    assert_eq!(
        s.put(item(&absent, json!({})), Some(Cond::Exists)).await,
        Err(StoreError::ConditionFailed { found: None }),
        "nothing was there"
    );
    assert_eq!(s.get(&absent).await.unwrap(), None);
}

pub async fn conditions_on_attributes(s: DynStore) {
    let k = Key::new(ns("conds"), "a");
    s.put(item(&k, json!({"n": 5, "s": "x"})), None).await.unwrap();
    let check = |c: Cond| {
        let s = s.clone();
        let k = k.clone();
        async move { s.update(&k, &[Update::set("touched", true)], Some(c)).await.is_ok() }
    };
    assert!(check(Cond::Ge("n".into(), 5)).await);
    assert!(!check(Cond::Gt("n".into(), 5)).await);
    assert!(check(Cond::Lt("n".into(), 6)).await);
    assert!(!check(Cond::Le("n".into(), 4)).await);
    assert!(!check(Cond::Lt("missing".into(), 100)).await, "a missing attribute compares false");
    assert!(check(Cond::AttrNotExists("missing".into())).await);
    assert!(check(Cond::AttrExists("s".into())).await);
    assert!(check(Cond::Ne("s".into(), json!("y"))).await);
    assert!(check(Cond::Or(vec![Cond::eq("s", "nope"), Cond::eq("n", 5)])).await);
    assert!(!check(Cond::And(vec![Cond::eq("s", "x"), Cond::eq("n", 6)])).await);
    assert!(check(Cond::Not(Box::new(Cond::eq("s", "y")))).await);
}

pub async fn update_upserts_and_counts(s: DynStore) {
    let k = Key::new(ns("upd"), "counter");
    let after = s.update(&k, &[Update::Add("n".into(), 3), Update::set("s", "v")], None).await.unwrap();
    assert_eq!(after["n"], json!(3));
    let after = s.update(&k, &[Update::Add("n".into(), -1), Update::Remove("s".into())], None).await.unwrap();
    assert_eq!(after["n"], json!(2));
    assert!(!after.contains_key("s"));
    assert_eq!(s.get(&k).await.unwrap(), Some(after));
    let r = s.update(&k, &[Update::Add("n".into(), -5)], Some(Cond::Ge("n".into(), 5))).await;
    assert_eq!(r, Err(StoreError::ConditionFailed { found: Some(item(&k, json!({"n": 2}))) }));
    assert_eq!(s.get(&k).await.unwrap().unwrap()["n"], json!(2));
    let none = Key::new(ns("upd"), "absent");
    assert_eq!(
        s.update(&none, &[Update::Add("n".into(), 1)], Some(Cond::Exists)).await,
        Err(StoreError::ConditionFailed { found: None })
    );
    assert_eq!(s.get(&none).await.unwrap(), None);
}

pub async fn conditional_delete(s: DynStore) {
    let k = Key::new(ns("del"), "a");
    s.put(item(&k, json!({"status": "USED"})), None).await.unwrap();
    assert_eq!(
        s.delete(&k, Some(Cond::eq("status", "ISSUED"))).await,
        Err(StoreError::ConditionFailed { found: Some(item(&k, json!({"status": "USED"}))) })
    );
    assert!(s.get(&k).await.unwrap().is_some());
    let gone = s.delete(&k, Some(Cond::eq("status", "USED"))).await.unwrap();
    assert_eq!(gone.unwrap()["status"], json!("USED"));
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert_eq!(s.delete(&k, None).await.unwrap(), None, "deleting nothing is fine");
}

pub async fn transaction_all_or_nothing(s: DynStore) {
    let p = ns("tx");
    let (a, b, c) = (Key::new(&p, "a"), Key::new(&p, "b"), Key::new(&p, "c"));
    s.put(item(&a, json!({"stock": 1})), None).await.unwrap();
    let ops = |n| {
        vec![
            TxOp::Update {
                key: a.clone(),
                updates: vec![Update::Add("stock".into(), -1)],
                cond: Some(Cond::Gt("stock".into(), 0)),
            },
            TxOp::Put { item: item(&b, json!({"n": n})), cond: Some(Cond::NotExists) },
            TxOp::Put { item: item(&c, json!({"n": n})), cond: None },
        ]
    };
    s.transact(ops(1), None).await.unwrap();
    assert_eq!(s.get(&a).await.unwrap().unwrap()["stock"], json!(0));
    assert_eq!(s.get(&b).await.unwrap().unwrap()["n"], json!(1));
    // Both conditions fail now: nothing at all is written, the reasons say which, and each
    // failed operation reports the item its condition was evaluated against.
    let err = s.transact(ops(2), None).await.unwrap_err();
    assert_eq!(
        err.reasons(),
        Some(&[CancelReason::ConditionFailed, CancelReason::ConditionFailed, CancelReason::None][..])
    );
    assert_eq!(err.found_at(0), Some(&item(&a, json!({"stock": 0}))));
    assert_eq!(err.found_at(1), Some(&item(&b, json!({"n": 1}))));
    assert_eq!(err.found_at(2), None, "its condition did not fail");
    assert_eq!(s.get(&c).await.unwrap().unwrap()["n"], json!(1), "the unconditional put was not applied either");
    // Check-only operations and deletes.
    let d = Key::new(&p, "d");
    let err = s
        .transact(
            vec![TxOp::Check { key: d.clone(), cond: Cond::Exists }, TxOp::Delete { key: c.clone(), cond: None }],
            None,
        )
        .await
        .unwrap_err();
    assert!(err.failed_at(0) && !err.failed_at(1));
    assert_eq!(err.found_at(0), None, "the condition failed on a missing item");
    assert!(s.get(&c).await.unwrap().is_some());
    s.transact(
        vec![TxOp::Check { key: b.clone(), cond: Cond::Exists }, TxOp::Delete { key: c.clone(), cond: None }],
        None,
    )
    .await
    .unwrap();
    assert_eq!(s.get(&c).await.unwrap(), None);
    // Only the last condition fails: the puts before it, which alone would succeed, are not
    // written either.
    let (e, f) = (Key::new(&p, "e"), Key::new(&p, "f"));
    let err = s
        .transact(
            vec![
                TxOp::Put { item: item(&e, json!({})), cond: Some(Cond::NotExists) },
                TxOp::Put { item: item(&f, json!({})), cond: None },
                TxOp::Check { key: d.clone(), cond: Cond::Exists },
            ],
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::cancelled(vec![CancelReason::None, CancelReason::None, CancelReason::ConditionFailed]));
    assert_eq!(s.get(&e).await.unwrap(), None);
    assert_eq!(s.get(&f).await.unwrap(), None);
}

pub async fn transaction_shape_is_checked(s: DynStore) {
    let k = Key::new(ns("txshape"), "a");
    let dup = vec![TxOp::Put { item: item(&k, json!({})), cond: None }, TxOp::Delete { key: k.clone(), cond: None }];
    assert!(matches!(s.transact(dup, None).await, Err(StoreError::Invalid(_))));
    assert_eq!(s.get(&k).await.unwrap(), None);
}

pub async fn transaction_token_makes_retries_idempotent(s: DynStore) {
    let k = Key::new(ns("txtok"), "counter");
    let token = format!("tok-{}", ns("t"));
    let token = &token[..token.len().min(36)];
    let ops = || vec![TxOp::Update { key: k.clone(), updates: vec![Update::Add("n".into(), 1)], cond: None }];
    s.transact(ops(), Some(token)).await.unwrap();
    s.transact(ops(), Some(token)).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap()["n"], json!(1), "the retry was not applied twice");
    let other = vec![TxOp::Update { key: k.clone(), updates: vec![Update::Add("n".into(), 5)], cond: None }];
    assert!(
        matches!(s.transact(other, Some(token)).await, Err(StoreError::Invalid(_))),
        "same token, other operations"
    );
    assert_eq!(s.get(&k).await.unwrap().unwrap()["n"], json!(1));
    // A cancelled transaction does not use its token up: once its condition holds, the
    // same token runs it.
    let gate = Key::new(ns("txtok"), "gate");
    let token2 = format!("tok2-{}", ns("t"));
    let token2 = &token2[..token2.len().min(36)];
    let gated = || {
        vec![
            TxOp::Check { key: gate.clone(), cond: Cond::Exists },
            TxOp::Update { key: k.clone(), updates: vec![Update::Add("n".into(), 1)], cond: None },
        ]
    };
    let err = s.transact(gated(), Some(token2)).await.unwrap_err();
    assert_eq!(err.reasons(), Some(&[CancelReason::ConditionFailed, CancelReason::None][..]), "one per operation");
    assert_eq!((err.found_at(0), err.found_at(1)), (None, None));
    s.put(item(&gate, json!({})), None).await.unwrap();
    s.transact(gated(), Some(token2)).await.unwrap();
    s.transact(gated(), Some(token2)).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap()["n"], json!(2));
}

pub async fn query_orders_filters_and_pages(s: DynStore) {
    let p = ns("query");
    for sk in ["COUPON#c", "COUPON#a", "OTHER#x", "COUPON#b", "COUPOM#z"] {
        s.put(item(&Key::new(&p, sk), json!({})), None).await.unwrap();
    }
    let page = s.query(&Query::partition(&p).prefix("COUPON#").limit(2)).await.unwrap();
    let sks: Vec<_> = page.items.iter().map(|i| i["sk"].as_str().unwrap().to_string()).collect();
    assert_eq!(sks, ["COUPON#a", "COUPON#b"]);
    let next = page.next.clone().expect("more to come");
    let page2 = s.query(&Query::partition(&p).prefix("COUPON#").limit(2).after(Some(next))).await.unwrap();
    let sks: Vec<_> = page2.items.iter().map(|i| i["sk"].as_str().unwrap().to_string()).collect();
    assert_eq!(sks, ["COUPON#c"]);
    let mut rest = page2.next.clone();
    // An adapter may return one more, empty page.
    while let Some(n) = rest {
        let more = s.query(&Query::partition(&p).prefix("COUPON#").limit(2).after(Some(n))).await.unwrap();
        assert!(more.items.is_empty());
        rest = more.next;
    }
    let all = s.query(&Query::partition(&p)).await.unwrap();
    assert_eq!(all.items.len(), 5);
    let none = s.query(&Query::partition(ns("empty"))).await.unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
}

pub async fn expired_records_can_be_taken_over(s: DynStore) {
    let k = Key::new(ns("ttl"), "a");
    let now = 1_800_000_000_i64;
    s.put(item(&k, json!({"expires_at": now - 1, "owner": "old"})), None).await.unwrap();
    let takeover = Cond::Or(vec![Cond::NotExists, Cond::Lt("expires_at".into(), now)]);
    s.put(item(&k, json!({"expires_at": now + 60, "owner": "new"})), Some(takeover.clone())).await.unwrap();
    let r = s.put(item(&k, json!({"expires_at": now + 60, "owner": "third"})), Some(takeover)).await;
    assert_eq!(
        r,
        Err(StoreError::ConditionFailed { found: Some(item(&k, json!({"expires_at": now + 60, "owner": "new"}))) })
    );
    assert_eq!(s.get(&k).await.unwrap().unwrap()["owner"], json!("new"));
}

/// Hundreds of tasks decrement one counter under `stock > 0`: exactly `stock` win.
pub async fn race_conditional_decrement(s: DynStore) {
    let k = Key::new(ns("race-dec"), "stock");
    let stock = 100;
    s.put(item(&k, json!({"stock": stock})), None).await.unwrap();
    let wins = Arc::new(AtomicUsize::new(0));
    let tasks = (0..RACERS).map(|_| {
        let (s, k, wins) = (s.clone(), k.clone(), wins.clone());
        tokio::spawn(async move {
            match s.update(&k, &[Update::Add("stock".into(), -1)], Some(Cond::Gt("stock".into(), 0))).await {
                Ok(after) => {
                    assert!(after["stock"].as_i64().unwrap() >= 0);
                    wins.fetch_add(1, Ordering::SeqCst);
                }
                Err(StoreError::ConditionFailed { found }) => {
                    assert_eq!(found.unwrap()["stock"], json!(0), "refused only at zero");
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        })
    });
    for r in join_all(tasks).await {
        r.unwrap();
    }
    assert_eq!(wins.load(Ordering::SeqCst), stock as usize);
    assert_eq!(s.get(&k).await.unwrap().unwrap()["stock"], json!(0));
}

/// Hundreds of tasks put the same key under `attribute_not_exists`: exactly one wins.
pub async fn race_put_if_absent(s: DynStore) {
    let k = Key::new(ns("race-put"), "once");
    let tasks = (0..RACERS).map(|n| {
        let (s, k) = (s.clone(), k.clone());
        tokio::spawn(async move {
            match s.put(item(&k, json!({"winner": n})), Some(Cond::NotExists)).await {
                Ok(()) => Ok(n),
                Err(StoreError::ConditionFailed { found: Some(found) }) => Err(found["winner"].clone()),
                Err(e) => panic!("unexpected error: {e}"),
            }
        })
    });
    let (winners, losers): (Vec<_>, Vec<_>) =
        join_all(tasks).await.into_iter().map(|r| r.unwrap()).partition(Result::is_ok);
    assert_eq!(winners.len(), 1);
    let winner = json!(winners[0].as_ref().unwrap());
    assert_eq!(s.get(&k).await.unwrap().unwrap()["winner"], winner);
    assert!(losers.iter().all(|l| l.as_ref().unwrap_err() == &winner), "every loser was shown the winner");
}

/// Campaign email, never twice: `RACERS` senders claim the same (campaign, recipient) at
/// once and exactly one may send; only it can settle the record, once; a claim never settled
/// counts as UNCERTAIN after its lease, and the counts add up.
pub async fn email_deliveries_are_claimed_once_and_settled_once(s: DynStore) {
    use promo_shared::domain::ids::{CampaignId, UserId};
    use promo_shared::email::delivery::{self as email_delivery, Claim, LEASE};
    use promo_shared::email::items::delivery::Status;

    let campaign = CampaignId::parse(ns("mail")).unwrap();
    let user = UserId::parse("u-racing").unwrap();
    let now = chrono::Utc::now();
    let tasks = (0..RACERS).map(|n| {
        let (s, campaign, user) = (s.clone(), campaign.clone(), user.clone());
        tokio::spawn(async move {
            let run = format!("run-{n}");
            (run.clone(), email_delivery::claim(&*s, &campaign, &user, &run, now).await.unwrap())
        })
    });
    let results: Vec<(String, Claim)> = join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let owners: Vec<&String> = results.iter().filter(|(_, c)| *c == Claim::Claimed).map(|(r, _)| r).collect();
    assert_eq!(owners.len(), 1, "exactly one sender may send");
    assert!(results.iter().all(|(_, c)| matches!(c, Claim::Claimed | Claim::Taken(Status::Claimed))));
    let owner = owners[0].clone();
    // Another run cannot settle it; the owner settles it once; a second settle changes nothing.
    assert!(!email_delivery::settle(&*s, &campaign, &user, "run-x", Status::Failed, "no", now).await.unwrap());
    assert!(email_delivery::settle(&*s, &campaign, &user, &owner, Status::Sent, "ses-1", now).await.unwrap());
    assert!(!email_delivery::settle(&*s, &campaign, &user, &owner, Status::Failed, "late", now).await.unwrap());
    assert_eq!(email_delivery::claim(&*s, &campaign, &user, "run-y", now).await.unwrap(), Claim::Taken(Status::Sent));
    // Three more recipients: one skipped, one claimed and never settled (a crash), one failed.
    for (name, outcome) in [("u-skip", Some(Status::Skipped)), ("u-crash", None), ("u-fail", Some(Status::Failed))] {
        let u = UserId::parse(name).unwrap();
        assert_eq!(email_delivery::claim(&*s, &campaign, &u, "run-1", now).await.unwrap(), Claim::Claimed);
        if let Some(status) = outcome {
            assert!(email_delivery::settle(&*s, &campaign, &u, "run-1", status, "why", now).await.unwrap());
        }
    }
    let counts = email_delivery::counts(&*s, &campaign, now).await.unwrap();
    assert_eq!(
        (counts["sent"], counts["skipped"], counts["failed"], counts["in_flight"], counts["uncertain"]),
        (1, 1, 1, 1, 0)
    );
    let later = email_delivery::counts(&*s, &campaign, now + LEASE + chrono::Duration::seconds(1)).await.unwrap();
    assert_eq!((later["in_flight"], later["uncertain"]), (0, 1), "a claim never settled is uncertain, not resent");
    assert_eq!(later.values().sum::<u64>(), 4, "every recipient is counted once");
    // The tallies `status` reads moved with the records (issue 29, item 2).
    use promo_shared::email::tally as email_tally;
    assert_eq!(email_tally::counts(&*s, &campaign, now).await.unwrap(), counts, "tallies now");
    let later_at = now + LEASE + chrono::Duration::seconds(1);
    assert_eq!(email_tally::counts(&*s, &campaign, later_at).await.unwrap(), later, "tallies after the lease");
}

/// Hundreds of claimers race transactions of "decrement stock, record my claim": exactly
/// `stock` claims exist afterwards, stock is 0, and no user has two.
pub async fn race_transactions(s: DynStore) {
    let p = ns("race-tx");
    let stock_key = Key::new(&p, "STOCK");
    let stock = 50;
    s.put(item(&stock_key, json!({"stock": stock})), None).await.unwrap();
    let tasks = (0..RACERS).map(|n| {
        let (s, p, stock_key) = (s.clone(), p.clone(), stock_key.clone());
        tokio::spawn(async move {
            // Users 0..150, each trying twice: the per-user claim item blocks the second.
            let user = n % (RACERS / 2);
            let ops = vec![
                TxOp::Update {
                    key: stock_key,
                    updates: vec![Update::Add("stock".into(), -1)],
                    cond: Some(Cond::Gt("stock".into(), 0)),
                },
                TxOp::Put {
                    item: item(&Key::new(&p, format!("CLAIM#{user:04}")), json!({"n": n})),
                    cond: Some(Cond::NotExists),
                },
            ];
            loop {
                match s.transact(ops.clone(), None).await {
                    Ok(()) => return true,
                    Err(e) if e.is_retryable() => tokio::task::yield_now().await,
                    Err(StoreError::TransactionCancelled { .. }) => return false,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        })
    });
    let wins = join_all(tasks).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(wins, stock as usize);
    assert_eq!(s.get(&stock_key).await.unwrap().unwrap()["stock"], json!(0));
    let mut claims = 0;
    let mut after = None;
    loop {
        let page = s.query(&Query::partition(&p).prefix("CLAIM#").after(after)).await.unwrap();
        claims += page.items.len();
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(claims, stock as usize, "one claim item per successful transaction, one per user");
}

/// Hundreds of tasks run the same idempotent operation: it runs once, the others replay.
pub async fn race_idempotency(s: DynStore) {
    let key = ns("race-idem");
    let runs = Arc::new(AtomicUsize::new(0));
    let cfg = IdempotencyConfig::default();
    let now = chrono::Utc::now();
    let tasks = (0..RACERS).map(|i| {
        let (s, key, runs) = (s.clone(), key.clone(), runs.clone());
        tokio::spawn(async move {
            let lease = format!("lease-{i}");
            let r: Result<(Value, bool), idempotency::IdempotencyError> =
                idempotency::run_once(&*s, &key, "hash-1", &lease, now, &cfg, || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok(json!({"answer": 42}))
                })
                .await;
            match r {
                Ok((v, _)) => assert_eq!(v, json!({"answer": 42})),
                Err(idempotency::IdempotencyError::InProgress(_)) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        })
    });
    for r in join_all(tasks).await {
        r.unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Later: a replay returns the stored answer; another payload under the key is a conflict.
    let (v, replay) = idempotency::run_once::<_, _, _, idempotency::IdempotencyError>(
        &*s,
        &key,
        "hash-1",
        "late",
        now,
        &cfg,
        || async { Ok(json!("must not run")) },
    )
    .await
    .unwrap();
    assert!(replay);
    assert_eq!(v, json!({"answer": 42}));
    // A replay is one round trip: the refused put returns the stored record.
    let counting = Counting::over(&s);
    let begun = idempotency::begin(&*counting, &key, "hash-1", "late", now, &cfg).await.unwrap();
    assert_eq!(begun, idempotency::Begin::Completed(json!({"answer": 42})));
    assert_eq!((counting.puts.load(Ordering::SeqCst), counting.gets.load(Ordering::SeqCst)), (1, 0));
    let conflict = idempotency::begin(&*s, &key, "hash-2", "late", now, &cfg).await;
    assert!(matches!(conflict, Err(idempotency::IdempotencyError::PayloadMismatch(_))));
}

/// An in-progress record of a crashed run stops blocking after its in-progress expiry.
pub async fn idempotency_recovers_from_a_crashed_run(s: DynStore) {
    let key = ns("idem-crash");
    let cfg = IdempotencyConfig::default();
    let t0 = chrono::Utc::now();
    assert_eq!(idempotency::begin(&*s, &key, "h", "a", t0, &cfg).await.unwrap(), idempotency::Begin::Started);
    // The owner "crashed": no complete, no release.
    assert!(matches!(
        idempotency::begin(&*s, &key, "h", "b", t0 + chrono::Duration::seconds(1), &cfg).await,
        Err(idempotency::IdempotencyError::InProgress(_))
    ));
    let later = t0 + cfg.in_progress_ttl + chrono::Duration::seconds(1);
    assert_eq!(idempotency::begin(&*s, &key, "h", "c", later, &cfg).await.unwrap(), idempotency::Begin::Started);
    idempotency::complete(&*s, &key, "c", &json!(1), later, &cfg).await.unwrap();
    assert_eq!(
        idempotency::begin(&*s, &key, "h", "d", later, &cfg).await.unwrap(),
        idempotency::Begin::Completed(json!(1))
    );
    // After the record's TTL a new run may start.
    let expired = later + cfg.record_ttl + chrono::Duration::seconds(1);
    assert_eq!(idempotency::begin(&*s, &key, "h", "e", expired, &cfg).await.unwrap(), idempotency::Begin::Started);
}

/// A run that fails gives its key up at once (the sender's retry runs, without waiting for
/// the in-progress expiry); releasing never removes a completed record.
pub async fn idempotency_a_failed_run_frees_its_key(s: DynStore) {
    let key = ns("idem-fail");
    let cfg = IdempotencyConfig::default();
    let now = chrono::Utc::now();
    let failed: Result<(serde_json::Value, bool), idempotency::IdempotencyError> =
        idempotency::run_once(&*s, &key, "h", "first", now, &cfg, || async {
            Err(idempotency::IdempotencyError::InProgress("the run itself failed".into()))
        })
        .await;
    assert!(failed.is_err());
    let runs = std::sync::atomic::AtomicUsize::new(0);
    let run = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok::<_, idempotency::IdempotencyError>(json!({"ok": true}))
    };
    let retried = idempotency::run_once(&*s, &key, "h", "retry", now, &cfg, run).await.unwrap();
    assert_eq!(retried, (json!({"ok": true}), false));
    let replayed = idempotency::run_once(&*s, &key, "h", "replay", now, &cfg, run).await.unwrap();
    assert_eq!(replayed, (json!({"ok": true}), true));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the retry ran once, the replay did not run");
    idempotency::release(&*s, &key, "retry").await.unwrap();
    assert_eq!(
        idempotency::begin(&*s, &key, "h", "late", now, &cfg).await.unwrap(),
        idempotency::Begin::Completed(json!({"ok": true}))
    );
}

/// Runs whose leases ran out, each taken over by the next, all finish at once with the run
/// that holds the key now: only the holder's result is recorded, and no stale run's release
/// frees the key (before lease tokens, the last stale `complete` to land overwrote the
/// holder's answer and a stale `release` deleted its record).
pub async fn idempotency_only_the_lease_holder_completes_or_releases(s: DynStore) {
    let key = ns("idem-lease");
    let cfg = IdempotencyConfig::default();
    let t0 = chrono::Utc::now();
    const RUNS: i32 = 40;
    // Each run takes the key once the previous one's lease has run out.
    let at = |i: i32| t0 + (cfg.in_progress_ttl + chrono::Duration::seconds(1)) * i;
    for i in 0..RUNS {
        let begun = idempotency::begin(&*s, &key, "h", &format!("run-{i}"), at(i), &cfg).await.unwrap();
        assert_eq!(begun, idempotency::Begin::Started, "run {i}");
    }
    let holder = RUNS - 1;
    let now = at(holder);
    let tasks = (0..RUNS).flat_map(|i| {
        let complete = {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                let r = idempotency::complete(&*s, &key, &format!("run-{i}"), &json!({"run": i}), now, &cfg).await;
                (i, r)
            })
        };
        let release = {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                if i != holder {
                    idempotency::release(&*s, &key, &format!("run-{i}")).await.unwrap();
                }
                (i, Ok(()))
            })
        };
        [complete, release]
    });
    let mut recorded = Vec::new();
    for r in join_all(tasks).await {
        match r.unwrap() {
            (i, Ok(())) => recorded.push(i),
            (_, Err(idempotency::IdempotencyError::LeaseLost(_))) => {}
            (i, Err(e)) => panic!("run {i}: unexpected error {e}"),
        }
    }
    // Every stale release "succeeds" (it frees nothing); the holder's complete is the one write.
    assert_eq!(recorded.iter().filter(|i| **i == holder).count(), 2, "the holder completed: {recorded:?}");
    let after = idempotency::begin(&*s, &key, "h", "later", now, &cfg).await.unwrap();
    assert_eq!(after, idempotency::Begin::Completed(json!({"run": holder})));
}

/// Generates one `#[tokio::test]` per conformance case for a store factory
/// (`async fn() -> Arc<dyn Store>`), with optional extra attributes on each test.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:path $(, #[$attr:meta])* $(,)?) => {
        $crate::store_conformance_tests!(@cases $factory, [$(#[$attr])*],
            put_then_get, put_needs_keys, conditional_put, conditions_on_attributes,
            update_upserts_and_counts, conditional_delete, transaction_all_or_nothing,
            transaction_shape_is_checked, transaction_token_makes_retries_idempotent,
            query_orders_filters_and_pages, expired_records_can_be_taken_over,
            race_conditional_decrement, race_put_if_absent, race_transactions, race_idempotency,
            idempotency_recovers_from_a_crashed_run, idempotency_a_failed_run_frees_its_key,
            idempotency_only_the_lease_holder_completes_or_releases,
            email_deliveries_are_claimed_once_and_settled_once);
    };
    (@cases $factory:path, $attrs:tt, $($case:ident),* $(,)?) => {
        $( $crate::store_conformance_tests!(@one $factory, $attrs, $case); )*
    };
    (@one $factory:path, [$(#[$attr:meta])*], $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn $case() {
            $crate::store::$case($factory().await).await;
        }
    };
}
