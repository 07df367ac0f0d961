//! Campaign files: TOML (`.toml`) or JSON (`.json`), parsed and validated with every
//! problem reported at once.
//!
//! The campaign's `starts_at` and `ends_at` may be relative to the moment the file is
//! loaded (deploy or validate): `"now"`, `"+30d"`, `"now+12h"`, `"-1d"` (units `s`, `m`,
//! `h`, `d`, `w`), so an example or a test campaign never goes stale. They are resolved
//! once, and the deployed campaign holds the absolute instants.

use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::campaign::CampaignSpec;

pub fn load(path: &Path, now: DateTime<Utc>) -> anyhow::Result<Campaign> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text, path, now)
}

pub fn parse(text: &str, path: &Path, now: DateTime<Utc>) -> anyhow::Result<Campaign> {
    let spec: CampaignSpec = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&resolve_toml(text, now, path)?)
            .map_err(|e| anyhow::anyhow!("{} is not a valid campaign: {e}", path.display()))?,
        Some("json") => {
            let mut v: serde_json::Value =
                serde_json::from_str(text).with_context(|| format!("{} is not a valid campaign", path.display()))?;
            for field in WINDOW {
                if let Some(serde_json::Value::String(t)) = v.get_mut(field)
                    && let Some(at) = relative(t, now)
                {
                    *t = at.with_context(|| format!("{}: {field}", path.display()))?.to_rfc3339();
                }
            }
            serde_json::from_value(v).with_context(|| format!("{} is not a valid campaign", path.display()))?
        }
        _ => bail!("{}: a campaign file ends in .toml or .json", path.display()),
    };
    Campaign::new(spec).map_err(|errs| {
        let lines: Vec<String> = errs.0.iter().map(|e| format!("  - {e}")).collect();
        anyhow::anyhow!("{} is not a valid campaign:\n{}", path.display(), lines.join("\n"))
    })
}

/// The campaign's own window, the fields that may be relative.
const WINDOW: [&str; 2] = ["starts_at", "ends_at"];

/// The TOML text with a relative `starts_at` / `ends_at` of the top-level table (before the
/// first `[section]`) replaced by its instant, line for line, so every other message keeps
/// its line and column.
fn resolve_toml(text: &str, now: DateTime<Utc>, path: &Path) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut top = true;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        top &= !trimmed.starts_with('[');
        let assignment = trimmed.split_once('=').map(|(k, v)| (k.trim(), v.trim()));
        match assignment {
            Some((key, value)) if top && WINDOW.contains(&key) => {
                let quoted = value.split('#').next().unwrap_or_default().trim();
                let literal = quoted.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                match literal.and_then(|t| relative(t, now)) {
                    Some(at) => {
                        let at = at.with_context(|| format!("{}:{}: {key}", path.display(), n + 1))?;
                        let ending = if line.ends_with('\n') { "\n" } else { "" };
                        out.push_str(&format!("{key} = \"{}\"{ending}", at.to_rfc3339()));
                    }
                    None => out.push_str(line),
                }
            }
            _ => out.push_str(line),
        }
    }
    Ok(out)
}

/// `Some` when `t` is a relative time (`now`, `+30d`, `now-1h`, …), with its instant or why
/// it is not one; `None` for anything else (an RFC 3339 instant, checked later).
fn relative(t: &str, now: DateTime<Utc>) -> Option<anyhow::Result<DateTime<Utc>>> {
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
    let parse = || -> anyhow::Result<DateTime<Utc>> {
        let unit = amount.chars().last().unwrap_or(' ');
        let n: i64 = amount[..amount.len().saturating_sub(1)]
            .parse()
            .map_err(|_| anyhow::anyhow!("`{t}` is not a relative time like \"+30d\" (units s, m, h, d, w)"))?;
        let d = match unit {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            _ => None,
        }
        .ok_or_else(|| anyhow::anyhow!("`{t}` is not a relative time like \"+30d\" (units s, m, h, d, w)"))?;
        now.checked_add_signed(d * sign).ok_or_else(|| anyhow::anyhow!("`{t}` is out of range"))
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
        let c = parse(&toml, Path::new("c.toml"), now()).unwrap();
        let second = now().trunc_subsecs(0);
        assert_eq!(c.starts_at, second, "whole seconds: an event stamped in this second is inside");
        assert_eq!(c.ends_at, second + Duration::days(30));
        let json = r#"{"id": "x", "name": "X", "currency": "KRW", "starts_at": "now-1h", "ends_at": "+2w",
            "coupons": [{"id": "c", "kind": "cart", "discount": {"fixed": 1000}}]}"#;
        let c = parse(json, Path::new("c.json"), now()).unwrap();
        assert_eq!((c.starts_at, c.ends_at), (second - Duration::hours(1), second + Duration::weeks(2)));
        // Absolute instants stay as written; a bad relative time names its line.
        let abs = format!("id = \"x\"\nname = \"X\"\nstarts_at = \"2031-01-01T00:00:00Z\"\nends_at = \"+1d\"\n{BODY}");
        assert_eq!(
            parse(&abs, Path::new("c.toml"), now()).unwrap().starts_at,
            "2031-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let bad = format!("id = \"x\"\nname = \"X\"\nstarts_at = \"now\"\nends_at = \"+3y\"\n{BODY}");
        let err = format!("{:#}", parse(&bad, Path::new("c.toml"), now()).unwrap_err());
        assert!(err.contains("c.toml:4: ends_at") && err.contains("+3y"), "{err}");
        // Only the campaign's own window: a section's key of the same name is left alone.
        let nested = format!(
            "id = \"x\"\nname = \"X\"\nstarts_at = \"now\"\nends_at = \"+1d\"\n{BODY}[[coupons]]\nends_at = \"+1d\"\n"
        );
        assert!(resolve_toml(&nested, now(), Path::new("c.toml")).unwrap().ends_with("ends_at = \"+1d\"\n"));
    }
}
