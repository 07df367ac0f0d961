//! Lambda handlers and the AWS/RabbitMQ adapters of the domain's ports. The handlers are
//! generic over the ports, so the local runtime calls them in-process on embedded adapters.

pub mod api;
pub mod auth;
pub mod campaigns;
pub mod catalog;
pub mod claims;
#[cfg(feature = "lambda")]
pub mod config;
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod edge_kv;
#[cfg(feature = "lambda")]
pub mod entry;
pub mod handlers;
pub mod issuer;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
pub mod retry;
pub mod sell_out;
pub mod system;
pub mod wallet;
