//! Payments: each provider's webhook verification and normalisation (`providers`, `webhooks`),
//! the gateway that accepts a payment once and hands it off, the message handler and the issuer
//! that turns a paid payment into coupons exactly once (and revokes them on refunds), and the
//! items they write.

pub mod gateway;
pub mod handlers;
pub mod issuer;
pub mod items;
pub mod portone;
pub mod providers;
pub mod webhooks;
