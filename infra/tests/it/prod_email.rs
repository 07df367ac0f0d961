//! Campaign email on the production target, end to end on the stand-ins: `promoctl --env
//! prod` imports the audience and deploys the campaign into DynamoDB (moto), triggers the
//! send (the stored template into the SES v2 stand-in, the jobs into SQS on moto); the
//! sender Lambda's entry then takes the jobs as SQS events and sends them through SES; the
//! marketer's `campaign status` shows the send finished, every recipient once.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use promo_lambdas::dynamodb::{DynamoStore, create_table};
use promo_lambdas::ses::SesMailer;
use promo_lambdas::sqs::{SqsConfig, SqsQueue};
use promo_shared::email::sender::{Sender, SenderConfig};
use promo_shared::email::unsubscribe::UnsubscribeKeys;
use promo_shared::ports::mail::Unlimited;
use promo_shared::ports::queue::Queue;
use promoctl::embedded::{OsIds, SystemClock};
use serde_json::{Value, json};

const MEMBERS: usize = 120;
const SECRET: &str = "a-test-unsubscribe-secret-of-32-bytes!!";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run infra/test.sh (or source its env file)"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the stand-ins (moto, SES v2): infra/test.sh runs it with --include-ignored"]
async fn a_production_send_goes_from_promoctl_through_sqs_and_the_sender_to_ses() {
    if !cfg!(feature = "prod") {
        panic!("this test runs promoctl --env prod: run it with `--features prod` (infra/test.sh does)");
    }
    let (endpoint, ses) = (env("PROMO_TEST_DYNAMODB_ENDPOINT"), env("PROMO_TEST_SES_ENDPOINT"));
    let run = uuid::Uuid::now_v7().simple().to_string();
    let table = format!("promo-email-{run}");
    let store = DynamoStore::from_env(table.clone(), Some(&endpoint)).await;
    create_table(store.client(), &table).await.unwrap();
    let (kv_api, _) = promo_conformance::cloudflare_kv::serve().await;
    let queues = SqsQueue::from_env(
        Some(&endpoint),
        SqsConfig { max_attempts: 5, visibility: Duration::from_secs(30), create_missing: true },
    )
    .await;
    let (queue_url, dlq_url) = queues.queue_urls(&format!("email-{run}")).await.unwrap();

    // The marketer's files: the example campaign (any hour) and an audience of one domain.
    let dir = tempfile::tempdir().unwrap();
    let domain = format!("{run}.example.com");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/black-friday.toml")).unwrap();
    let campaign: String = example.lines().filter(|l| !l.starts_with("send_window")).collect::<Vec<_>>().join("\n");
    std::fs::write(dir.path().join("bf.toml"), campaign).unwrap();
    let mut csv = String::from("email,user_id,opted_in,tier,first_name\n");
    for i in 0..MEMBERS {
        csv.push_str(&format!("s{i}@{domain},u-{i:04},{},gold,N{i}\n", i % 4 != 0));
    }
    std::fs::write(dir.path().join("audience.csv"), csv).unwrap();
    let selected = MEMBERS - MEMBERS.div_ceil(4);

    let prod = |args: &[&str]| {
        let out = support::prod_promoctl(&table, &endpoint, &kv_api, dir.path())
            .args(args)
            .current_dir(dir.path())
            .env("PROMO_SQS_ENDPOINT", &endpoint)
            .env("PROMO_SES_ENDPOINT", &ses)
            .env("PROMO_EMAIL_QUEUE_URL", &queue_url)
            .env("PROMO_EMAIL_DLQ_URL", &dlq_url)
            .output()
            .unwrap();
        assert!(out.status.success(), "promoctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    prod(&["audience", "import", "audience.csv"]);
    prod(&["campaign", "deploy", "bf.toml"]);
    prod(&["campaign", "trigger", "black-friday", "--detach", "--json"]);
    let status: Value = serde_json::from_str(&prod(&["campaign", "status", "black-friday", "--json"])).unwrap();
    assert_eq!((status["state"].as_str(), status["enqueued"].as_u64()), (Some("SENDING"), Some(selected as u64)));
    assert!(!dir.path().join("no-local-store").exists(), "--env prod never touches the local store");

    // The sender Lambda: the jobs as SQS events, through the real SES SDK.
    let sender = Sender {
        store: Arc::new(DynamoStore::from_env(table.clone(), Some(&endpoint)).await),
        mailer: Arc::new(SesMailer::from_env(Some(&ses)).await),
        rate: Arc::new(Unlimited),
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsIds),
        keys: UnsubscribeKeys::new(&[SECRET.as_bytes()]).unwrap(),
        config: SenderConfig {
            unsubscribe_url: "https://shop.example/v1/unsubscribe".into(),
            ..SenderConfig::default()
        },
    };
    let queues = queues.with_queue("email", &queue_url, &dlq_url);
    let mut jobs = 0;
    loop {
        let got = queues.receive("email", 10, Duration::from_secs(1)).await.unwrap();
        if got.is_empty() {
            break;
        }
        let records: Vec<Value> = got
            .iter()
            .map(|d| {
                json!({"messageId": d.receipt, "receiptHandle": d.receipt, "body": String::from_utf8(d.body.clone()).unwrap(),
                    "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:1:email", "awsRegion": "us-east-1"})
            })
            .collect();
        let out = promo_lambdas::entry::sender(&sender, json!({"Records": records}), 4).await.unwrap();
        assert_eq!(out["batchItemFailures"], json!([]), "{out}");
        for d in &got {
            queues.ack("email", d).await.unwrap();
        }
        jobs += got.len();
    }
    // One job per audience bucket holding selected members (jobs are never across buckets).
    assert!((selected.div_ceil(50)..=32).contains(&jobs), "{jobs} jobs");
    let status: Value = serde_json::from_str(&prod(&["campaign", "status", "black-friday", "--json"])).unwrap();
    assert_eq!(
        (status["sent"].as_u64(), status["pending"].as_u64(), status["finished"].as_bool()),
        (Some(selected as u64), Some(0), Some(true)),
        "{status}"
    );
    // What SES received: each selected shopper once, with their own unsubscribe link.
    let stored: Value = reqwest::get(format!("{ses}/store")).await.unwrap().json().await.unwrap();
    let mine: Vec<&Value> = stored["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["destination"]["to"][0].as_str().is_some_and(|t| t.ends_with(&domain)))
        .collect();
    assert_eq!(mine.len(), selected);
    let mut to: Vec<&str> = mine.iter().map(|e| e["destination"]["to"][0].as_str().unwrap()).collect();
    to.sort_unstable();
    to.dedup();
    assert_eq!(to.len(), selected, "nobody twice");
    assert!(
        mine.iter().all(|e| e["headers"].as_array().is_some_and(|h| h.iter().any(|h| h["name"] == "List-Unsubscribe")))
    );
}
