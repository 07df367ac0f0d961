//! The embedded mailer: one RFC 5322 `.eml` file per message in `<data-dir>/outbox/`,
//! named by the message's idempotency key, so a redelivered job never mails twice.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use promo_shared::domain::email::render;
use promo_shared::ports::mail::MailError;
use promo_shared::ports::mail::Mailer;
use promo_shared::ports::mail::OutgoingEmail;
use promo_shared::ports::mail::{BulkEntry, BulkMailer, MAX_BULK, Template};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    pub fn open(dir: &Path) -> std::io::Result<OutboxMailer> {
        std::fs::create_dir_all(dir)?;
        Ok(OutboxMailer { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of an idempotency key: characters outside `[A-Za-z0-9._-]` become `_`, and a
    /// short hash keeps distinct keys distinct.
    pub fn path_for(&self, idempotency_key: &str) -> PathBuf {
        let safe: String = idempotency_key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
            .take(100)
            .collect();
        // Tells apart keys that sanitise alike; stable across versions and restarts.
        let digest = hex::encode(&Sha256::digest(idempotency_key.as_bytes())[..8]);
        self.dir.join(format!("{safe}-{digest}.eml"))
    }
}

fn mailbox(addr: &str) -> Result<Mailbox, MailError> {
    addr.parse().map_err(|e| MailError::Rejected(format!("address: {e}")))
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        self.write(mailbox(email.from.expose())?, email).await
    }
}

impl OutboxMailer {
    /// Writes `email` from `from` (a mailbox with its display name: lettre encodes a
    /// non-ASCII one as RFC 2047 words).
    async fn write(&self, from: Mailbox, email: &OutgoingEmail) -> Result<String, MailError> {
        let path = self.path_for(&email.idempotency_key);
        let message_id = format!("<{}@promo.local>", uuid::Uuid::new_v4());
        let mut builder = Message::builder()
            .from(from)
            .to(mailbox(email.to.expose())?)
            .subject(email.subject.clone())
            .message_id(Some(message_id.clone()));
        for (name, value) in &email.headers {
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|_| MailError::Rejected(format!("header name `{name}`")))?;
            builder = builder.raw_header(HeaderValue::new(name, value.clone()));
        }
        let message = match &email.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text.clone(), html.clone())),
            None => builder.singlepart(SinglePart::plain(email.text.clone())),
        }
        .map_err(|e| MailError::Rejected(e.to_string()))?;
        let bytes = message.formatted();

        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            if path.exists() {
                return Ok(existing_id(&path).unwrap_or(message_id));
            }
            // Written whole under a name of its own, then linked in place only if no message
            // of this key is there yet: a crash never leaves half a message behind, and of two
            // sends of one key at once exactly one lands; the other answers with its id.
            let unavailable = |e: std::io::Error| MailError::Unavailable(e.to_string());
            let mut tmp = tempfile::Builder::new().suffix(".eml.tmp").tempfile_in(&dir).map_err(unavailable)?;
            std::io::Write::write_all(&mut tmp, &bytes).map_err(unavailable)?;
            tmp.as_file().sync_all().map_err(unavailable)?;
            match tmp.persist_noclobber(&path) {
                Ok(_) => Ok(message_id),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                    Ok(existing_id(&path).unwrap_or(message_id))
                }
                Err(e) => Err(unavailable(e.error)),
            }
        })
        .await
        .map_err(|e| MailError::Unavailable(e.to_string()))?
    }
}

/// Campaign email: stored templates under `<outbox>/templates/<name>.json`, and each bulk
/// entry rendered and written as its own message (a file per send, so a recipient mailed
/// twice would show as two files).
#[async_trait]
impl BulkMailer for OutboxMailer {
    async fn put_template(&self, template: &Template) -> Result<(), MailError> {
        let dir = self.dir.join("templates");
        let path = dir.join(format!("{}.json", template.name));
        let json = serde_json::json!({
            "subject": template.subject, "html": template.html, "text": template.text,
        });
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let tmp = tempfile::NamedTempFile::new_in(&dir)?;
            std::fs::write(tmp.path(), json.to_string())?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(|e| MailError::Unavailable(e.to_string()))?
        .map_err(|e| MailError::Unavailable(e.to_string()))
    }

