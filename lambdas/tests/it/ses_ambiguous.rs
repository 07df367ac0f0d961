//! (issue 25, item 6) How the SES adapter reads a `SendBulkEmail` that fails as a whole,
//! against a stand-in endpoint that answers what SES's stand-in never does: a server error,
//! throttling, no answer at all, an unreadable answer, and no server. What may have been sent
//! is `Ambiguous` and is never retried by the SDK (one request); what certainly was not is
//! `Throttled` or `Unavailable`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sesv2::config::timeout::TimeoutConfig;
use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
use axum::http::StatusCode;
use promo_lambdas::ses::SesMailer;
use promo_shared::domain::email::EmailAddress;
use promo_shared::ports::mail::{BulkEntry, BulkMailer, MailError};

/// A stand-in answering every request with `status` and `body` after `delay`; counts them.
async fn answering(status: StatusCode, body: &'static str, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            (status, [("content-type", "application/json")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

fn mailer(endpoint: &str) -> SesMailer {
    let conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::from_static("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(promo_lambdas::dynamodb::https_client())
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(Duration::from_millis(500)).build())
        .build();
    SesMailer::new(aws_sdk_sesv2::Client::from_conf(conf))
}

async fn send(endpoint: &str) -> Result<Vec<Result<String, MailError>>, MailError> {
    let entry =
        BulkEntry { to: EmailAddress::parse("jane@example.com").unwrap(), data: Default::default(), headers: vec![] };
    mailer(endpoint).send_bulk("Shop <news@shop.example>", "promo-t", &[entry], &[]).await
}

#[tokio::test]
async fn a_server_error_is_ambiguous_and_sent_once() {
    let (endpoint, hits) = answering(StatusCode::INTERNAL_SERVER_ERROR, "{}", Duration::ZERO).await;
    let got = send(&endpoint).await;
    assert!(matches!(got, Err(MailError::Ambiguous(_))), "{got:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the SDK does not resend a maybe-sent batch");
}

#[tokio::test]
async fn throttling_is_certainly_not_sent() {
    let (endpoint, hits) = answering(StatusCode::TOO_MANY_REQUESTS, "{}", Duration::ZERO).await;
    let got = send(&endpoint).await;
    assert!(matches!(got, Err(MailError::Throttled(_))), "{got:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the sender retries it, not the SDK");
}

#[tokio::test]
async fn no_answer_in_time_is_ambiguous() {
    let (endpoint, hits) = answering(StatusCode::OK, "{}", Duration::from_secs(5)).await;
    let got = send(&endpoint).await;
    assert!(matches!(got, Err(MailError::Ambiguous(_))), "{got:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreadable_answer_is_ambiguous() {
    let (endpoint, _) = answering(StatusCode::OK, "{not json", Duration::ZERO).await;
    let got = send(&endpoint).await;
    assert!(matches!(got, Err(MailError::Ambiguous(_))), "{got:?}");
}

#[tokio::test]
async fn a_connection_never_made_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let got = send(&format!("http://{addr}")).await;
    assert!(matches!(got, Err(MailError::Unavailable(_))), "{got:?}");
}
