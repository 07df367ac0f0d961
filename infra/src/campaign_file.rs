//! Campaign files: TOML (`.toml`) or JSON (`.json`), parsed and validated with every
//! problem reported at once.
//!
//! The campaign's `starts_at` and `ends_at`, and each event's, may be relative to the moment the file is
//! loaded (deploy or validate): `"now"`, `"+30d"`, `"now+12h"`, `"-1d"` (units `s`, `m`,
//! `h`, `d`, `w`), so an example or a test campaign never goes stale. They are resolved
//! once, and the deployed campaign holds the absolute instants.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::campaign::CampaignSpec;
use serde::Serialize;
use toml::de::{DeTable, DeValue};

/// One problem of a campaign file, where it is and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// 1-based; `None` when the position is unknown (JSON files' rule problems).
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The field's path (`rewards[1].stock`), empty for a syntax problem.
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    /// `file:line:column: field: message` (and `  hint: …` on the next line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The problems of a file, all of them.
#[derive(Debug, thiserror::Error)]
#[error("{} is not a valid campaign ({} problem{}):\n{}", .file, .problems.len(), if .problems.len() == 1 { "" } else { "s" },
    .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Problems {
    pub file: String,
    pub problems: Vec<Problem>,
}

/// A checked campaign file: the campaign, and which of its window's fields were written
/// relative to the deploy.
#[derive(Clone, Debug)]
pub struct CampaignFile {
    pub campaign: Campaign,
    /// The paths of the times written relative: `starts_at`, `ends_at`, `events[2].starts_at`.
    pub relative: Vec<String>,
}

impl CampaignFile {
    /// The campaign to deploy over `deployed`: a relative `starts_at`/`ends_at` is resolved at
    /// the first deploy only and keeps its deployed instant afterwards, so deploying the same
    /// file again changes nothing.
    pub fn anchored(&self, deployed: Option<&Campaign>) -> anyhow::Result<Campaign> {
        let Some(old) = deployed.filter(|_| !self.relative.is_empty()) else { return Ok(self.campaign.clone()) };
        let mut spec = self.campaign.spec().clone();
        for path in &self.relative {
            match path.as_str() {
                "starts_at" => spec.starts_at = old.starts_at,
                "ends_at" => spec.ends_at = old.ends_at,
                _ => {
                    // `events[i].starts_at`: the deployed event of the same id keeps its instant.
                    let Some((i, field)) = event_field(path) else { continue };
                    let Some(new) = spec.events.get_mut(i) else { continue };
                    let Some(was) = old.events.iter().find(|e| e.id == new.id) else { continue };
                    match field {
                        "starts_at" => new.starts_at = was.starts_at,
                        _ => new.ends_at = was.ends_at,
                    }
                }
            }
        }
        Campaign::new(spec).map_err(|e| anyhow::anyhow!("with the deployed window kept: {e}"))
    }

    /// The instant the relative time at `path` resolved to in `campaign`.
    pub fn instant(campaign: &Campaign, path: &str) -> Option<DateTime<Utc>> {
        match path {
            "starts_at" => Some(campaign.starts_at),
            "ends_at" => Some(campaign.ends_at),
            _ => {
                let (i, field) = event_field(path)?;
                let e = campaign.events.get(i)?;
                Some(if field == "starts_at" { e.starts_at } else { e.ends_at })
            }
        }
    }
}

/// `events[3].ends_at` → `(3, "ends_at")`.
fn event_field(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix("events[")?;
    let (i, field) = rest.split_once("].")?;
    Some((i.parse().ok()?, field))
}

/// Reads and checks a campaign file; the error is [`Problems`] when the file is not valid.
pub fn load(path: &Path, now: DateTime<Utc>) -> anyhow::Result<Campaign> {
    Ok(load_file(path, now)?.campaign)
}

/// Reads and checks a campaign file, keeping which times were relative.
pub fn load_file(path: &Path, now: DateTime<Utc>) -> anyhow::Result<CampaignFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(check_file(&text, path, now)?)
}

/// The campaign in `text` as the campaign file `path`, or every problem found in it (syntax,
/// types and the campaign's rules), each with its position.
pub fn check(text: &str, path: &Path, now: DateTime<Utc>) -> Result<Campaign, Problems> {
    Ok(check_file(text, path, now)?.campaign)
}

