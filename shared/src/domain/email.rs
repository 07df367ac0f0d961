//! A campaign's `[email]` section: its sender, subject, bodies, segment and send window.
//! (Addresses are `domain::address`, re-exported here.)

use serde::{Deserialize, Serialize};

use crate::domain::address::has_control;
pub use crate::domain::address::{EmailAddress, mask};
use crate::domain::error::ValidationError;

/// A campaign's sender as its file writes it — `news@shop.example`, `Shop <news@shop.example>`,
/// `"Shop, Inc." <news@shop.example>`, `홍길동 상점 <news@shop.example>` — as its display
/// name (unquoted; `None` when there is none) and its address (unchecked).
pub fn split_from(from: &str) -> (Option<String>, String) {
    let from = from.trim();
    match from.rsplit_once('<') {
        Some((name, rest)) => {
            let address = rest.trim_end().strip_suffix('>').unwrap_or(rest).trim().to_string();
            let name = name.trim();
            let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => name.to_string(),
            };
            ((!name.is_empty()).then_some(name), address)
        }
        None => (None, from.to_string()),
    }
}

/// The sender as a `From:` header's mailbox (RFC 5322): a display name of printable ASCII
/// goes as is, or quoted when it holds a special character; any other name is encoded as
/// RFC 2047 words (`=?UTF-8?B?…?=`, each at most 75 characters), which SES requires of a
/// non-ASCII name in `FromEmailAddress` and mail clients decode. Validation refuses a sender
/// with a line break or a control character, so none reaches here from a valid campaign.
pub fn from_header(from: &str) -> String {
    let (name, address) = split_from(from);
    let Some(name) = name else { return address };
    if name.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        let special = name.chars().any(|c| "()<>[]:;@\\,.\"".contains(c));
        if !special {
            return format!("{name} <{address}>");
        }
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        return format!("\"{escaped}\" <{address}>");
    }
    format!("{} <{address}>", encoded_words(&name))
}

/// `text` as RFC 2047 `B` encoded words of UTF-8, split between characters so that each word
/// stays within 75 characters (45 bytes of text: 60 of base64).
pub fn encoded_words(text: &str) -> String {
    use base64::Engine;
    let encode = |chunk: &str| format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(chunk));
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(encode(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encode(&chunk));
    }
    words.join(" ")
}

/// The variables every campaign email may use besides its declared attributes.
pub const BUILTIN_VARIABLES: [&str; 4] = ["email", "user_id", "campaign_name", "unsubscribe_url"];

/// A campaign's email, as its file's `[email]` section writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSpec {
    /// The sender: `news@shop.example` or `Shop <news@shop.example>`.
    pub from: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Who receives it among the opted-in audience: attribute → the values that qualify (all
    /// conditions must hold); empty: every opted-in member.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub segment: std::collections::BTreeMap<String, OneOrMany>,
    /// The audience attributes the bodies use as `{{name}}`, with the value for a member who
    /// has none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Optional daily window of sending, in the shop's time (`"09:00"`–`"21:00"`, `"+09:00"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_window: Option<SendWindow>,
}

/// A value or a list of values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(v) => vec![v.as_str()],
            OneOrMany::Many(vs) => vs.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    pub from: String,
    pub to: String,
    /// UTC offset of the window's times, e.g. `"+09:00"`.
    pub utc_offset: String,
}

impl SendWindow {
    /// How long until the window opens at `now`; `None` when it is open (or unreadable:
    /// validation refuses those). A window whose end is before its start spans midnight.
    pub fn wait(&self, now: chrono::DateTime<chrono::Utc>) -> Option<std::time::Duration> {
        let t = |s: &str| chrono::NaiveTime::parse_from_str(s, "%H:%M").ok();
        let (from, to, offset) = (t(&self.from)?, t(&self.to)?, self.utc_offset.parse::<chrono::FixedOffset>().ok()?);
        let local = now.with_timezone(&offset).time();
        let open = if from <= to { local >= from && local < to } else { local >= from || local < to };
        if open {
            return None;
        }
        let mut until = from - local;
        if until < chrono::Duration::zero() {
            until += chrono::Duration::days(1);
        }
        until.to_std().ok()
    }
}

