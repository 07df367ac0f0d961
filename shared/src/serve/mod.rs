//! The two request handlers every runtime serves: [`edge::Edge`] answers the public routes
//! (webhooks, payment callbacks, quotes, cached price reads, events' public view) and
//! [`api::Api`] the shoppers' routes that need a token (claims, wallet, reservations).
//! Both take a runtime-neutral [`crate::http::Request`] and answer a
//! [`crate::http::Response`]. [`embed`] is the shoppers' pages' script both runtimes serve.

pub mod api;
pub mod edge;
pub mod embed;
