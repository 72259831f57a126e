//! Known-good snapshots of functions (`firebreak baseline`), their drift,
//! and where they are kept.
//!
//! `capture` reads, only reads, everything recovery needs about a function
//! (`model`); `store` keeps them dated per function in a directory or under
//! an S3 prefix and finds the newest taken before a time; `drift` compares
//! two of them; `key` hashes environment values (never stored) with a
//! per-store key; `packages` keeps the code a deleted version is
//! re-published from.

pub mod capture;
pub mod drift;
pub mod key;
pub mod model;
pub mod packages;
pub mod reader;
pub mod store;

pub use drift::{drift, Drift, DriftKind};
pub use key::EnvKey;
pub use model::Baseline;
pub use store::BaselineStore;

use crate::aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error(transparent)]
    Aws(Box<AwsError>),
    /// The store could not be read or written.
    #[error("baseline store {location}: {message}")]
    Store {
        location: String,
        message: String,
        hint: String,
    },
    #[error("{message}")]
    Input { message: String, hint: String },
}

impl From<AwsError> for BaselineError {
    fn from(e: AwsError) -> Self {
        BaselineError::Aws(Box::new(e))
    }
}

impl BaselineError {
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> Self {
        BaselineError::Input {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn hint(&self) -> &str {
        match self {
            BaselineError::Aws(e) => &e.hint,
            BaselineError::Store { hint, .. } | BaselineError::Input { hint, .. } => hint,
        }
    }
}

impl From<crate::action::ActionError> for BaselineError {
    fn from(e: crate::action::ActionError) -> Self {
        match e {
            crate::action::ActionError::Aws(e) => BaselineError::Aws(e),
            other => BaselineError::input(other.to_string(), other.hint().to_string()),
        }
    }
}
