//! Items as DynamoDB sees them: an [`Item`] (a JSON object) maps attribute by attribute:
//! strings are `S`, integers `N`, booleans `BOOL`, null `NULL`, arrays `L`, objects `M`.
//! The store only holds integers: a float is refused with [`StoreError::Invalid`] on the way
//! in, and a non-integer `N` read back is reported as a corrupt item. Sets (`SS`, `NS`), which
//! this adapter never writes, read back as arrays; binary values are refused.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use promo_shared::ports::store::{Item, Key, StoreError};
use serde_json::{Map, Value};

/// A DynamoDB item as the SDK holds it.
pub type Attrs = HashMap<String, AttributeValue>;

/// A JSON value as a DynamoDB attribute value (integers only).
pub fn to_attr(v: &Value) -> Result<AttributeValue, StoreError> {
    Ok(match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => AttributeValue::N(i.to_string()),
            (None, Some(u)) => AttributeValue::N(u.to_string()),
            _ => return Err(StoreError::Invalid("numbers in items must be integers".into())),
        },
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attr).collect::<Result<_, _>>()?),
        Value::Object(m) => AttributeValue::M(to_attrs(m)?),
    })
}

/// A DynamoDB attribute value as a JSON value.
pub fn from_attr(a: AttributeValue) -> Result<Value, StoreError> {
    Ok(match a {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::N(n) => number(&n)?,
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::L(l) => Value::Array(l.into_iter().map(from_attr).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => Value::Object(from_attrs(m)?),
        AttributeValue::Ss(ss) => Value::Array(ss.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(ns.iter().map(|n| number(n)).collect::<Result<_, _>>()?),
        other => return Err(StoreError::Unavailable(format!("unsupported attribute value in the store: {other:?}"))),
    })
}

fn number(n: &str) -> Result<Value, StoreError> {
    if let Ok(i) = n.parse::<i64>() {
        Ok(Value::from(i))
    } else if let Ok(u) = n.parse::<u64>() {
        Ok(Value::from(u))
    } else {
        Err(StoreError::Unavailable(format!("non-integer number `{n}` in the store")))
    }
}

/// A JSON object (an [`Item`]) as a DynamoDB item.
pub fn to_attrs(item: &Map<String, Value>) -> Result<Attrs, StoreError> {
    item.iter().map(|(k, v)| Ok((k.clone(), to_attr(v)?))).collect()
}

/// A DynamoDB item as a JSON object.
pub fn from_attrs(attrs: Attrs) -> Result<Item, StoreError> {
    attrs.into_iter().map(|(k, v)| Ok((k, from_attr(v)?))).collect()
}

pub(super) fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(key.pk.clone())),
        ("sk".to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

pub(super) fn string_attr(attrs: &Attrs, name: &str) -> Option<String> {
    match attrs.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use serde_json::json;

    #[test]
    fn items_round_trip_with_integer_numbers() {
        let item = json!({
            "pk": "P", "sk": "S", "n": 7, "neg": -42, "big": u64::MAX, "min": i64::MIN, "s": "x", "empty": "",
            "b": true, "f": false, "z": null, "l": [1, "two", [3], {"k": null}], "m": {"k": "v", "n": {"deep": 0}},
        });
        let attrs = to_attrs(item.as_object().unwrap()).unwrap();
        assert_eq!(attrs["n"], AttributeValue::N("7".into()));
        assert_eq!(attrs["neg"], AttributeValue::N("-42".into()));
        assert_eq!(attrs["big"], AttributeValue::N(u64::MAX.to_string()));
        assert_eq!(attrs["s"], AttributeValue::S("x".into()));
        assert_eq!(attrs["b"], AttributeValue::Bool(true));
        assert_eq!(attrs["z"], AttributeValue::Null(true));
        assert!(matches!(&attrs["l"], AttributeValue::L(l) if l.len() == 4));
        assert!(matches!(&attrs["m"], AttributeValue::M(m) if m["k"] == AttributeValue::S("v".into())));
        let back = from_attrs(attrs).unwrap();
        assert_eq!(Value::Object(back.clone()), item);
        assert!(back["n"].is_i64() && back["big"].is_u64(), "numbers come back as JSON integers");
    }

    #[test]
    fn floats_are_refused_and_sets_read_as_arrays() {
        assert!(matches!(to_attr(&json!({"x": [1.5]})), Err(StoreError::Invalid(_))));
        assert!(matches!(from_attr(AttributeValue::N("1.5".into())), Err(StoreError::Unavailable(_))));
        let ss = from_attr(AttributeValue::Ss(vec!["a".into(), "b".into()])).unwrap();
        assert_eq!(ss, json!(["a", "b"]));
        assert_eq!(from_attr(AttributeValue::Ns(vec!["1".into(), "-2".into()])).unwrap(), json!([1, -2]));
    }
}