    async fn send_bulk(
        &self,
        from: &str,
        template: &str,
        entries: &[BulkEntry],
        tags: &[(String, String)],
    ) -> Result<Vec<Result<String, MailError>>, MailError> {
        if entries.len() > MAX_BULK {
            return Err(MailError::Rejected(format!("{} entries; at most {MAX_BULK}", entries.len())));
        }
        let path = self.dir.join("templates").join(format!("{template}.json"));
        let stored = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(|e| MailError::Unavailable(e.to_string()))?
            .map_err(|_| MailError::Rejected(format!("template `{template}` does not exist")))?;
        let t: serde_json::Value =
            serde_json::from_slice(&stored).map_err(|e| MailError::Unavailable(format!("template: {e}")))?;
        let part = |name: &str| t.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let (subject, html, text) = (part("subject"), part("html"), part("text"));
        let (name, address) = promo_shared::domain::email::split_from(from);
        let from = promo_shared::domain::email::EmailAddress::parse(&address)
            .map_err(|e| MailError::Rejected(format!("from: {}", e.message)))?;
        let sender = Mailbox::new(name, mailbox(from.expose())?.email);
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let mut headers = e.headers.clone();
            headers.extend(tags.iter().map(|(k, v)| (format!("X-Promo-Tag-{k}"), v.clone())));
            let email = OutgoingEmail {
                from: from.clone(),
                to: e.to.clone(),
                subject: render(&subject, &e.data, false),
                text: render(&text, &e.data, false),
                html: Some(render(&html, &e.data, true)),
                headers,
                idempotency_key: format!("bulk-{template}-{}", uuid::Uuid::new_v4()),
            };
            out.push(self.write(sender.clone(), &email).await);
        }
        Ok(out)
    }
}

