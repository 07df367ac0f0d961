//! Expressions: a [`Cond`] becomes a `ConditionExpression` and a list of [`Update`]s an
//! `UpdateExpression`, with `#n` name and `:v` value placeholders. `Exists` / `NotExists`
//! are `attribute_exists(pk)` / `attribute_not_exists(pk)`, comparisons are
//! `= <> < <= > >=`, combined with `AND` / `OR` / `NOT`; DynamoDB's own rules match
//! [`Cond::eval`]: a missing attribute or one of another type compares false, and `<>` holds
//! when the attribute is missing. Several changes of one attribute, which DynamoDB refuses in
//! one expression, are first folded into one change with the result of applying them in
//! order, as [`Update::apply_all`] does; `pk`/`sk` cannot be changed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use promo_shared::ports::store::{Cond, StoreError, Update};
use serde_json::Value;

use super::attributes::{Attrs, to_attr};

/// Placeholders of one request's expressions.
#[derive(Default)]
pub(super) struct Expr {
    names: HashMap<String, String>,
    by_attr: HashMap<String, String>,
    values: Attrs,
}

/// An attribute that no item has: `REMOVE` of it is an update that changes nothing.
const NOOP_ATTRIBUTE: &str = "promo:noop";

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        if let Some(p) = self.by_attr.get(attr) {
            return p.clone();
        }
        let p = format!("#n{}", self.by_attr.len());
        self.by_attr.insert(attr.to_string(), p.clone());
        self.names.insert(p.clone(), attr.to_string());
        p
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    pub(super) fn cond(&mut self, c: &Cond) -> Result<String, StoreError> {
        let cmp = |e: &mut Expr, a: &str, op: &str, v: AttributeValue| format!("{} {op} {}", e.name(a), e.value(v));
        let n = |i: &i64| AttributeValue::N(i.to_string());
        Ok(match c {
            Cond::Exists => format!("attribute_exists({})", self.name("pk")),
            Cond::NotExists => format!("attribute_not_exists({})", self.name("pk")),
            Cond::AttrExists(a) => format!("attribute_exists({})", self.name(a)),
            Cond::AttrNotExists(a) => format!("attribute_not_exists({})", self.name(a)),
            Cond::Eq(a, v) => cmp(self, a, "=", to_attr(v)?),
            Cond::Ne(a, v) => cmp(self, a, "<>", to_attr(v)?),
            Cond::Lt(a, v) => cmp(self, a, "<", n(v)),
            Cond::Le(a, v) => cmp(self, a, "<=", n(v)),
            Cond::Gt(a, v) => cmp(self, a, ">", n(v)),
            Cond::Ge(a, v) => cmp(self, a, ">=", n(v)),
            Cond::And(cs) => self.join(cs, "AND", true)?,
            Cond::Or(cs) => self.join(cs, "OR", false)?,
            Cond::Not(c) => format!("NOT ({})", self.cond(c)?),
        })
    }

    /// `(a) OP (b) ...`; an empty AND is true and an empty OR false, as in [`Cond::eval`].
    fn join(&mut self, cs: &[Cond], op: &str, empty: bool) -> Result<String, StoreError> {
        if cs.is_empty() {
            let pk = self.name("pk");
            let (a, b) = (format!("attribute_exists({pk})"), format!("attribute_not_exists({pk})"));
            return Ok(if empty { format!("({a} OR {b})") } else { format!("({a} AND {b})") });
        }
        let parts = cs.iter().map(|c| Ok(format!("({})", self.cond(c)?))).collect::<Result<Vec<_>, StoreError>>()?;
        Ok(parts.join(&format!(" {op} ")))
    }

    /// A query's `KeyConditionExpression`: the partition, and `begins_with` on the sort key
    /// for a non-empty prefix.
    pub(super) fn key_condition(&mut self, pk: &str, sk_prefix: Option<&str>) -> String {
        let mut out = format!("{} = {}", self.name("pk"), self.value(AttributeValue::S(pk.to_string())));
        if let Some(prefix) = sk_prefix.filter(|p| !p.is_empty()) {
            let (n, v) = (self.name("sk"), self.value(AttributeValue::S(prefix.to_string())));
            out.push_str(&format!(" AND begins_with({n}, {v})"));
        }
        out
    }

    /// `SET ... ADD ... REMOVE ...` for the folded updates.
    pub(super) fn update(&mut self, updates: &[Update]) -> Result<String, StoreError> {
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for (attr, change) in fold_updates(updates)? {
            let n = self.name(&attr);
            match change {
                Change::Set(v) => {
                    let v = self.value(to_attr(&v)?);
                    set.push(format!("{n} = {v}"));
                }
                Change::Add(i) => {
                    let v = self.value(AttributeValue::N(i.to_string()));
                    add.push(format!("{n} {v}"));
                }
                Change::Remove => remove.push(n),
            }
        }
        if set.is_empty() && add.is_empty() && remove.is_empty() {
            remove.push(self.name(NOOP_ATTRIBUTE));
        }
        let mut clauses = Vec::new();
        for (kw, list) in [("SET", set), ("ADD", add), ("REMOVE", remove)] {
            if !list.is_empty() {
                clauses.push(format!("{kw} {}", list.join(", ")));
            }
        }
        Ok(clauses.join(" "))
    }

    pub(super) fn names(&mut self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| std::mem::take(&mut self.names))
    }

    pub(super) fn values(&mut self) -> Option<Attrs> {
        (!self.values.is_empty()).then(|| std::mem::take(&mut self.values))
    }
}

