//! What changes between two versions of a campaign, one line per difference, as `campaign
//! diff` prints it and a deploy records it.
//!
//! The campaigns are compared as their specs' JSON: objects field by field, and lists of
//! rules by their `id` (a rule moved in the file is no change; one added, removed or edited
//! is named by its id), so a line reads `coupons[welcome].discount.percent: 10 → 15`.

use serde_json::Value;

use crate::domain::campaign::Campaign;

/// The differences from `old` (none: not deployed yet) to `new`; empty when they are equal.
pub fn diff(old: Option<&Campaign>, new: &Campaign) -> Vec<String> {
    let new_json = serde_json::to_value(new.spec()).unwrap_or(Value::Null);
    let Some(old) = old else {
        return vec![format!("campaign `{}`: new", new.id)];
    };
    let old_json = serde_json::to_value(old.spec()).unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk("", &old_json, &new_json, &mut out);
    out
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let at = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(&at, x, y, out),
                    (None, Some(y)) => out.push(format!("{at}: added {}", short(y))),
                    (Some(x), None) => out.push(format!("{at}: removed (was {})", short(x))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if by_id(a).is_some() && by_id(b).is_some() => {
            let (a, b) = (by_id(a).unwrap_or_default(), by_id(b).unwrap_or_default());
            for (id, x) in &a {
                match b.iter().find(|(other, _)| other == id) {
                    Some((_, y)) => walk(&format!("{path}[{id}]"), x, y, out),
                    None => out.push(format!("{path}[{id}]: removed")),
                }
            }
            for (id, y) in &b {
                if !a.iter().any(|(other, _)| other == id) {
                    out.push(format!("{path}[{id}]: added {}", short(y)));
                }
            }
        }
        (x, y) if x != y => out.push(format!("{path}: {} → {}", short(x), short(y))),
        _ => {}
    }
}

/// The elements of a list keyed by their `id`, when every element has one.
fn by_id(list: &[Value]) -> Option<Vec<(String, &Value)>> {
    list.iter().map(|v| v.get("id").and_then(Value::as_str).map(|id| (id.to_string(), v))).collect()
}

/// A value as one short line.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 { format!("{}…", s.chars().take(119).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use crate::domain::campaign::CampaignSpec;

    fn campaign(json: Value) -> Campaign {
        Campaign::new(serde_json::from_value::<CampaignSpec>(json).unwrap()).unwrap()
    }

    fn base() -> Value {
        serde_json::json!({
            "id": "bf", "name": "Black Friday", "currency": "KRW",
            "starts_at": "2031-01-01T00:00:00Z", "ends_at": "2031-02-01T00:00:00Z",
            "coupons": [
                {"id": "a", "kind": "cart", "discount": {"fixed": 1000}},
                {"id": "b", "kind": "cart", "discount": {"percent": 10}}
            ],
            "claim": {"coupon": "a", "stock": 100}
        })
    }

    #[test]
    fn equal_campaigns_have_no_differences_and_reordered_rules_are_equal() {
        assert!(diff(Some(&campaign(base())), &campaign(base())).is_empty());
        let mut reordered = base();
        reordered["coupons"].as_array_mut().unwrap().reverse();
        assert!(diff(Some(&campaign(base())), &campaign(reordered)).is_empty());
        // The pause is operational state, not a change of the file.
        assert!(diff(Some(&campaign(base()).with_paused(true)), &campaign(base())).is_empty());
    }

    #[test]
    fn each_difference_is_one_line_named_by_path_and_rule_id() {
        let mut new = base();
        new["ends_at"] = "2031-03-01T00:00:00Z".into();
        new["claim"]["stock"] = 150.into();
        new["coupons"][1]["discount"]["percent"] = 15.into();
        new["coupons"].as_array_mut().unwrap().remove(0);
        new["coupons"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"id": "c", "kind": "cart", "discount": {"fixed": 500}}));
        new["claim"]["coupon"] = "c".into();
        let mut lines = diff(Some(&campaign(base())), &campaign(new));
        let added = lines.remove(4);
        assert!(added.starts_with("coupons[c]: added {") && added.contains("\"fixed\":500"), "{added}");
        assert_eq!(
            lines,
            vec![
                "claim.coupon: \"a\" → \"c\"",
                "claim.stock: 100 → 150",
                "coupons[a]: removed",
                "coupons[b].discount.percent: 10 → 15",
                "ends_at: \"2031-02-01T00:00:00Z\" → \"2031-03-01T00:00:00Z\"",
            ],
            "{lines:#?}"
        );
        assert_eq!(diff(None, &campaign(base())), vec!["campaign `bf`: new"]);
    }
}