fn existing_id(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Message-ID: ").or_else(|| l.strip_prefix("Message-Id: ")))
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use promo_shared::domain::email::EmailAddress;

    fn email(key: &str) -> OutgoingEmail {
        OutgoingEmail {
            from: EmailAddress::parse("promo@shop.example").unwrap(),
            to: EmailAddress::parse("jane@example.com").unwrap(),
            subject: "Black Friday: 10% for you".into(),
            text: "Your coupon is waiting.".into(),
            html: Some("<p>Your coupon is waiting.</p>".into()),
            headers: vec![
                ("List-Unsubscribe".into(), "<https://shop.example/u/abc>".into()),
                ("List-Unsubscribe-Post".into(), "List-Unsubscribe=One-Click".into()),
            ],
            idempotency_key: key.into(),
        }
    }

    #[tokio::test]
    async fn writes_one_rfc5322_file_per_idempotency_key() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = OutboxMailer::open(&dir.path().join("outbox")).unwrap();
        let id1 = mailer.send(&email("email:bf:u-1")).await.unwrap();
        let id2 = mailer.send(&email("email:bf:u-1")).await.unwrap();
        assert_eq!(id1, id2, "a redelivered job returns the first message id");
        mailer.send(&email("email:bf:u-2")).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(mailer.dir()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let text = std::fs::read_to_string(mailer.path_for("email:bf:u-1")).unwrap();
        for needle in [
            "To: jane@example.com",
            "Subject: Black Friday: 10% for you",
            "List-Unsubscribe: <https://shop.example/u/abc>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "multipart/alternative",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_sends_of_one_key_write_one_whole_message() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = std::sync::Arc::new(OutboxMailer::open(&dir.path().join("outbox")).unwrap());
        // A message large enough that writing it takes a while, so sends overlap.
        let mut big = email("");
        big.text = "Your coupon is waiting. ".repeat(40_000);
        big.html = None;
        let solo = OutgoingEmail { idempotency_key: "email:solo".into(), ..big.clone() };
        mailer.send(&solo).await.unwrap();
        let alone = std::fs::read_to_string(mailer.path_for("email:solo")).unwrap();
        for round in 0..10 {
            let key = format!("email:race:u-{round}");
            let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
            let sends = (0..16).map(|_| {
                let (mailer, start) = (mailer.clone(), start.clone());
                let message = OutgoingEmail { idempotency_key: key.clone(), ..big.clone() };
                tokio::spawn(async move {
                    start.wait().await;
                    mailer.send(&message).await.unwrap()
                })
            });
            let ids: Vec<String> = futures::future::join_all(sends).await.into_iter().map(|r| r.unwrap()).collect();
            let text = std::fs::read_to_string(mailer.path_for(&key)).unwrap();
            let stored = existing_id(&mailer.path_for(&key)).unwrap();
            assert!(ids.iter().all(|id| *id == stored), "every send answers the message that landed: {ids:?}");
            assert_eq!(text.matches("Message-ID:").count(), 1, "one whole message");
            assert_eq!(text.len(), alone.len(), "one whole copy of the message");
        }
        let names: Vec<String> = std::fs::read_dir(mailer.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 11, "one file per key, no temporary left: {names:?}");
        assert!(names.iter().all(|n| n.ends_with(".eml")));
    }

    /// The text of RFC 2047 `B` words (`=?utf-8?b?…?=`, any case), whitespace between
    /// words dropped; other text as is.
    fn decode_words(header: &str) -> String {
        use base64::Engine;
        let mut out = String::new();
        for part in header.split_whitespace() {
            let lower = part.to_ascii_lowercase();
            match lower.strip_prefix("=?utf-8?b?").and_then(|_| part.get(10..part.len() - 2)) {
                Some(b64) if lower.ends_with("?=") => {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
                    out.push_str(&String::from_utf8(bytes).unwrap());
                }
                _ => {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(part);
                }
            }
        }
        out
    }

    /// (issue 25, item 9) A Korean display name reaches the `.eml` RFC 2047 encoded (the
    /// header stays ASCII) and decodes back to the name.
    #[tokio::test]
    async fn a_korean_display_name_is_encoded_in_the_from_header() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = OutboxMailer::open(&dir.path().join("outbox")).unwrap();
        let t = Template {
            name: "t".into(),
            subject: "{{first_name}}님, 10%".into(),
            html: "<p>hi</p>".into(),
            text: "hi".into(),
        };
        mailer.put_template(&t).await.unwrap();
        let entry = BulkEntry {
            to: EmailAddress::parse("jane@example.com").unwrap(),
            data: [("first_name".to_string(), "지민".to_string())].into(),
            headers: vec![],
        };
        let out = mailer.send_bulk("홍길동 상점 <news@shop.example>", "t", &[entry], &[]).await.unwrap();
        assert!(out[0].is_ok(), "{out:?}");
        let file = std::fs::read_dir(mailer.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "eml"))
            .unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let from = text.lines().find_map(|l| l.strip_prefix("From: ")).unwrap();
        assert!(from.is_ascii() && from.to_ascii_lowercase().contains("=?utf-8?b?"), "{from}");
        assert_eq!(decode_words(from), "홍길동 상점 <news@shop.example>", "{from}");
        let subject = text.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap();
        assert!(subject.is_ascii(), "{subject}");
        assert_eq!(decode_words(subject).replace(' ', ""), "지민님,10%", "{subject}");
    }

    #[test]
    fn keys_that_sanitise_alike_get_distinct_files() {
        let mailer = OutboxMailer { dir: PathBuf::from("/tmp/x") };
        assert_ne!(mailer.path_for("a/b"), mailer.path_for("a_b"));
    }
}
