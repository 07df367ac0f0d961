//! The SES v2 adapter of the mailer ports ([`BulkMailer`] for campaign email, [`Mailer`]
//! for the events' notices: one `SendEmail`) over `aws-sdk-sesv2`, on the
//! same SDK configuration and HTTPS client as DynamoDB ([`sdk_config`]):
//!
//! - `put_template`: `CreateEmailTemplate`, and `UpdateEmailTemplate` when the template
//!   already exists;
//! - `send_bulk`: one `SendBulkEmail` of the stored template (default template data `{}`) to
//!   up to [`MAX_BULK`] entries, each with its own template data (`ReplacementTemplateData`,
//!   a JSON object of strings) and headers (`ReplacementHeaders`, e.g. `List-Unsubscribe`);
//!   the tags go as `DefaultEmailTags`;
//! - [`SesMailer::max_send_rate`]: the account's rate from `GetAccount`, when it answers.
//!
//! # Errors
//!
//! One result per entry, in SES's order (`entry_result`): `SUCCESS` is the message id;
//! `ACCOUNT_THROTTLED` and `ACCOUNT_DAILY_QUOTA_EXCEEDED` are [`MailError::Throttled`],
//! `TRANSIENT_FAILURE` is [`MailError::Unavailable`] (both retried later); every other status
//! — including the catch-all `FAILED`, the paused and suspended account, an unknown new
//! status — is [`MailError::Rejected`] with SES's reason.
//!
//! SES has no idempotency token for sends, so a call that fails as a whole (`classify`) is
//! told apart by whether it may have been sent:
//!
//! - certainly not sent, retried later: throttling (`TooManyRequestsException`,
//!   `LimitExceededException`, HTTP 429) is `Throttled`; a connection that was never made
//!   (refused, DNS, the connect or TLS handshake failing) is `Unavailable`;
//! - certainly not sent, never accepted: the request's own faults (`BadRequestException`,
//!   `MessageRejected`, `NotFoundException`, `MailFromDomainNotVerifiedException`,
//!   `AccountSuspendedException`, `SendingPausedException`, any other 4xx) are `Rejected`;
//! - maybe sent: a timeout, a connection lost after the request may have gone, an
//!   unreadable answer, a 5xx are [`MailError::Ambiguous`] — the sender settles those
//!   recipients UNCERTAIN instead of sending them again.
//!
//! `SendBulkEmail` is made once: the SDK's own retries are off for it (they would resend a
//! maybe-sent batch); the sender retries what certainly was not sent. The other calls keep
//! the SDK's standard retries. The events' notices (`SendEmail`, [`Mailer`]) are retried on
//! an ambiguous answer as before (`Unavailable`): a notice mailed twice beats one never
//! mailed.
//!
//! # Addresses
//!
//! Full addresses go into the request only. Every error text this module returns has its
//! addresses masked (`j***@example.com`), since SES names identities in some messages.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::create_email_template::CreateEmailTemplateError;
use aws_sdk_sesv2::types::{
    Body, BulkEmailContent, BulkEmailEntry, BulkEmailEntryResult, BulkEmailStatus, Content, Destination, EmailContent,
    EmailTemplateContent, Message, MessageHeader, MessageTag, ReplacementEmailContent, ReplacementTemplate,
};
use promo_shared::domain::email::{from_header, mask};
use promo_shared::ports::mail::{BulkEntry, BulkMailer, MAX_BULK, MailError, Mailer, OutgoingEmail, Template};

use crate::dynamodb::sdk_config;

/// How long a pooled connection may sit idle and still carry a `SendBulkEmail`: shorter than
/// servers' keep-alive timeouts (Node's 5 s, the stand-in's), so a batch is never written
/// onto a connection the server is closing at that moment — a failure that would look like a
/// maybe-sent batch (ambiguous) though nothing was read.
pub const BULK_POOL_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// The bulk mailer on SES v2.
#[derive(Clone, Debug)]
pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
    /// `SendBulkEmail`'s own HTTPS client (see [`BULK_POOL_IDLE`]).
    bulk_http: aws_sdk_sesv2::config::SharedHttpClient,
}

impl SesMailer {
    pub fn new(client: Client) -> SesMailer {
        use aws_smithy_http_client::tls;
        let bulk_http = aws_smithy_http_client::Builder::new()
            .pool_idle_timeout(BULK_POOL_IDLE)
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        SesMailer { client, configuration_set: None, bulk_http }
    }

    /// A mailer on an SDK configuration (e.g. one shared with the other clients).
    pub fn from_config(config: &aws_config::SdkConfig) -> SesMailer {
        SesMailer::new(Client::new(config))
    }