/// [`check`], keeping which times were relative.
pub fn check_file(text: &str, path: &Path, now: DateTime<Utc>) -> Result<CampaignFile, Problems> {
    let mut relative_fields = Vec::new();
    let file = path.display().to_string();
    let fail = |problems: Vec<Problem>| Problems { file: file.clone(), problems };
    let at = |line: Option<usize>, column: Option<usize>, field: &str, message: String| {
        let hint = hint(field, &message);
        Problem { file: file.clone(), line, column, field: field.to_string(), message, hint }
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let (resolved, relative_errs) = resolve_toml(text, now, &mut relative_fields);
            // Offsets into `source`: the file as written (relative times) or as resolved (the
            // rest; the same lines, as the resolution rewrites lines in place).
            let problems_at = |source: &str, problems: &mut Vec<Problem>, errs: Vec<(usize, String, String)>| {
                for (offset, field, message) in errs {
                    let (line, column) = line_col(source, offset);
                    problems.push(at(Some(line), Some(column), &field, message));
                }
                problems.sort_by_key(|p| (p.line, p.column));
            };
            let mut problems = Vec::new();
            problems_at(text, &mut problems, relative_errs);
            let (doc, syntax) = DeTable::parse_recoverable(&resolved);
            if !syntax.is_empty() {
                let errs = syntax
                    .iter()
                    .map(|e| (e.span().map_or(0, |s| s.start), String::new(), first_line(e.message())))
                    .collect();
                problems_at(&resolved, &mut problems, errs);
                return Err(fail(problems));
            }
            if !problems.is_empty() {
                return Err(fail(problems));
            }
            let spec: CampaignSpec = match toml::from_str(&resolved) {
                Ok(spec) => spec,
                Err(e) => {
                    let offset = e.span().map_or(0, |s| s.start);
                    let field = field_at(doc.get_ref(), offset).unwrap_or_default();
                    problems_at(&resolved, &mut problems, vec![(offset, field, first_line(e.message()))]);
                    return Err(fail(problems));
                }
            };
            let campaign = Campaign::new(spec).map_err(|errs| {
                let errs = errs
                    .0
                    .into_iter()
                    .map(|e| (span_of(doc.get_ref(), doc.span().start, &e.field), e.field, e.message))
                    .collect();
                let mut problems = Vec::new();
                problems_at(&resolved, &mut problems, errs);
                fail(problems)
            })?;
            Ok(CampaignFile { campaign, relative: relative_fields })
        }
        Some("json") => {
            let json_err = |e: serde_json::Error| {
                fail(vec![at(
                    Some(e.line()),
                    Some(e.column()),
                    "",
                    e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
                )])
            };
            let mut v: serde_json::Value = serde_json::from_str(text).map_err(json_err)?;
            let mut windows: Vec<(String, &mut serde_json::Value)> = Vec::new();
            if let serde_json::Value::Object(top) = &mut v {
                for (key, value) in top.iter_mut() {
                    match (key.as_str(), value) {
                        ("starts_at" | "ends_at", value) => windows.push((key.clone(), value)),
                        ("events", serde_json::Value::Array(events)) => {
                            for (i, e) in events.iter_mut().enumerate() {
                                let serde_json::Value::Object(e) = e else { continue };
                                for (k, value) in e.iter_mut().filter(|(k, _)| WINDOW.contains(&k.as_str())) {
                                    windows.push((format!("events[{i}].{k}"), value));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            for (field, value) in windows {
                if let serde_json::Value::String(t) = value
                    && let Some(resolved) = relative(t, now)
                {
                    match resolved {
                        Ok(instant) => {
                            *t = instant.to_rfc3339();
                            relative_fields.push(field);
                        }
                        Err(message) => return Err(fail(vec![at(None, None, &field, message)])),
                    }
                }
            }
            // Types are checked on the text, so a problem keeps its line and column.
            let spec: CampaignSpec =
                serde_json::from_value(v).map_err(|e| fail(vec![at(None, None, "", e.to_string())]))?;
            let campaign = Campaign::new(spec)
                .map_err(|errs| fail(errs.0.into_iter().map(|e| at(None, None, &e.field, e.message)).collect()))?;
            Ok(CampaignFile { campaign, relative: relative_fields })
        }
        _ => Err(fail(vec![at(None, None, "", "a campaign file ends in .toml or .json".to_string())])),
    }
}

/// The first line of a parser's message (the toml crate adds the source excerpt after it).
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_string()
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The byte offset of the field at `path` (`rewards[1].stock`, `claim.coupon`), or of the
/// nearest enclosing table found when the field itself is not written (a default).
fn span_of(table: &DeTable<'_>, table_start: usize, path: &str) -> usize {
    let mut at = table_start;
    let mut current: Option<&DeTable<'_>> = Some(table);
    for segment in path.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let Some(t) = current else { break };
        let Some((key, value)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == name) else { break };
        at = key.span().start;
        current = match (value.get_ref(), index) {
            (DeValue::Table(t), None) => Some(t),
            (DeValue::Array(items), Some(i)) => match items.get(i) {
                Some(item) => {
                    at = item.span().start;
                    match item.get_ref() {
                        DeValue::Table(t) => Some(t),
                        _ => None,
                    }
                }
                None => None,
            },
            _ => None,
        };
    }
    at
}

/// The path of the innermost field whose key or value holds byte `offset` (for type errors).
/// Every table is searched: the spans of `[[array]]` tables do not enclose their fields.
fn field_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    fn in_value(value: &DeValue<'_>, offset: usize, path: &str) -> Option<String> {
        match value {
            DeValue::Table(t) => in_table(t, offset, path),
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let here = format!("{path}[{i}]");
                let s = item.span();
                in_value(item.get_ref(), offset, &here)
                    .or_else(|| (s.start <= offset && offset < s.end).then_some(here))
            }),
            _ => None,
        }
    }
    fn in_table(table: &DeTable<'_>, offset: usize, path: &str) -> Option<String> {
        table.iter().find_map(|(k, v)| {
            let name: &Cow<'_, str> = k.get_ref();
            let here = if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
            let (ks, vs) = (k.span(), v.span());
            in_value(v.get_ref(), offset, &here)
                .or_else(|| (ks.contains(&offset) || (vs.start <= offset && offset < vs.end)).then_some(here))
        })
    }
    in_table(table, offset, "")
}

/// What to do about a problem, for the common ones.
fn hint(field: &str, message: &str) -> Option<String> {
    let last = field.rsplit('.').next().unwrap_or(field);
    let last = last.split('[').next().unwrap_or(last);
    let h = if message.contains("unknown field") {
        "check the spelling against the campaign file reference (docs/marketers/campaign-file.md)"
    } else if matches!(last, "starts_at" | "ends_at") {
        "write an RFC 3339 instant (\"2026-11-01T00:00:00+09:00\") or a time relative to the deploy (\"now\", \"+30d\")"
    } else if last == "hold" {
        "a duration like \"10m\", \"30s\" or \"1h 30m\", from 10s to 24h"
    } else if last == "stock" && field.starts_with("events") {
        "an event's stock is 1 to 1,000,000 places"
    } else if last == "stock" || last == "shards" {
        "a stock is at least 1, and is split over 1 to 96 shards, at most one per unit"
    } else if last == "coupon" {
        "name the `id` of one of this campaign's [[coupons]]"
    } else if last == "currency" {
        "an ISO 4217 code such as \"KRW\" or \"USD\""
    } else if last == "discount" || field.contains("discount.") || message.contains("enum Discount") {
        "a discount is { fixed = N } in minor units, or { percent = P, max = N } with 1 <= P <= 100"
    } else if last == "id" && message.contains("twice") {
        "ids are unique within their list"
    } else if last == "id" {
        "ids are 1 to 128 letters, digits, '-', '_', '.' or ':', and not '.' or '..'"
    } else if message.contains("missing field") {
        "add the field; the campaign file reference lists the required ones"
    } else {
        return None;
    };
    Some(h.to_string())
}

/// The campaign's own window, the fields that may be relative.
const WINDOW: [&str; 2] = ["starts_at", "ends_at"];

/// The TOML text with a relative `starts_at` / `ends_at` of the top-level table (before the
/// first `[section]`) or of an `[[events]]` table replaced by its instant, line for line, so every other message keeps
/// its line; and the relative times that are not valid (byte offset of the value, field,
/// message).
fn resolve_toml(
    text: &str,
    now: DateTime<Utc>,
    relative_fields: &mut Vec<String>,
) -> (String, Vec<(usize, String, String)>) {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    // Where the line is: the top-level table, the `[[events]]` table number n, or elsewhere.
    let mut section: Option<Option<usize>> = Some(None);
    let mut events = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            let header = trimmed.split('#').next().unwrap_or_default().trim();
            section = if header == "[[events]]" {
                events += 1;
                Some(Some(events - 1))
            } else {
                None
            };
        }
        let assignment = trimmed.split_once('=').map(|(k, v)| (k.trim(), v.trim()));
        let path = |key: &str| match section {
            Some(None) => Some(key.to_string()),
            Some(Some(i)) => Some(format!("events[{i}].{key}")),
            None => None,
        };
        match assignment.and_then(|(key, value)| Some((key, value, path(key)?))) {
            Some((key, value, path)) if WINDOW.contains(&key) => {
                let quoted = value.split('#').next().unwrap_or_default().trim();
                let literal = quoted.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                match literal.and_then(|t| relative(t, now)) {
                    Some(Ok(at)) => {
                        relative_fields.push(path);
                        let ending = if line.ends_with('\n') { "\n" } else { "" };
                        out.push_str(&format!("{key} = \"{}\"{ending}", at.to_rfc3339()));
                    }
                    Some(Err(message)) => {
                        let value_at = offset + line.find('"').unwrap_or(0);
                        problems.push((value_at, path, message));
                        out.push_str(line);
                    }
                    None => out.push_str(line),
                }
            }
            _ => out.push_str(line),
        }
        offset += line.len();
    }
    (out, problems)
}

