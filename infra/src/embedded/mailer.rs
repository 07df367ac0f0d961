//! The embedded mailer: one RFC 5322 `.eml` file per message in `<data-dir>/outbox/`,
//! named by the message's idempotency key, so a redelivered job never mails twice.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use promo_shared::ports::{MailError, Mailer, OutgoingEmail};
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
        let path = self.path_for(&email.idempotency_key);
        let message_id = format!("<{}@promo.local>", uuid::Uuid::new_v4());
        let mut builder = Message::builder()
            .from(mailbox(email.from.expose())?)
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

        tokio::task::spawn_blocking(move || {
            if path.exists() {
                return Ok(existing_id(&path).unwrap_or(message_id));
            }
            // Write aside, then rename: a crash never leaves half a message behind.
            let tmp = path.with_extension("eml.tmp");
            std::fs::write(&tmp, &bytes).map_err(|e| MailError::Unavailable(e.to_string()))?;
            std::fs::rename(&tmp, &path).map_err(|e| MailError::Unavailable(e.to_string()))?;
            Ok(message_id)
        })
        .await
        .map_err(|e| MailError::Unavailable(e.to_string()))?
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
    use promo_shared::email::EmailAddress;

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

    #[test]
    fn keys_that_sanitise_alike_get_distinct_files() {
        let mailer = OutboxMailer { dir: PathBuf::from("/tmp/x") };
        assert_ne!(mailer.path_for("a/b"), mailer.path_for("a_b"));
    }
}