    /// A mailer on the SDK's default configuration chain ([`sdk_config`]); `endpoint_url`
    /// points it at a stand-in (the region then defaults to `us-east-1`).
    pub async fn from_env(endpoint_url: Option<&str>) -> SesMailer {
        SesMailer::from_config(&sdk_config(endpoint_url).await)
    }

    /// Sends through configuration set `name` (its event destinations publish the bounces and
    /// complaints, with the tags); without one, the identity's default set applies, if any.
    pub fn with_configuration_set(self, name: impl Into<String>) -> SesMailer {
        SesMailer { configuration_set: Some(name.into()), ..self }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The account's maximum send rate (messages a second) from `GetAccount`; `None` when
    /// the call fails (a stand-in that has no account) or the answer has no usable rate.
    pub async fn max_send_rate(&self) -> Option<f64> {
        match self.client.get_account().send().await {
            Ok(account) => account.send_quota().map(|q| q.max_send_rate()).filter(|r| r.is_finite() && *r > 0.0),
            Err(e) => {
                tracing::info!(error = %redact(&DisplayErrorContext(&e).to_string()), "SES GetAccount failed");
                None
            }
        }
    }
}

/// One message (the events' notices): `SendEmail` with simple content, through the same
/// configuration set.
#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let text = |s: &str| Content::builder().data(s).charset("UTF-8").build().map_err(built);
        let mut body = Body::builder().text(text(&email.text)?);
        if let Some(html) = &email.html {
            body = body.html(text(html)?);
        }
        let mut message = Message::builder().subject(text(&email.subject)?).body(body.build());
        for (name, value) in &email.headers {
            message = message.headers(MessageHeader::builder().name(name).value(value).build().map_err(built)?);
        }
        let out = self
            .client
            .send_email()
            .from_email_address(email.from.expose())
            .destination(Destination::builder().to_addresses(email.to.expose()).build())
            .content(EmailContent::builder().simple(message.build()).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| match classify(&e) {
                MailError::Ambiguous(m) => MailError::Unavailable(m),
                other => other,
            })?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}

#[async_trait]
impl BulkMailer for SesMailer {
    async fn put_template(&self, template: &Template) -> Result<(), MailError> {
        let content = template_content(template);
        let created = self
            .client
            .create_email_template()
            .template_name(&template.name)
            .template_content(content.clone())
            .send()
            .await;
        let create_error = match created {
            Ok(_) => return Ok(()),
            Err(e) if may_exist(&e) => e,
            Err(e) => return Err(template_error(&e)),
        };
        match self.client.update_email_template().template_name(&template.name).template_content(content).send().await {
            Ok(_) => Ok(()),
            // Not there either: the create failed for another reason.
            Err(e) if status(&e) == Some(404) => Err(template_error(&create_error)),
            Err(e) => Err(template_error(&e)),
        }
    }

    async fn send_bulk(
        &self,
        from: &str,
        template: &str,
        entries: &[BulkEntry],
        tags: &[(String, String)],
    ) -> Result<Vec<Result<String, MailError>>, MailError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if entries.len() > MAX_BULK {
            return Err(MailError::Rejected(format!(
                "{} entries: one bulk send carries at most {MAX_BULK}",
                entries.len()
            )));
        }
        let bulk_entries = entries.iter().map(bulk_entry).collect::<Result<Vec<_>, _>>()?;
        let tags = tags
            .iter()
            .map(|(name, value)| MessageTag::builder().name(name).value(value).build().map_err(built))
            .collect::<Result<Vec<_>, _>>()?;
        let default_content = BulkEmailContent::builder()
            .template(aws_sdk_sesv2::types::Template::builder().template_name(template).template_data("{}").build())
            .build();
        let out = self
            .client
            .send_bulk_email()
            // A non-ASCII display name goes RFC 2047 encoded, as SES requires.
            .from_email_address(from_header(from))
            .default_content(default_content)
            .set_bulk_email_entries(Some(bulk_entries))
            .set_default_email_tags((!tags.is_empty()).then_some(tags))
            .set_configuration_set_name(self.configuration_set.clone())
            // One attempt: a retried batch that had gone out would mail its recipients twice.
            .customize()
            .config_override(
                aws_sdk_sesv2::config::Builder::default()
                    .retry_config(RetryConfig::disabled())
                    .http_client(self.bulk_http.clone()),
            )
            .send()
            .await
            .map_err(|e| classify(&e))?;
        // As many as SES answered, in its order: the caller checks the count.
        Ok(out.bulk_email_entry_results().iter().map(entry_result).collect())
    }
}

fn template_content(t: &Template) -> EmailTemplateContent {
    let part = |s: &str| (!s.is_empty()).then(|| s.to_string());
    EmailTemplateContent::builder().subject(&t.subject).set_html(part(&t.html)).set_text(part(&t.text)).build()
}

