//! Incident state: the journal (resume, recover), the audit trail, the
//! lease that makes one process the incident's only writer, and a few
//! small metadata documents.
//!
//! [`Incident`] is what the rest of firebreak holds: the same for every
//! backend. Where the bytes live is behind [`StateStore`] /
//! [`IncidentBackend`] (`store.rs`, which states what a backend must
//! guarantee); [`LocalStore`] (`local/`) is the directory backend and the
//! only code that knows a file name; [`S3Store`] (`s3/`) is the shared
//! backend (S3 with conditional writes) and the only code that knows a key.
//! Nothing outside this module knows a file name, a key or a layout.

pub mod audit;
pub mod event;
pub mod journal;
mod lease;
pub mod local;
pub mod s3;
pub mod store;
mod verify;

/// The contract of `store.rs` as executable checks. Public (hidden) so that
/// the integration tests run it against the shared store on LocalStack;
/// nothing but tests calls it.
#[doc(hidden)]
pub mod conformance;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use audit::AuditLog;
pub use event::AuditEvent;
pub use journal::{History, Journal, JournalEvent, JournalRecord};
pub use lease::{Holder, Lease};
pub use local::LocalStore;
pub use s3::{LeaseTerms, S3Location, S3Store};
pub use store::{IncidentBackend, LogContents, LogKind, StateStore, Trail};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("incident state I/O failed on {at}: {source}")]
    Io { at: String, source: std::io::Error },
    #[error("{at} line {line} is damaged ({detail})")]
    Corrupt {
        at: String,
        line: usize,
        detail: String,
    },
    #[error("incident {incident} is being worked on by another firebreak process{}", .lease.as_ref().map(|l| format!(": {l}")).unwrap_or_default())]
    Locked {
        incident: String,
        lease: Option<Box<Lease>>,
    },
    /// Another writer took this record's sequence number: this process no
    /// longer holds the incident, whatever it believed.
    #[error(
        "{log} record {seq} of incident {incident} was already written by another writer ({at})"
    )]
    Conflict {
        incident: String,
        log: &'static str,
        seq: u64,
        at: String,
    },
    #[error("the lock on incident {incident} was lost{}", .lease.as_ref().map(|l| format!(": now held by {l}")).unwrap_or_default())]
    LeaseLost {
        incident: String,
        lease: Option<Box<Lease>>,
    },
    #[error("no audit trail at {at}")]
    NoTrail { at: String },
    #[error("invalid incident id `{0}`")]
    BadIncidentId(String),
    #[error("invalid incident metadata name `{0}`")]
    BadMetaName(String),
    /// A request to a shared store (S3) failed: what AWS answered (code and
    /// message) and what to do about it.
    #[error("incident state at {at}: {source}")]
    Store {
        at: String,
        #[source]
        source: Box<crate::aws::AwsError>,
    },
}

impl StateError {
    pub fn hint(&self) -> String {
        match self {
            StateError::Io { .. } => "check that the state directory (--state-dir) is writable and the disk is not full".into(),
            StateError::Corrupt { .. } => "the incident state was edited or damaged; do not edit it by hand. Keep a copy for the investigation and use a new --incident id, or --state-dir to start afresh".into(),
            StateError::Locked { lease, .. } => match lease.as_ref().and_then(|l| l.expires_at.as_ref()) {
                // A shared store's lease: a crashed holder keeps it until it lapses.
                Some(t) => format!("wait for that run to finish (it releases the incident when it exits); if it died, its lease lapses at {t} and the next run takes the incident over: the journal makes it resume, not repeat"),
                None => "wait for that run to finish (it releases the lock when it exits, even if it crashes), then run again: the journal makes the second run resume, not repeat".into(),
            },
            StateError::Conflict { .. } | StateError::LeaseLost { .. } => "another responder took this incident over (this one's lock was lost or not honoured); stop here and let it finish, or run again later: the journal makes a new run resume from what was recorded".into(),
            StateError::NoTrail { .. } => "check --incident and --state-dir, or pass an incident directory or a copy of its trail".into(),
            StateError::BadIncidentId(_) => "use 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit (e.g. INC-2026-0042)".into(),
            StateError::BadMetaName(_) => "a metadata name is 1 to 32 lowercase letters or `_` (a firebreak bug if you see this)".into(),
            StateError::Store { source, .. } => source.hint.clone(),
        }
    }
}

