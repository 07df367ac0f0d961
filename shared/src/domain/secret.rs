//! Secrets in configuration: a string whose `Debug` and `Display` never show it, so a config
//! struct can derive `Debug` and be logged whole.

use std::fmt;

/// A secret value (an API key, a token, a signing secret). Read it with [`SecretString::expose`]
/// only where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> SecretString {
        SecretString(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `other` in constant time (for tokens a caller presents).
    pub fn matches(&self, other: &str) -> bool {
        use subtle::ConstantTimeEq;
        // `ct_eq` answers false at once for another length: the length is not the secret.
        bool::from(self.0.as_bytes().ct_eq(other.as_bytes()))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shown_and_compared_whole() {
        let s = SecretString::new("sk_live_abc");
        assert_eq!(format!("{s:?} {s}"), "SecretString(***) ***");
        assert!(s.matches("sk_live_abc"));
        assert!(!s.matches("sk_live_abd") && !s.matches("sk_live_ab") && !s.matches(""));
        assert_eq!(s.expose(), "sk_live_abc");
    }
}
