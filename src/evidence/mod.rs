//! Evidence with chain of custody: artifacts written once to a forensic
//! bucket with S3-verified SHA-256 checksums (`store`), listed in a
//! per-target manifest whose hash goes into the audit trail (`manifest`),
//! and re-checked later by `firebreak evidence verify` (`verify`).

pub mod audit_copy;
pub mod download;
pub mod manifest;
pub mod store;
pub mod verify;

use thiserror::Error;

use crate::aws::AwsError;

#[derive(Debug, Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("s3://{bucket}/{key} already holds different content (sha256 {existing}, ours {ours}); evidence is never overwritten")]
    Different {
        bucket: String,
        key: String,
        existing: String,
        ours: String,
    },
    #[error("S3 did not confirm the SHA-256 of s3://{bucket}/{key} (sent {sent}, S3 reports {reported})")]
    Unconfirmed {
        bucket: String,
        key: String,
        sent: String,
        reported: String,
    },
    #[error("invalid evidence key part `{part}`: {why}")]
    BadKeyPart { part: String, why: &'static str },
    #[error("manifest s3://{bucket}/{key} is not valid: {detail}")]
    BadManifest {
        bucket: String,
        key: String,
        detail: String,
    },
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

impl EvidenceError {
    pub fn hint(&self) -> String {
        match self {
            EvidenceError::Aws(e) => e.hint.clone(),
            EvidenceError::Different { .. } => "someone else wrote this key: keep both, investigate the existing object, and collect into a new incident id if needed".into(),
            EvidenceError::Unconfirmed { .. } => "the upload may be corrupt in transit or the endpoint does not verify checksums; re-run to retry".into(),
            EvidenceError::BadKeyPart { .. } => "use names of letters, digits and - _ . (no `/`, no `..`)".into(),
            EvidenceError::BadManifest { .. } => "the manifest was altered or is not a firebreak manifest: treat the evidence as suspect".into(),
            EvidenceError::State(e) => e.hint(),
        }
    }
}
