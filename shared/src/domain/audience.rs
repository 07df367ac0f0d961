//! The audience of campaign email: shoppers with an address, their consent and the
//! attributes a campaign's segment filters on. Imported from CSV (`promoctl audience
//! import`); a row is parsed here, so every runtime refuses the same rows the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::address::EmailAddress;
use crate::domain::ids::UserId;

/// One shopper of the audience.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: UserId,
    pub email: EmailAddress,
    /// Consent to campaign email; a member who has not opted in is never mailed.
    pub opted_in: bool,
    /// Any other columns, by name (segments filter on them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// The columns of an audience file, checked once: `email`, `user_id` and `opted_in` are
/// required; every other column is an attribute named by lower-case letters, digits and `_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    columns: Vec<String>,
}

impl Header {
    pub fn parse(columns: &[String]) -> Result<Header, Vec<String>> {
        let mut problems = Vec::new();
        let columns: Vec<String> = columns.iter().map(|c| c.trim().to_string()).collect();
        for required in ["email", "user_id", "opted_in"] {
            if !columns.iter().any(|c| c == required) {
                problems.push(format!("the header has no `{required}` column"));
            }
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                problems.push(format!("column `{c}` appears twice"));
            }
            let valid = !c.is_empty()
                && c.len() <= 64
                && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                problems.push(format!("column `{c}` is not a name of lower-case letters, digits and `_`"));
            }
        }
        if problems.is_empty() { Ok(Header { columns }) } else { Err(problems) }
    }

    /// The member of one row, or what is wrong with it (the address masked).
    pub fn member(&self, row: &[String]) -> Result<Member, String> {
        if row.len() != self.columns.len() {
            return Err(format!("{} fields where the header has {}", row.len(), self.columns.len()));
        }
        let (mut user_id, mut email, mut opted_in) = (None, None, None);
        let mut attributes = BTreeMap::new();
        for (name, value) in self.columns.iter().zip(row) {
            let value = value.trim();
            match name.as_str() {
                "user_id" => user_id = Some(UserId::parse(value).map_err(|e| format!("user_id: {}", e.message))?),
                "email" => email = Some(EmailAddress::parse(value).map_err(|e| e.message)?),
                "opted_in" => opted_in = Some(consent(value)?),
                _ => {
                    // A value may go into a subject (a header): one line, no control character.
                    if crate::domain::address::has_control(value) {
                        return Err(format!(
                            "{name}: the value contains a line break or a control character; an attribute is one \
                             line (it may go into an email's subject)"
                        ));
                    }
                    attributes.insert(name.clone(), value.to_string());
                }
            }
        }
        match (user_id, email, opted_in) {
            (Some(user_id), Some(email), Some(opted_in)) => Ok(Member { user_id, email, opted_in, attributes }),
            _ => Err("a required field is missing".into()),
        }
    }
}

/// `opted_in`: true/yes/1 or false/no/0 (any case); anything else is refused, never guessed.
fn consent(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Ok(true),
        "false" | "no" | "0" | "n" => Ok(false),
        other => Err(format!("opted_in: `{other}` is not true/false (yes/no, 1/0)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rows_become_members_and_bad_rows_say_why() {
        let h = Header::parse(&strings(&["email", "user_id", "tier", "opted_in"])).unwrap();
        let m = h.member(&strings(&["jane@example.com", "u-1", "gold", "yes"])).unwrap();
        assert_eq!((m.user_id.as_str(), m.opted_in, m.attributes["tier"].as_str()), ("u-1", true, "gold"));
        let bad_email = h.member(&strings(&["jane.example.com", "u-2", "gold", "yes"])).unwrap_err();
        assert!(bad_email.contains("not an email address") && !bad_email.contains("jane.example.com"), "{bad_email}");
        assert!(h.member(&strings(&["a@b.co", "u 3", "gold", "yes"])).unwrap_err().starts_with("user_id:"));
        assert!(h.member(&strings(&["a@b.co", "u-4", "gold", "maybe"])).unwrap_err().contains("opted_in"));
        assert!(h.member(&strings(&["a@b.co", "u-5"])).unwrap_err().contains("2 fields where the header has 4"));
    }

    /// (issue 25, item 9) An attribute value with a line break could inject a header into
    /// the subjects it fills: the row is refused, saying which column and why.
    #[test]
    fn attribute_values_with_line_breaks_are_refused() {
        let h = Header::parse(&strings(&["email", "user_id", "first_name", "opted_in"])).unwrap();
        for bad in ["Jane\r\nBcc: all@example.com", "Jane\nX", "Jane\rX", "Ja\u{0}ne"] {
            let err = h.member(&strings(&["a@b.co", "u-1", bad, "yes"])).unwrap_err();
            assert!(err.starts_with("first_name: ") && err.contains("line break"), "{err}");
        }
        let m = h.member(&strings(&["a@b.co", "u-1", "지민", "yes"])).unwrap();
        assert_eq!(m.attributes["first_name"], "지민");
    }

    #[test]
    fn a_header_needs_the_required_columns_once_and_plain_names() {
        let errs = Header::parse(&strings(&["email", "Tier", "email"])).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("no `user_id`")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("no `opted_in`")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("`email` appears twice")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("`Tier`")), "{errs:?}");
    }
}
