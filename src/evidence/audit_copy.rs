//! A copy of the incident's audit trail in the forensic bucket, as the
//! trail itself records it: written by the engine at the end of a run,
//! checked by `evidence verify`.

use serde::{Deserialize, Serialize};

use crate::state::AuditEvent;

/// The audit event that records a copy.
pub const AUDIT_COPY_EVENT: &str = AuditEvent::EvidenceAuditCopy.as_str();

/// Where an audit trail copy went, as recorded in the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCopy {
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub size: u64,
    pub lines: usize,
}