/// One recipient: their address, template data and headers.
fn bulk_entry(entry: &BulkEntry) -> Result<BulkEmailEntry, MailError> {
    let data = serde_json::to_string(&entry.data)
        .map_err(|e| MailError::Rejected(format!("template data of {}: {e}", entry.to)))?;
    let mut b = BulkEmailEntry::builder()
        .destination(Destination::builder().to_addresses(entry.to.expose()).build())
        .replacement_email_content(
            ReplacementEmailContent::builder()
                .replacement_template(ReplacementTemplate::builder().replacement_template_data(data).build())
                .build(),
        );
    for (name, value) in &entry.headers {
        b = b.replacement_headers(MessageHeader::builder().name(name).value(value).build().map_err(built)?);
    }
    Ok(b.build())
}

fn built(e: aws_sdk_sesv2::error::BuildError) -> MailError {
    MailError::Rejected(redact(&e.to_string()))
}

/// One entry's answer as the port's (see the module's documentation). A `SUCCESS` without a
/// message id is still a success (an empty id): the message went out, and a retry would send
/// it twice.
fn entry_result(r: &BulkEmailEntryResult) -> Result<String, MailError> {
    let why = |status: &str| match r.error() {
        Some(e) if !e.is_empty() => format!("{status}: {}", redact(e)),
        _ => status.to_string(),
    };
    let Some(status) = r.status() else {
        return Err(MailError::Rejected(why("no status")));
    };
    match status {
        BulkEmailStatus::Success => Ok(r.message_id().unwrap_or_default().to_string()),
        // Over the rate or the day's quota: the same message goes later.
        BulkEmailStatus::AccountThrottled | BulkEmailStatus::AccountDailyQuotaExceeded => {
            Err(MailError::Throttled(why(status.as_str())))
        }
        BulkEmailStatus::TransientFailure => Err(MailError::Unavailable(why(status.as_str()))),
        // `FAILED` is SES's catch-all with a reason (temporary issues are TRANSIENT_FAILURE);
        // a paused account or configuration set waits for a person, not for a retry.
        BulkEmailStatus::MessageRejected
        | BulkEmailStatus::MailFromDomainNotVerified
        | BulkEmailStatus::ConfigurationSetNotFound
        | BulkEmailStatus::TemplateNotFound
        | BulkEmailStatus::InvalidParameter
        | BulkEmailStatus::InvalidSendingPoolName
        | BulkEmailStatus::AccountSuspended
        | BulkEmailStatus::AccountSendingPaused
        | BulkEmailStatus::ConfigurationSetSendingPaused
        | BulkEmailStatus::Failed => Err(MailError::Rejected(why(status.as_str()))),
        // A status this SDK does not know yet: not retried blindly.
        other => Err(MailError::Rejected(why(other.as_str()))),
    }
}

/// A whole call's failure as the port's (see the module's documentation).
fn classify<E>(e: &SdkError<E>) -> MailError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = redact(&DisplayErrorContext(e).to_string());
    match e {
        // Never sent: the request could not be built.
        SdkError::ConstructionFailure(_) => MailError::Rejected(message),
        SdkError::ServiceError(se) => by_code(se.err().code(), se.raw().status().as_u16(), message),
        // The connection was never made: nothing left this process.
        SdkError::DispatchFailure(d) if d.is_user() || never_connected(e) => MailError::Unavailable(message),
        // A timeout, a connection lost mid-call, an unreadable answer: it may have been sent.
        _ => MailError::Ambiguous(message),
    }
}

