//! Email addresses: parsed once, always masked in logs (`j***@example.com`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::error::ValidationError;

/// A syntactically plausible address. `Display`/`Debug` mask it (`j***@example.com`);
/// use [`EmailAddress::expose`] only where the full address is needed (the mailer).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<EmailAddress, ValidationError> {
        let s = s.trim();
        let err = |why: &str| ValidationError::new("email", format!("{} is not an email address: {why}", mask(s)));
        if s.len() > 254 {
            return Err(err("longer than 254 characters"));
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| err("no @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(err("the part before @ must be 1..=64 characters"));
        }
        if domain.len() < 3 || !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(err("the domain must have a dot inside"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';')) {
            return Err(err("it contains spaces or separators"));
        }
        Ok(EmailAddress(s.to_string()))
    }

    /// The full address.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// `jane@example.com` → `j***@example.com`; anything else → `***`.
pub fn mask(s: &str) -> String {
    match s.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => "***".to_string(),
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        EmailAddress::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Whether `s` holds a line break or another control character (a header injection).
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_mask() {
        let a = EmailAddress::parse("jane.doe@example.com").unwrap();
        assert_eq!(a.to_string(), "j***@example.com");
        assert_eq!(format!("{a:?}"), "EmailAddress(j***@example.com)");
        assert_eq!(a.expose(), "jane.doe@example.com");
        for bad in ["", "jane", "@example.com", "jane@", "jane@localhost", "ja ne@example.com", "a@b.c>"] {
            assert!(EmailAddress::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn errors_do_not_leak_the_address() {
        let e = EmailAddress::parse("secret.person@nodot").unwrap_err();
        assert!(!e.message.contains("secret.person"), "{}", e.message);
    }
}