/// An incident id, safe to use as a directory name or a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IncidentId(String);

impl IncidentId {
    pub fn parse(s: &str) -> Result<Self, StateError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(StateError::BadIncidentId(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Metadata `incident`: written once, when the incident is first opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentMeta {
    pub id: String,
    /// Stable across runs: `${incident.started_at}`.
    pub started_at: String,
}

const META_INCIDENT: &str = "incident";

/// An incident opened for work: leased, journal and trail open.
#[derive(Debug)]
pub struct Incident {
    pub id: IncidentId,
    pub meta: IncidentMeta,
    pub journal: Journal,
    pub audit: AuditLog,
    /// Shared with the journal and the trail; the lease goes with the last.
    backend: Arc<dyn IncidentBackend>,
}

impl Incident {
    /// Creates or reopens an incident under a local state directory and
    /// takes its lock (the local backend; see [`Incident::open_in`]).
    pub fn open(
        state_dir: &Path,
        id: &IncidentId,
        run: &str,
        command: &str,
    ) -> Result<Self, StateError> {
        Self::open_in(&LocalStore::new(state_dir), id, run, command)
    }

    /// Creates or reopens an incident in `store` and takes its lease; a
    /// torn last record of either log is cut off (`torn_bytes` says so).
    pub fn open_in(
        store: &dyn StateStore,
        id: &IncidentId,
        run: &str,
        command: &str,
    ) -> Result<Self, StateError> {
        let backend: Arc<dyn IncidentBackend> =
            Arc::from(store.lock(id, Holder::current(command))?);
        // The lease before anything is read: a reader without it could see
        // a record another holder is about to cut as torn.
        let meta = match backend.read_meta(META_INCIDENT)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                at: format!("{} (incident metadata)", backend.address()),
                line: 1,
                detail: e.to_string(),
            })?,
            None => {
                let meta = IncidentMeta {
                    id: id.to_string(),
                    started_at: crate::time::now_rfc3339_seconds(),
                };
                let json = serde_json::to_vec_pretty(&meta).map_err(|e| StateError::Io {
                    at: backend.address(),
                    source: std::io::Error::other(e),
                })?;
                backend.write_meta(META_INCIDENT, &json)?;
                meta
            }
        };
        let journal = Journal::open(backend.clone())?;
        let audit = AuditLog::open(backend.clone(), id.as_str(), run)?;
        Ok(Self {
            id: id.clone(),
            meta,
            journal,
            audit,
            backend,
        })
    }

    /// Where the incident lives, for messages.
    pub fn address(&self) -> String {
        self.backend.address()
    }

    /// Who holds the incident (this process) and until when.
    pub fn lease(&self) -> Lease {
        self.backend.lease()
    }

    /// The heartbeat: keeps a lease that can expire (a shared store's) ours
    /// through a long run; [`StateError::LeaseLost`] when another responder
    /// has taken the incident over. A no-op locally.
    pub fn renew_lease(&self) -> Result<(), StateError> {
        self.backend.renew()
    }

    /// Gives the lease up now (it also goes when the incident is dropped).
    pub fn release(self) -> Result<(), StateError> {
        self.backend.release()
    }

    /// A small named document kept with the incident (JSON), if written.
    pub fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StateError> {
        let Some(bytes) = self.backend.read_meta(name)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                at: format!("{} (metadata `{name}`)", self.backend.address()),
                line: 1,
                detail: e.to_string(),
            })
    }

    /// Replaces a small named document kept with the incident (durable).
    pub fn write_meta<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let json = serde_json::to_vec_pretty(value).map_err(|e| StateError::Io {
            at: self.backend.address(),
            source: std::io::Error::other(e),
        })?;
        self.backend.write_meta(name, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_ids_cannot_escape_the_state_dir() {
        assert!(IncidentId::parse("INC-2026.01_a").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", &"x".repeat(65)] {
            assert!(IncidentId::parse(bad).is_err(), "{bad}");
        }
    }
}
