//! The use cases, generic over the ports: what the platform does, whichever runtime serves it.

pub mod api;
pub mod audience;
pub mod campaigns;
pub mod catalog;
pub mod claims;
pub mod config;
pub mod edge;
pub mod email_delivery;
pub mod email_feedback;
pub mod email_send;
pub mod email_sender;
pub mod event_scheduler;
pub mod events;
pub mod gateway;
pub mod handlers;
pub mod idempotency;
pub mod issuer;
pub mod prices;
pub mod providers;
pub mod quotes;
pub mod retry;
pub mod sell_out;
pub mod unsubscribe;
pub mod wallet;
pub mod webhooks;
