//! Incident state on the local disk: `<state-dir>/incidents/<id>/`
//!
//! ```text
//! incident.json      id and start time (stable across runs: `${incident.started_at}`)
//! lock               flock held by the one process working on the incident
//! journal.jsonl      intent/outcome of every mutation (resume, recover)
//! audit.jsonl        hash-chained trail of everything observed and done
//! audit.jsonl.head   last sequence number and hash of the trail
//! ```

pub mod audit;
pub mod event;
pub mod journal;
pub mod lock;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use audit::AuditLog;
pub use event::AuditEvent;
pub use journal::{Journal, JournalEvent, JournalRecord};
pub use lock::{Holder, IncidentLock};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("incident state I/O failed on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line} is damaged ({detail})")]
    Corrupt {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("incident {incident} is being worked on by another firebreak process{}", .holder.as_ref().map(|h| format!(": {h}")).unwrap_or_default())]
    Locked {
        incident: String,
        holder: Option<Box<Holder>>,
    },
    #[error("invalid incident id `{0}`")]
    BadIncidentId(String),
}

impl StateError {
    pub fn hint(&self) -> String {
        match self {
            StateError::Io { .. } => "check that the state directory (--state-dir) is writable and the disk is not full".into(),
            StateError::Corrupt { .. } => "the incident state was edited or damaged; do not edit it by hand. Keep a copy for the investigation and use a new --incident id, or --state-dir to start afresh".into(),
            StateError::Locked { .. } => "wait for that run to finish (it releases the lock when it exits, even if it crashes), then run again: the journal makes the second run resume, not repeat".into(),
            StateError::BadIncidentId(_) => "use 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit (e.g. INC-2026-0042)".into(),
        }
    }
}

/// An incident id, safe to use as a directory name.
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentMeta {
    pub id: String,
    pub started_at: String,
}

pub fn incident_dir(state_dir: &Path, id: &IncidentId) -> PathBuf {
    state_dir.join("incidents").join(id.as_str())
}

/// An incident opened for work: locked, journal and trail open.
#[derive(Debug)]
pub struct Incident {
    pub id: IncidentId,
    pub dir: PathBuf,
    pub meta: IncidentMeta,
    pub journal: Journal,
    pub audit: AuditLog,
    _lock: IncidentLock,
}

impl Incident {
    /// Creates or reopens an incident and takes its lock.
    pub fn open(
        state_dir: &Path,
        id: &IncidentId,
        run: &str,
        command: &str,
    ) -> Result<Self, StateError> {
        let dir = incident_dir(state_dir, id);
        std::fs::create_dir_all(&dir).map_err(|source| StateError::Io {
            path: dir.clone(),
            source,
        })?;
        let lock = lock::acquire(&dir.join("lock"), id.as_str(), command)?;
        let meta_path = dir.join("incident.json");
        let meta = match std::fs::read(&meta_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                path: meta_path.clone(),
                line: 1,
                detail: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let meta = IncidentMeta {
                    id: id.to_string(),
                    started_at: crate::time::now_rfc3339_seconds(),
                };
                let json = serde_json::to_vec_pretty(&meta).map_err(|e| StateError::Io {
                    path: meta_path.clone(),
                    source: std::io::Error::other(e),
                })?;
                let tmp = meta_path.with_extension("json.tmp");
                std::fs::write(&tmp, json)
                    .and_then(|_| std::fs::rename(&tmp, &meta_path))
                    .map_err(|source| StateError::Io {
                        path: meta_path.clone(),
                        source,
                    })?;
                meta
            }
            Err(source) => {
                return Err(StateError::Io {
                    path: meta_path,
                    source,
                })
            }
        };
        let journal = Journal::open(&dir.join("journal.jsonl"))?;
        let audit = AuditLog::open(&dir.join("audit.jsonl"), id.as_str(), run)?;
        Ok(Self {
            id: id.clone(),
            dir,
            meta,
            journal,
            audit,
            _lock: lock,
        })
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
