//! The SES v2 bulk mailer ([`SesMailer`]) against the stand-in `aws-ses-v2-local`
//! (`infra/test.sh` starts it and sets `PROMO_TEST_SES_ENDPOINT`). What was sent is read back
//! from the stand-in's `GET /store`; the store is shared by every test (never cleared here),
//! so each test uses its own template names and addresses.
//!
//! The stand-in records, per message: `messageId`, `from`, `destination` (to/cc/bcc), the
//! rendered `subject` and `body` (`html`, `text`) and the `headers` (name/value, the entry's
//! `ReplacementHeaders` over the template's). It does not record the tags
//! (`DefaultEmailTags`) nor a configuration set, so those are not checked here. Its errors
//! carry no error code the SDK reads (only an HTTP status), and `GetAccount` answers 400
//! unless it was started with an account (`AWS_SES_ACCOUNT`).

use std::collections::BTreeMap;

use promo_lambdas::ses::SesMailer;
use promo_shared::domain::email::EmailAddress;
use promo_shared::ports::mail::{BulkEntry, BulkMailer, MailError, Template};
use serde_json::Value;

/// Fails (never skips) when the stand-in is not configured.
fn endpoint() -> String {
    std::env::var("PROMO_TEST_SES_ENDPOINT").expect(
        "PROMO_TEST_SES_ENDPOINT is not set: start the stand-in with `infra/test.sh --services-only` \
         and `source ~/.cache/promo/test-state/env`",
    )
}

async fn mailer() -> SesMailer {
    SesMailer::from_env(Some(&endpoint())).await
}