/// `Some` when `t` is a relative time (`now`, `+30d`, `now-1h`, …), with its instant or why
/// it is not one; `None` for anything else (an RFC 3339 instant, checked later).
fn relative(t: &str, now: DateTime<Utc>) -> Option<Result<DateTime<Utc>, String>> {
    // Whole seconds, as instants are written: an event stamped in the second of the deploy
    // falls inside a window that starts "now".
    let now = now.trunc_subsecs(0);
    let rest = t.trim().strip_prefix("now").unwrap_or(t.trim());
    if rest.is_empty() {
        return (t.trim() == "now").then_some(Ok(now));
    }
    let (sign, amount) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let parse = || -> Result<DateTime<Utc>, String> {
        let unit = amount.chars().last().unwrap_or(' ');
        let n: i64 = amount[..amount.len().saturating_sub(1)]
            .parse()
            .map_err(|_| format!("`{t}` is not a relative time like \"+30d\" (units s, m, h, d, w)"))?;
        let d = match unit {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            _ => None,
        }
        .ok_or_else(|| format!("`{t}` is not a relative time like \"+30d\" (units s, m, h, d, w)"))?;
        now.checked_add_signed(d * sign).ok_or_else(|| format!("`{t}` is out of range"))
    };
    Some(parse())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    const NOW: &str = "2031-05-06T07:08:09.750Z";

    fn now() -> DateTime<Utc> {
        NOW.parse().unwrap()
    }

    const BODY: &str = "currency = \"KRW\"\n[[coupons]]\nid = \"c\"\nkind = \"cart\"\ndiscount = { fixed = 1000 }\n";

    #[test]
    fn relative_windows_are_resolved_at_load_in_toml_and_json() {
        let toml = format!("id = \"x\"\nname = \"X\"\nstarts_at = \"now\"  # at deploy\nends_at = \"+30d\"\n{BODY}");
        let c = check(&toml, Path::new("c.toml"), now()).unwrap();
        let second = now().trunc_subsecs(0);
        assert_eq!(c.starts_at, second, "whole seconds: an event stamped in this second is inside");
        assert_eq!(c.ends_at, second + Duration::days(30));
        let json = r#"{"id": "x", "name": "X", "currency": "KRW", "starts_at": "now-1h", "ends_at": "+2w",
            "coupons": [{"id": "c", "kind": "cart", "discount": {"fixed": 1000}}]}"#;
        let c = check(json, Path::new("c.json"), now()).unwrap();
        assert_eq!((c.starts_at, c.ends_at), (second - Duration::hours(1), second + Duration::weeks(2)));
        // Absolute instants stay as written; a bad relative time names its line.
        let abs = format!("id = \"x\"\nname = \"X\"\nstarts_at = \"2031-01-01T00:00:00Z\"\nends_at = \"+1d\"\n{BODY}");
        assert_eq!(
            check(&abs, Path::new("c.toml"), now()).unwrap().starts_at,
            "2031-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let bad = format!("id = \"x\"\nname = \"X\"\nstarts_at = \"now\"\nends_at = \"+3y\"\n{BODY}");
        let err = format!("{:#}", check(&bad, Path::new("c.toml"), now()).unwrap_err());
        assert!(err.contains("c.toml:4:11: ends_at: `+3y`"), "{err}");
        // Only the campaign's own window: a section's key of the same name is left alone.
        let nested = format!(
            "id = \"x\"\nname = \"X\"\nstarts_at = \"now\"\nends_at = \"+1d\"\n{BODY}[[coupons]]\nends_at = \"+1d\"\n"
        );
        assert!(resolve_toml(&nested, now(), &mut Vec::new()).0.ends_with("ends_at = \"+1d\"\n"));
    }

    const EVENT: &str = "[[events]]\nid = \"drop\"\nname = \"Drop\"\nstarts_at = \"+1h\"\nends_at = \"+3h\"\nstock = 100\nhold = \"10m\"\nprice = 50000\n";

    #[test]
    fn events_have_relative_windows_kept_on_redeploy() {
        let toml = format!("id = \"x\"\nname = \"X\"\nstarts_at = \"now\"\nends_at = \"+30d\"\n{BODY}{EVENT}");
        let f = check_file(&toml, Path::new("c.toml"), now()).unwrap();
        let second = now().trunc_subsecs(0);
        let e = &f.campaign.events[0];
        assert_eq!((e.starts_at, e.ends_at), (second + Duration::hours(1), second + Duration::hours(3)));
        assert_eq!((e.hold.seconds(), e.per_user_limit, e.stock), (600, 1, 100));
        assert_eq!(f.relative, ["starts_at", "ends_at", "events[0].starts_at", "events[0].ends_at"]);
        // Loaded an hour later over the deployed campaign: the deployed instants stay.
        let later = check_file(&toml, Path::new("c.toml"), now() + Duration::hours(1)).unwrap();
        let kept = later.anchored(Some(&f.campaign)).unwrap();
        assert_eq!(kept.events[0].starts_at, e.starts_at);
        assert_eq!(CampaignFile::instant(&kept, "events[0].ends_at"), Some(e.ends_at));
        // JSON too.
        let json = r#"{"id": "x", "name": "X", "currency": "KRW", "starts_at": "now", "ends_at": "+2w",
            "coupons": [{"id": "c", "kind": "cart", "discount": {"fixed": 1000}}],
            "events": [{"id": "d", "name": "D", "starts_at": "+1h", "ends_at": "+2h", "stock": 5, "hold": "30s",
                        "price": 100}]}"#;
        let f = check_file(json, Path::new("c.json"), now()).unwrap();
        assert_eq!(f.campaign.events[0].ends_at, second + Duration::hours(2));
        assert!(f.relative.contains(&"events[0].starts_at".to_string()));
    }

    #[test]
    fn bad_events_are_reported_with_their_line_and_field() {
        let head = format!("id = \"x\"\nname = \"X\"\nstarts_at = \"now\"\nends_at = \"+30d\"\n{BODY}");
        let at_line = |text: &str| format!("{:#}", check(text, Path::new("c.toml"), now()).unwrap_err());
        let bad_hold = format!("{head}{}", EVENT.replace("\"10m\"", "\"ten minutes\""));
        let err = at_line(&bad_hold);
        assert!(err.contains("c.toml:16:") && err.contains("events[0].hold"), "{err}");
        assert!(err.contains("hint: a duration like"), "{err}");
        let backwards = format!("{head}{}", EVENT.replace("\"+3h\"", "\"+30m\""));
        let err = at_line(&backwards);
        assert!(err.contains("events[0].ends_at") && err.contains("is not after starts_at"), "{err}");
        assert!(err.contains("c.toml:14:1:"), "the line of the event's ends_at: {err}");
        let twice = format!("{head}{EVENT}{EVENT}");
        assert!(at_line(&twice).contains("events[1].id: `drop` is defined twice"));
        let no_stock = format!("{head}{}", EVENT.replace("stock = 100", "stock = 0"));
        assert!(at_line(&no_stock).contains("events[0].stock"));
    }
}