/// The net change of one attribute.
#[derive(Clone, Debug, PartialEq)]
enum Change {
    Set(Value),
    Add(i64),
    Remove,
}

/// Folds the updates into at most one change per attribute (DynamoDB refuses overlapping
/// paths in one expression), in order of first mention, with the effect of applying them
/// one after the other as [`Update::apply_all`] does.
fn fold_updates(updates: &[Update]) -> Result<Vec<(String, Change)>, StoreError> {
    let mut out: Vec<(String, Change)> = Vec::new();
    for u in updates {
        let attr = match u {
            Update::Set(a, _) | Update::Add(a, _) | Update::Remove(a) => a,
        };
        if attr == "pk" || attr == "sk" {
            return Err(StoreError::Invalid(format!("cannot update the key attribute `{attr}`")));
        }
        let overflow = || StoreError::Invalid(format!("`{attr}` would overflow"));
        let prev = out.iter().position(|(a, _)| a == attr);
        let next = match (u, prev.map(|i| &out[i].1)) {
            (Update::Set(_, v), _) => Change::Set(v.clone()),
            (Update::Remove(_), _) => Change::Remove,
            (Update::Add(_, n), None) => Change::Add(*n),
            (Update::Add(_, n), Some(Change::Add(m))) => Change::Add(m.checked_add(*n).ok_or_else(overflow)?),
            (Update::Add(_, n), Some(Change::Remove)) => Change::Set(Value::from(*n)),
            (Update::Add(_, n), Some(Change::Set(Value::Number(x)))) => {
                let x = x.as_i64().ok_or_else(|| StoreError::Invalid(format!("`{attr}` is not an integer")))?;
                Change::Set(Value::from(x.checked_add(*n).ok_or_else(overflow)?))
            }
            (Update::Add(..), Some(Change::Set(_))) => {
                return Err(StoreError::Invalid(format!("cannot ADD to non-number `{attr}`")));
            }
        };
        match prev {
            Some(i) => out[i].1 = next,
            None => out.push((attr.clone(), next)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_use_placeholders() {
        let mut e = Expr::default();
        let c = Cond::Or(vec![
            Cond::NotExists,
            Cond::Lt("expires_at".into(), 10),
            Cond::And(vec![Cond::eq("status", "IN PROGRESS"), Cond::Not(Box::new(Cond::AttrExists("a.b".into())))]),
        ]);
        let s = e.cond(&c).unwrap();
        assert_eq!(s, "(attribute_not_exists(#n0)) OR (#n1 < :v0) OR ((#n2 = :v1) AND (NOT (attribute_exists(#n3))))");
        let names = e.names().unwrap();
        assert_eq!(names["#n0"], "pk");
        assert_eq!(names["#n3"], "a.b");
        let values = e.values().unwrap();
        assert_eq!(values[":v0"], AttributeValue::N("10".into()));
        assert_eq!(values[":v1"], AttributeValue::S("IN PROGRESS".into()));
        let mut e = Expr::default();
        assert_eq!(e.cond(&Cond::And(vec![])).unwrap(), "(attribute_exists(#n0) OR attribute_not_exists(#n0))");
        assert!(e.values().is_none(), "no empty value map is sent");
    }

    #[test]
    fn updates_fold_per_attribute_like_apply_all() {
        let ups = [
            Update::Add("n".into(), 2),
            Update::set("s", "v"),
            Update::Add("n".into(), 3),
            Update::Remove("s".into()),
            Update::set("m", 5),
            Update::Add("m".into(), -1),
            Update::Remove("r".into()),
            Update::Add("r".into(), 4),
        ];
        let folded = fold_updates(&ups).unwrap();
        assert_eq!(
            folded,
            vec![
                ("n".to_string(), Change::Add(5)),
                ("s".to_string(), Change::Remove),
                ("m".to_string(), Change::Set(json!(4))),
                ("r".to_string(), Change::Set(json!(4))),
            ]
        );
        let mut e = Expr::default();
        assert_eq!(e.update(&ups).unwrap(), "SET #n2 = :v1, #n3 = :v2 ADD #n0 :v0 REMOVE #n1");
        assert!(matches!(fold_updates(&[Update::set("sk", "x")]), Err(StoreError::Invalid(_))));
        assert!(matches!(
            fold_updates(&[Update::set("s", "x"), Update::Add("s".into(), 1)]),
            Err(StoreError::Invalid(_))
        ));
        let mut e = Expr::default();
        assert_eq!(e.update(&[]).unwrap(), "REMOVE #n0");
    }
}