/// A name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The stand-in's store: `{"templates": {name: {...}}, "emails": [...]}`.
async fn store() -> Value {
    let url = format!("{}/store", endpoint());
    let res = reqwest::get(&url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(res.status().is_success(), "GET {url}: {}", res.status());
    res.json().await.unwrap()
}

fn template(name: &str, subject: &str) -> Template {
    Template {
        name: name.to_string(),
        subject: subject.to_string(),
        html: "<p>Hello {{name}}, your code is {{code}}</p>".to_string(),
        text: "Hello {{name}}, your code is {{code}}".to_string(),
    }
}

#[tokio::test]
async fn put_template_creates_then_updates() {
    let mailer = mailer().await;
    let name = unique("tpl");
    mailer.put_template(&template(&name, "First {{name}}")).await.unwrap();
    let stored = &store().await["templates"][&name];
    assert_eq!(stored["TemplateContent"]["Subject"], "First {{name}}", "{stored}");

    // The second put finds it there and updates it.
    mailer.put_template(&template(&name, "Second {{name}}")).await.unwrap();
    let stored = &store().await["templates"][&name];
    assert_eq!(stored["TemplateContent"]["Subject"], "Second {{name}}", "{stored}");
    assert_eq!(stored["TemplateContent"]["Text"], "Hello {{name}}, your code is {{code}}");
}

#[tokio::test]
async fn send_bulk_renders_each_recipients_data_and_headers() {
    let mailer = mailer().await;
    let name = unique("tpl");
    mailer.put_template(&template(&name, "Offer for {{name}}")).await.unwrap();
    let run = unique("run");
    let entries: Vec<BulkEntry> = ["Ada", "Bo", "Cy"]
        .iter()
        .enumerate()
        .map(|(i, who)| BulkEntry {
            to: EmailAddress::parse(&format!("r{i}-{run}@example.com")).unwrap(),
            data: BTreeMap::from([("name".to_string(), who.to_string()), ("code".to_string(), format!("C{i}"))]),
            headers: vec![
                ("List-Unsubscribe".to_string(), format!("<https://promo.example/u?t={run}-{i}>")),
                ("List-Unsubscribe-Post".to_string(), "List-Unsubscribe=One-Click".to_string()),
            ],
        })
        .collect();
    let tags = vec![("campaign".to_string(), "c-1".to_string())];

    let results = mailer.send_bulk("sender@promo.example", &name, &entries, &tags).await.unwrap();
    assert_eq!(results.len(), 3, "{results:?}");
    let ids: Vec<String> = results.into_iter().map(|r| r.unwrap()).collect();
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");

    let store = store().await;
    let emails = store["emails"].as_array().unwrap();
    for (i, (entry, id)) in entries.iter().zip(&ids).enumerate() {
        let sent = emails
            .iter()
            .find(|e| e["messageId"] == id.as_str())
            .unwrap_or_else(|| panic!("message {id} is not in the stand-in's store"));
        let who = &entry.data["name"];
        assert_eq!(sent["from"], "sender@promo.example");
        assert_eq!(sent["destination"]["to"], serde_json::json!([entry.to.expose()]));
        assert_eq!(sent["subject"], format!("Offer for {who}"));
        assert_eq!(sent["body"]["text"], format!("Hello {who}, your code is C{i}"));
        assert_eq!(sent["body"]["html"], format!("<p>Hello {who}, your code is C{i}</p>"));
        let headers: Vec<(&str, &str)> = sent["headers"]
            .as_array()
            .unwrap_or_else(|| panic!("no headers recorded: {sent}"))
            .iter()
            .map(|h| (h["name"].as_str().unwrap(), h["value"].as_str().unwrap()))
            .collect();
        let own = format!("<https://promo.example/u?t={run}-{i}>");
        assert_eq!(
            headers,
            vec![("List-Unsubscribe", own.as_str()), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")],
            "recipient {i}"
        );
    }
}

#[tokio::test]
async fn send_bulk_of_a_missing_template_is_rejected_as_a_whole() {
    let mailer = mailer().await;
    let entry = BulkEntry {
        to: EmailAddress::parse(&format!("{}@example.com", unique("r"))).unwrap(),
        data: BTreeMap::new(),
        headers: Vec::new(),
    };
    let got = mailer.send_bulk("sender@promo.example", &unique("missing"), &[entry], &[]).await;
    assert!(matches!(got, Err(MailError::Rejected(_))), "{got:?}");
}

#[tokio::test]
async fn no_entries_send_nothing() {
    let got = mailer().await.send_bulk("sender@promo.example", &unique("any"), &[], &[]).await;
    assert_eq!(got, Ok(Vec::new()));
}

#[tokio::test]
async fn max_send_rate_is_none_where_get_account_fails() {
    // The stand-in answers GetAccount with 400 (it has no account configured).
    assert_eq!(mailer().await.max_send_rate().await, None);
}

/// (issue 25, item 9) A Korean display name goes to SES RFC 2047 encoded (`FromEmailAddress`
/// must be ASCII), and decodes back to the name.
#[tokio::test]
async fn a_korean_display_name_goes_rfc_2047_encoded() {
    use base64::Engine;
    let mailer = mailer().await;
    let name = unique("tpl");
    mailer.put_template(&template(&name, "Offer for {{name}}")).await.unwrap();
    let to = format!("{}@example.com", unique("kr"));
    let entry = BulkEntry {
        to: EmailAddress::parse(&to).unwrap(),
        data: BTreeMap::from([("name".to_string(), "지민".to_string()), ("code".to_string(), "C".to_string())]),
        headers: vec![],
    };
    let results = mailer.send_bulk("홍길동 상점 <sender@promo.example>", &name, &[entry], &[]).await.unwrap();
    let id = results[0].clone().unwrap();
    let store = store().await;
    let sent = store["emails"].as_array().unwrap().iter().find(|e| e["messageId"] == id.as_str()).unwrap().clone();
    let from = sent["from"].as_str().unwrap();
    assert!(from.is_ascii(), "{from}");
    let (word, address) = from.split_once(' ').unwrap();
    assert_eq!(address, "<sender@promo.example>");
    let b64 = word.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).unwrap_or_else(|| panic!("{from}"));
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
    assert_eq!(decoded, "홍길동 상점");
    assert_eq!(sent["subject"], "Offer for 지민");
}
