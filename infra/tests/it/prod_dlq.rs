//! `promoctl --env prod dlq list|replay` against the SQS stand-in (moto, the same server as
//! the DynamoDB one): listing consumes nothing, replaying moves every dead letter back to
//! its source queue and empties the dead-letter queue.

use std::process::Command;

use serde_json::{Value, json};

async fn sqs(endpoint: &str, action: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("AmazonSQS.{action}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{action}");
    let text = resp.text().await.unwrap();
    if text.is_empty() { json!({}) } else { serde_json::from_str(&text).unwrap() }
}

async fn depth(endpoint: &str, url: &str) -> u64 {
    let attrs = sqs(
        endpoint,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]}),
    )
    .await;
    ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        .iter()
        .map(|k| attrs["Attributes"][k].as_str().unwrap_or("0").parse::<u64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SQS stand-in (moto): infra/test.sh runs it with --include-ignored"]
async fn prod_dead_letters_are_listed_without_consuming_and_replayed_to_their_queue() {
    if !cfg!(feature = "prod") {
        panic!("this test runs promoctl --env prod: run it with `--features prod` (infra/test.sh does)");
    }
    let endpoint = std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT")
        .expect("PROMO_TEST_DYNAMODB_ENDPOINT is not set: run infra/test.sh (or source its env file)");
    let id = uuid::Uuid::now_v7().simple().to_string();
    let source = sqs(&endpoint, "CreateQueue", json!({"QueueName": format!("payments-{id}")})).await["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let dlq = sqs(&endpoint, "CreateQueue", json!({"QueueName": format!("payments-dlq-{id}")})).await["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    for n in 0..13 {
        sqs(&endpoint, "SendMessage", json!({"QueueUrl": dlq, "MessageBody": format!("{{\"n\":{n}}}")})).await;
    }
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_promoctl"))
            .args(["--env", "prod", "dlq"])
            .args(args)
            .env("PROMO_PAYMENT_QUEUE_URL", &source)
            .env("PROMO_PAYMENT_DLQ_URL", &dlq)
            .env("PROMO_SQS_ENDPOINT", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    };
    let promoctl = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "dlq {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed: Value = serde_json::from_str(&promoctl(&["list", "--json"])).unwrap();
    let mut bodies: Vec<String> =
        listed.as_array().unwrap().iter().map(|d| d["body"].as_str().unwrap().to_string()).collect();
    bodies.sort();
    assert_eq!(bodies.len(), 13, "{listed}");
    assert_eq!(depth(&endpoint, &dlq).await, 13, "listing consumed nothing");
    // The listed messages are invisible for a few seconds; the replay waits them out.
    tokio::time::sleep(std::time::Duration::from_secs(21)).await;
    // Production asks first: without a terminal and without --yes, nothing moves.
    let refused = run(&["replay"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pass --yes"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(depth(&endpoint, &dlq).await, 13, "a refused replay moves nothing");
    let replayed = promoctl(&["replay", "--yes"]);
    assert!(replayed.contains("moved 13 dead letters back to `payment-events`"), "{replayed}");
    assert_eq!(depth(&endpoint, &dlq).await, 0);
    assert_eq!(depth(&endpoint, &source).await, 13);
    for url in [&source, &dlq] {
        sqs(&endpoint, "DeleteQueue", json!({"QueueUrl": url})).await;
    }
}
