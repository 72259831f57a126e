//! The Lambda responder: the same respond path as `firebreak respond` and
//! `watch`, for the events Lambda hands a function (an SQS batch from an
//! event source mapping, or one EventBridge event), configured from
//! environment variables. `src/bin/firebreak-lambda.rs` runs it under
//! `lambda_runtime`; everything here is testable in-process.

pub mod config;
pub mod handler;

pub use config::{Config, ConfigError};
pub use handler::{Handler, HandlerError, StartError, RECORD_BUDGET};