/// The `{{ name }}` variables of a template with the 1-based line each is on.
pub fn variables(template: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut consumed = 0;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim().to_string();
        let line = template[..consumed + open].matches('\n').count() + 1;
        out.push((name, line));
        let step = open + 2 + close + 2;
        consumed += step;
        rest = &rest[step..];
    }
    out
}

/// Fills a template's `{{ name }}` variables from `data` (a variable without data becomes
/// empty), HTML-escaping the values when `html` — what the provider does with a stored
/// template; the local mailer renders with it.
pub fn render(template: &str, data: &std::collections::BTreeMap<String, String>, html: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        out.push_str(&rest[..open]);
        let value = data.get(after[..close].trim()).map(String::as_str).unwrap_or("");
        if html {
            for c in value.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#x27;"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(value);
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

impl EmailSpec {
    /// Whether `member` receives this email: opted in, and matching every segment condition
    /// (their attribute is one of the listed values; a member without the attribute does not
    /// match).
    pub fn selects(&self, member: &crate::domain::audience::Member) -> bool {
        member.opted_in
            && self.segment.iter().all(|(name, values)| {
                member.attributes.get(name).is_some_and(|v| values.values().contains(&v.as_str()))
            })
    }

    /// The value of each declared attribute for `member` (its own, else the default): the
    /// per-recipient template data.
    pub fn template_data(
        &self,
        member: &crate::domain::audience::Member,
    ) -> std::collections::BTreeMap<String, String> {
        // A value is one line (it may go into a subject): an import refuses line breaks, and
        // any control character left from an older import becomes a space.
        let one_line = |v: &str| v.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
        self.attributes
            .iter()
            .map(|(name, default)| (name.clone(), one_line(member.attributes.get(name).unwrap_or(default))))
            .collect()
    }

    /// Every problem, with field paths inside `email`.
    pub fn validate(&self) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        let address = match self.from.rsplit_once('<') {
            Some((_, rest)) => rest.trim_end().strip_suffix('>').unwrap_or("").to_string(),
            None => self.from.clone(),
        };
        if has_control(&self.from) {
            errors.push(ValidationError::new(
                "email.from",
                "contains a line break or a control character: the sender is one line",
            ));
        } else if let Err(e) = EmailAddress::parse(&address) {
            errors.push(ValidationError::new("email.from", e.message));
        }
        if has_control(&self.subject) {
            errors.push(ValidationError::new(
                "email.subject",
                "contains a line break or a control character: a subject is one line",
            ));
        }
        for (name, default) in &self.attributes {
            if BUILTIN_VARIABLES.contains(&name.as_str()) {
                errors.push(ValidationError::new(
                    format!("email.attributes.{name}"),
                    format!("`{name}` is a built-in variable, not an attribute"),
                ));
            }
            if has_control(default) {
                errors.push(ValidationError::new(
                    format!("email.attributes.{name}"),
                    "the default contains a line break or a control character: a value is one line",
                ));
            }
        }
        for (field, template) in [("subject", &self.subject), ("html", &self.html), ("text", &self.text)] {
            if template.trim().is_empty() {
                errors.push(ValidationError::new(format!("email.{field}"), "must not be empty"));
            }
            for (name, line) in variables(template) {
                let known = BUILTIN_VARIABLES.contains(&name.as_str()) || self.attributes.contains_key(&name);
                if !known {
                    let mut declared: Vec<&str> = BUILTIN_VARIABLES.to_vec();
                    declared.extend(self.attributes.keys().map(String::as_str));
                    errors.push(ValidationError::new(
                        format!("email.{field}"),
                        format!(
                            "unknown variable `{{{{{name}}}}}` on line {line} of the {field}; known: {} (declare \
                             audience attributes in `email.attributes` with their default)",
                            declared.join(", ")
                        ),
                    ));
                }
            }
        }
        if !self.text.contains("{{unsubscribe_url}}") && !self.html.contains("{{unsubscribe_url}}") {
            errors.push(ValidationError::new(
                "email.text",
                "neither body contains `{{unsubscribe_url}}`: every campaign email carries its unsubscribe link",
            ));
        }
        for (name, values) in &self.segment {
            if values.values().is_empty() {
                errors.push(ValidationError::new(format!("email.segment.{name}"), "lists no value"));
            }
        }
        if let Some(w) = &self.send_window {
            let time = |t: &str| chrono::NaiveTime::parse_from_str(t, "%H:%M").is_ok();
            if !time(&w.from) || !time(&w.to) {
                errors.push(ValidationError::new("email.send_window", "times are HH:MM, e.g. \"09:00\""));
            }
            if w.utc_offset.parse::<chrono::FixedOffset>().is_err() {
                errors.push(ValidationError::new("email.send_window.utc_offset", "is an offset like \"+09:00\""));
            }
        }
        errors
    }
}

#[cfg(test)]
mod spec_tests {
    use super::*;

    fn spec() -> EmailSpec {
        EmailSpec {
            from: "Shop <news@shop.example>".into(),
            subject: "{{first_name}}, 10% for you".into(),
            html: "<p>Hi {{ first_name }}</p>\n<a href=\"{{unsubscribe_url}}\">unsubscribe</a>".into(),
            text: "Hi {{first_name}}\nUnsubscribe: {{unsubscribe_url}}".into(),
            segment: [("tier".to_string(), OneOrMany::Many(vec!["gold".into()]))].into(),
            attributes: [("first_name".to_string(), "there".to_string())].into(),
            send_window: Some(SendWindow { from: "09:00".into(), to: "21:00".into(), utc_offset: "+09:00".into() }),
        }
    }

    #[test]
    fn the_segment_selects_opted_in_members_whose_attributes_match() {
        use crate::domain::audience::Member;
        let member = |opted_in: bool, tier: Option<&str>| Member {
            user_id: crate::domain::ids::UserId::parse("u-1").unwrap(),
            email: EmailAddress::parse("jane@example.com").unwrap(),
            opted_in,
            attributes: tier.map(|t| [("tier".to_string(), t.to_string())].into()).unwrap_or_default(),
        };
        let s = spec();
        assert!(s.selects(&member(true, Some("gold"))));
        assert!(!s.selects(&member(false, Some("gold"))), "never without consent");
        assert!(!s.selects(&member(true, Some("bronze"))));
        assert!(!s.selects(&member(true, None)), "no attribute, no match");
        let everyone = EmailSpec { segment: Default::default(), ..spec() };
        assert!(everyone.selects(&member(true, None)));
        assert_eq!(s.template_data(&member(true, None))["first_name"], "there", "the default");
        let mut named = member(true, Some("gold"));
        named.attributes.insert("first_name".into(), "Jane".into());
        assert_eq!(s.template_data(&named)["first_name"], "Jane");
    }

    #[test]
    fn the_send_window_is_open_inside_and_says_how_long_outside() {
        let w = SendWindow { from: "09:00".into(), to: "21:00".into(), utc_offset: "+09:00".into() };
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert_eq!(w.wait(at("2026-12-04T00:00:00Z")), None, "09:00 in Seoul");
        assert_eq!(w.wait(at("2026-12-04T11:59:00Z")), None, "20:59");
        assert_eq!(w.wait(at("2026-12-04T12:00:00Z")), Some(std::time::Duration::from_secs(12 * 3600)), "21:00");
        assert_eq!(w.wait(at("2026-12-03T23:30:00Z")), Some(std::time::Duration::from_secs(1800)), "08:30");
        let night = SendWindow { from: "22:00".into(), to: "02:00".into(), utc_offset: "+00:00".into() };
        assert_eq!(night.wait(at("2026-12-04T23:00:00Z")), None);
        assert_eq!(night.wait(at("2026-12-04T01:00:00Z")), None);
        assert_eq!(night.wait(at("2026-12-04T21:00:00Z")), Some(std::time::Duration::from_secs(3600)));
    }

    #[test]
    fn templates_render_with_escaping_in_html_only() {
        let data = [("first_name".to_string(), "<Jo & Al>".to_string())].into();
        assert_eq!(render("Hi {{ first_name }}, {{missing}}!", &data, false), "Hi <Jo & Al>, !");
        assert_eq!(render("<p>{{first_name}}</p>", &data, true), "<p>&lt;Jo &amp; Al&gt;</p>");
        assert_eq!(render("no vars {{ unclosed", &data, true), "no vars {{ unclosed");
    }

    /// (issue 25, item 9) A non-ASCII display name goes as RFC 2047 words; an ASCII one as
    /// is or quoted; line breaks in the sender, the subject or a default are refused.
    #[test]
    fn senders_are_encoded_and_line_breaks_refused() {
        use base64::Engine;
        assert_eq!(from_header("news@shop.example"), "news@shop.example");
        assert_eq!(from_header("Shop <news@shop.example>"), "Shop <news@shop.example>");
        assert_eq!(from_header("\"Shop, Inc.\" <news@shop.example>"), "\"Shop, Inc.\" <news@shop.example>");
        assert_eq!(from_header("Shop, Inc. <news@shop.example>"), "\"Shop, Inc.\" <news@shop.example>");
        let korean = from_header("홍길동 상점 <news@shop.example>");
        assert_eq!(
            korean,
            format!(
                "=?UTF-8?B?{}?= <news@shop.example>",
                base64::engine::general_purpose::STANDARD.encode("홍길동 상점")
            )
        );
        assert!(korean.is_ascii());
        // A long name: several words, each within 75 characters, splitting no character.
        let long = "가".repeat(40);
        let header = from_header(&format!("{long} <news@shop.example>"));
        let words: Vec<&str> = header.trim_end_matches(" <news@shop.example>").split(' ').collect();
        assert!(words.len() > 1 && words.iter().all(|w| w.len() <= 75), "{header}");
        let decoded: String = words
            .iter()
            .map(|w| {
                let b64 = w.strip_prefix("=?UTF-8?B?").unwrap().strip_suffix("?=").unwrap();
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(decoded, long);

        let mut s = spec();
        s.from = "Shop\r\nBcc: all@example.com <news@shop.example>".into();
        s.subject = "Hi\r\nBcc: all@example.com".into();
        s.attributes.insert("city".into(), "Seoul\nX-Evil: 1".into());
        let errs = s.validate();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email.from", "email.subject", "email.attributes.city"], "{errs:?}");
        assert!(errs.iter().all(|e| e.message.contains("line break")), "{errs:?}");
        let ok = EmailSpec { from: "홍길동 상점 <news@shop.example>".into(), ..spec() };
        assert_eq!(ok.validate(), vec![], "a Korean display name is valid");
    }

    #[test]
    fn a_valid_email_and_the_variables_it_uses() {
        assert_eq!(spec().validate(), vec![]);
        assert_eq!(variables(&spec().html), vec![("first_name".to_string(), 1), ("unsubscribe_url".to_string(), 2)]);
    }

    #[test]
    fn unknown_variables_bad_senders_and_missing_unsubscribe_links_are_named() {
        let mut s = spec();
        s.html = "<p>Hi</p>\n<p>{{frist_name}}</p>".into();
        s.text = "Hi".into();
        s.from = "Shop <news-at-shop>".into();
        s.send_window = Some(SendWindow { from: "9am".into(), to: "21:00".into(), utc_offset: "KST".into() });
        let errs = s.validate();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["email.from", "email.html", "email.text", "email.send_window", "email.send_window.utc_offset"],
            "{errs:?}"
        );
        assert!(errs[1].message.contains("`{{frist_name}}` on line 2 of the html"), "{}", errs[1].message);
        assert!(errs[2].message.contains("unsubscribe_url"));
    }
}
