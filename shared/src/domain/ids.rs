//! Identifier newtypes, validated on construction ("parse, don't validate").
//!
//! Ids appear in store keys (`USER#<id>`) and URLs, so they are restricted to a
//! conservative alphabet: ASCII letters, digits, `-`, `_`, `.` and `:`; 1..=128 chars; and
//! never `.` or `..`, which URL parsing removes as dot segments (even percent-encoded), so such
//! an id would name another URL (`GET /payments/.` is PortOne's list of payments). This is the
//! one definition of an id: every id that enters the platform (a path, a body, a provider's
//! answer) is parsed through it before it is used.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::error::ValidationError;

/// Checks the shared id alphabet and length.
pub fn check_id(field: &str, s: &str) -> Result<(), ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if s.len() > 128 {
        return Err(ValidationError::new(field, format!("is {} characters long; at most 128", s.len())));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))) {
        return Err(ValidationError::new(
            field,
            format!("contains {c:?}; only letters, digits, '-', '_', '.' and ':' are allowed"),
        ));
    }
    if s == "." || s == ".." {
        return Err(ValidationError::new(field, format!("`{s}` is a URL dot segment, not an id")));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, ValidationError> {
                let s = s.into();
                check_id($field, &s)?;
                Ok($name(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $name::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }
    };
}

id_type!(
    /// A shopper.
    UserId, "user_id"
);
impl UserId {
    /// For logs: the first two characters and a short digest (`u-***#3f2a9c`), so lines of
    /// one shopper can be followed without the id itself in the logs.
    pub fn masked(&self) -> String {
        use sha2::{Digest, Sha256};
        let head: String = self.0.chars().take(2).collect();
        format!("{head}***#{}", hex::encode(&Sha256::digest(self.0.as_bytes())[..3]))
    }
}

id_type!(
    /// A marketing campaign.
    CampaignId, "campaign_id"
);
id_type!(
    /// A coupon template inside a campaign.
    CouponTemplateId, "coupon_id"
);
id_type!(
    /// A payment reward rule inside a campaign.
    RuleId, "rule_id"
);
id_type!(
    /// A payment, as the payment provider names it.
    PaymentId, "payment_id"
);
id_type!(
    /// A shop order.
    OrderId, "order_id"
);
id_type!(
    /// A product.
    ProductId, "product_id"
);
id_type!(
    /// A limited event (a drop, a flash sale with reservations).
    EventId, "event_id"
);
id_type!(
    /// A reservation of a limited event.
    ReservationId, "reservation_id"
);
id_type!(
    /// A coupon or payment promotion in a quote. Ordered bytewise: the pricing tie-break's
    /// "smallest id".
    BenefitId, "id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_conservative_alphabet() {
        assert!(UserId::parse("u-1_a.b:c").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse("a#b").is_err());
        assert!(UserId::parse("x".repeat(129)).is_err());
        assert!(UserId::parse("x".repeat(128)).is_ok());
        for dots in [".", ".."] {
            assert!(PaymentId::parse(dots).is_err(), "{dots} is a dot segment");
        }
        assert!(PaymentId::parse("...").is_ok() && PaymentId::parse("a.b").is_ok() && PaymentId::parse(".a").is_ok());
        let err = PaymentId::parse("pay/1").unwrap_err();
        assert_eq!(err.field, "payment_id");
    }

    #[test]
    fn masked_user_ids_hide_the_id_and_tell_shoppers_apart() {
        let a = UserId::parse("customer-12345").unwrap();
        let m = a.masked();
        assert!(m.starts_with("cu***#") && !m.contains("12345"), "{m}");
        assert_eq!(m, a.masked(), "stable");
        assert_ne!(m, UserId::parse("customer-12346").unwrap().masked());
    }

    #[test]
    fn ids_deserialize_through_parse() {
        assert!(serde_json::from_str::<CampaignId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<CampaignId>("\"not ok\"").is_err());
    }
}