/// Whether a dispatch failure happened while connecting (refused, DNS, the connect or TLS
/// handshake), before any byte of the request could be sent: the connection pool's error
/// says `Connect` (hyper-util's "client error (Connect)"), or the I/O error is a refused or
/// unreachable address.
fn never_connected(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut next = Some(e);
    while let Some(err) = next {
        if err.to_string().contains("client error (Connect)") {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::HostUnreachable
            )
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// A service error by its code, else by its HTTP status (the stand-in `aws-ses-v2-local`
/// sends its error names in a field the SDK does not read, so its errors have no code).
fn by_code(code: Option<&str>, status: u16, message: String) -> MailError {
    match code {
        Some("TooManyRequestsException" | "LimitExceededException" | "ThrottlingException" | "Throttling") => {
            MailError::Throttled(message)
        }
        Some(
            "BadRequestException"
            | "MessageRejected"
            | "NotFoundException"
            | "MailFromDomainNotVerifiedException"
            | "AccountSuspendedException"
            | "SendingPausedException"
            | "AlreadyExistsException",
        ) => MailError::Rejected(message),
        _ => match status {
            429 => MailError::Throttled(message),
            400..=499 => MailError::Rejected(message),
            // A server error: the request arrived, and may have been acted on.
            _ => MailError::Ambiguous(message),
        },
    }
}

/// A template call's failure: as [`classify`], except that `LimitExceededException` there
/// means too many templates (no retry makes room).
fn template_error<E>(e: &SdkError<E>) -> MailError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (e.as_service_error().and_then(|se| se.code()), classify(e)) {
        (Some("LimitExceededException"), MailError::Throttled(m)) => MailError::Rejected(m),
        // Storing a template again is harmless: worth retrying.
        (_, MailError::Ambiguous(m)) => MailError::Unavailable(m),
        (_, mapped) => mapped,
    }
}

/// Whether a failed create may mean "the template exists": `AlreadyExistsException`, or a
/// 400 without a code (how the stand-in answers it); the update then tells.
fn may_exist(e: &SdkError<CreateEmailTemplateError>) -> bool {
    match e {
        SdkError::ServiceError(se) => {
            se.err().is_already_exists_exception() || (se.err().code().is_none() && se.raw().status().as_u16() == 400)
        }
        _ => false,
    }
}

fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// `text` with every word that holds an `@` masked (`jane@example.com` → `j***@example.com`).
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str(&mask(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, ',' | ';' | ':' | '<' | '>' | '(' | ')' | '[' | ']' | '"' | '\'') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn result(status: &str, id: Option<&str>, error: Option<&str>) -> BulkEmailEntryResult {
        BulkEmailEntryResult::builder()
            .status(BulkEmailStatus::from(status))
            .set_message_id(id.map(str::to_string))
            .set_error(error.map(str::to_string))
            .build()
    }

    #[test]
    fn maps_each_entry_status() {
        assert_eq!(entry_result(&result("SUCCESS", Some("m-1"), None)), Ok("m-1".into()));
        assert_eq!(entry_result(&result("SUCCESS", None, None)), Ok(String::new()));
        for throttled in ["ACCOUNT_THROTTLED", "ACCOUNT_DAILY_QUOTA_EXCEEDED"] {
            assert!(
                matches!(entry_result(&result(throttled, None, None)), Err(MailError::Throttled(_))),
                "{throttled}"
            );
        }
        assert!(matches!(entry_result(&result("TRANSIENT_FAILURE", None, None)), Err(MailError::Unavailable(_))));
        for rejected in [
            "MESSAGE_REJECTED",
            "MAIL_FROM_DOMAIN_NOT_VERIFIED",
            "CONFIGURATION_SET_NOT_FOUND",
            "TEMPLATE_NOT_FOUND",
            "INVALID_PARAMETER",
            "INVALID_SENDING_POOL_NAME",
            "ACCOUNT_SUSPENDED",
            "ACCOUNT_SENDING_PAUSED",
            "CONFIGURATION_SET_SENDING_PAUSED",
            "FAILED",
            "SOME_NEW_STATUS",
        ] {
            let got = entry_result(&result(rejected, Some("m-2"), Some("because")));
            assert_eq!(got, Err(MailError::Rejected(format!("{rejected}: because"))), "{rejected}");
        }
        let no_status = BulkEmailEntryResult::builder().build();
        assert!(matches!(entry_result(&no_status), Err(MailError::Rejected(_))));
        // SES's reasons can name the recipient.
        let got = entry_result(&result("FAILED", None, Some("Invalid address: jane.doe@example.com.")));
        assert_eq!(got, Err(MailError::Rejected("FAILED: Invalid address: j***@example.com.".into())));
    }

    #[test]
    fn maps_whole_call_errors_by_code_then_status() {
        let m = || "m".to_string();
        assert_eq!(by_code(Some("TooManyRequestsException"), 429, m()), MailError::Throttled(m()));
        assert_eq!(by_code(Some("LimitExceededException"), 400, m()), MailError::Throttled(m()));
        for code in [
            "BadRequestException",
            "MessageRejected",
            "NotFoundException",
            "MailFromDomainNotVerifiedException",
            "AccountSuspendedException",
            "SendingPausedException",
        ] {
            assert_eq!(by_code(Some(code), 400, m()), MailError::Rejected(m()), "{code}");
        }
        assert_eq!(by_code(None, 429, m()), MailError::Throttled(m()));
        assert_eq!(by_code(None, 400, m()), MailError::Rejected(m()));
        assert_eq!(by_code(None, 404, m()), MailError::Rejected(m()));
        assert_eq!(by_code(Some("InternalFailure"), 500, m()), MailError::Ambiguous(m()));
        assert_eq!(by_code(None, 503, m()), MailError::Ambiguous(m()));
    }

    #[test]
    fn redacts_addresses() {
        assert_eq!(
            redact("identities failed: <jane@example.com>, bob@x.org; ok"),
            "identities failed: <j***@example.com>, b***@x.org; ok"
        );
        assert_eq!(redact("no address here"), "no address here");
    }
}
