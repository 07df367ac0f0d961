//! Money: integer minor units with an ISO 4217 currency. Never floats.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::error::ValidationError;

/// An ISO 4217 currency code such as `KRW` or `USD`, with its minor-unit exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses an upper-case ISO 4217 alphabetic code.
    pub fn parse(code: &str) -> Result<Self, ValidationError> {
        iso_currency::Currency::from_code(code)
            .map(Currency)
            .ok_or_else(|| ValidationError::new("currency", format!("`{code}` is not an ISO 4217 currency code")))
    }

    /// The three-letter code.
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point in this currency (KRW: 0, USD: 2).
    pub fn minor_unit_exponent(&self) -> u16 {
        self.0.exponent().unwrap_or(0)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// A non-negative amount in minor units (KRW has none: 52000 is ₩52,000; USD 1999 is $19.99).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Amount(i64);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    /// The largest amount accepted: keeps every sum and product of the engine in i64.
    pub const MAX: i64 = 1_000_000_000_000_000;

    pub fn new(minor: i64) -> Result<Self, ValidationError> {
        if minor < 0 {
            return Err(ValidationError::new("amount", format!("{minor} is negative")));
        }
        if minor > Self::MAX {
            return Err(ValidationError::new("amount", format!("{minor} is larger than {}", Self::MAX)));
        }
        Ok(Amount(minor))
    }

    pub fn minor(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).and_then(|v| Amount::new(v).ok())
    }

    /// `self - other`, floored at zero.
    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount((self.0 - other.0).max(0))
    }

    pub fn checked_mul(self, factor: u32) -> Option<Amount> {
        self.0.checked_mul(i64::from(factor)).and_then(|v| Amount::new(v).ok())
    }
}

impl TryFrom<i64> for Amount {
    type Error = ValidationError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Amount::new(v)
    }
}

impl From<Amount> for i64 {
    fn from(a: Amount) -> i64 {
        a.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An amount together with its currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: Amount,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Self, ValidationError> {
        Ok(Money { amount: Amount::new(minor)?, currency })
    }

    /// Formats for people: `KRW 52000`, `USD 19.99`.
    pub fn display(&self) -> String {
        let exp = u32::from(self.currency.minor_unit_exponent());
        if exp == 0 {
            return format!("{} {}", self.currency, self.amount.0);
        }
        let scale = 10_i64.pow(exp);
        format!("{} {}.{:0width$}", self.currency, self.amount.0 / scale, self.amount.0 % scale, width = exp as usize)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_parse_with_their_exponents() {
        assert_eq!(Currency::parse("KRW").unwrap().minor_unit_exponent(), 0);
        assert_eq!(Currency::parse("USD").unwrap().minor_unit_exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().minor_unit_exponent(), 0);
        assert!(Currency::parse("krw").is_err());
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn amounts_reject_negative_and_huge_values() {
        assert!(Amount::new(-1).is_err());
        assert!(Amount::new(Amount::MAX + 1).is_err());
        assert_eq!(Amount::new(0).unwrap(), Amount::ZERO);
        let a: Result<Amount, _> = serde_json::from_str("-5");
        assert!(a.is_err());
    }

    #[test]
    fn money_displays_in_major_units() {
        let usd = Currency::parse("USD").unwrap();
        let krw = Currency::parse("KRW").unwrap();
        assert_eq!(Money::new(1999, usd).unwrap().to_string(), "USD 19.99");
        assert_eq!(Money::new(5, usd).unwrap().to_string(), "USD 0.05");
        assert_eq!(Money::new(52000, krw).unwrap().to_string(), "KRW 52000");
    }

    #[test]
    fn arithmetic_is_checked() {
        let big = Amount::new(Amount::MAX).unwrap();
        assert!(big.checked_add(Amount::new(1).unwrap()).is_none());
        assert_eq!(Amount::new(3).unwrap().saturating_sub(Amount::new(5).unwrap()), Amount::ZERO);
        assert!(big.checked_mul(2).is_none());
    }
}
