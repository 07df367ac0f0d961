//! The Lambdas and the AWS/RabbitMQ adapters of the core's ports: one binary per function
//! (`src/bin/`, a `main` of a few lines), the glue from each AWS event shape to the core's
//! use cases ([`entry`]), the adapters — DynamoDB ([`dynamodb`]), RabbitMQ ([`rabbitmq`]),
//! the Worker's KV as the price book's publisher ([`edge_kv`]), shoppers' JWTs ([`auth`]),
//! SES v2 ([`ses`]: the bulk mailer, its bounce and complaint events, the account's send rate
//! as a sliding one-second window), the system clock and randomness ([`system`]) — and the configuration the
//! binaries read ([`config`]).

pub mod auth;
#[cfg(feature = "lambda")]
pub mod config;
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod edge_kv;
#[cfg(feature = "lambda")]
pub mod entry;
#[cfg(feature = "lambda")]
pub mod metrics;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
pub mod ses;
#[cfg(feature = "aws")]
pub mod sqs;
pub mod system;
