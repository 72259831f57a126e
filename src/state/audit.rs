//! The tamper-evident audit trail.
//!
//! One JSON object per record. Each carries the SHA-256 of the exact bytes
//! of the record before it (`prev`; 64 zeros for the first) and a sequence
//! number, so an edited, deleted or reordered record breaks the chain at a
//! place `verify` can name. The chain alone cannot see records removed
//! from the *end*, so a small head (`{"seq", "sha256"}` of the last record)
//! is replaced after every append.
//!
//! Records are durable as they are written (the backend's guarantee 2):
//! the trail must survive a crash at least as well as the journal it
//! accompanies. The chain and the head logic are here, the same for every
//! backend; where the bytes go is the backend's business (`store.rs`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{AuditEvent, IncidentBackend, LogKind, StateError};
use crate::aws::Caller;

pub use super::verify::{verify, Broken, VerifyReport};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub time: String,
    pub incident: String,
    pub run: String,
    pub caller: Option<Caller>,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub data: Value,
    pub prev: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub sha256: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug)]
pub struct AuditLog {
    backend: Arc<dyn IncidentBackend>,
    last_hash: String,
    next_seq: u64,
    incident: String,
    pub run: String,
    pub caller: Option<Caller>,
    /// Bytes of a torn last record cut on open (recorded as an event).
    pub torn_bytes: usize,
}

impl AuditLog {
    pub(crate) fn open(
        backend: Arc<dyn IncidentBackend>,
        incident: &str,
        run: &str,
    ) -> Result<Self, StateError> {
        let contents = backend.read_log(LogKind::Audit)?;
        // Only the last record is parsed: appending needs its hash and its
        // number; checking the whole chain is `verify`'s job.
        let (last_hash, next_seq) = match contents.records.last().filter(|l| !l.is_empty()) {
            Some(last) => {
                let rec: AuditRecord =
                    serde_json::from_slice(last).map_err(|e| StateError::Corrupt {
                        at: backend.log_address(LogKind::Audit),
                        line: contents.records.len(),
                        detail: e.to_string(),
                    })?;
                (sha256_hex(last), rec.seq + 1)
            }
            None => (GENESIS.to_string(), 1),
        };
        settle_head(&*backend, &contents.records, next_seq - 1, &last_hash)?;
        Ok(Self {
            backend,
            last_hash,
            next_seq,
            incident: incident.to_string(),
            run: run.to_string(),
            caller: None,
            torn_bytes: contents.torn_bytes,
        })
    }

    /// Appends one event, then moves the head. The event is durable when
    /// this returns if it is `applying` (an AWS call follows), otherwise at
    /// the latest by the next journal record (`IncidentBackend::append`).
    pub fn append(
        &mut self,
        event: &str,
        step: Option<&str>,
        data: Value,
    ) -> Result<(), StateError> {
        let record = AuditRecord {
            seq: self.next_seq,
            time: crate::time::now_rfc3339(),
            incident: self.incident.clone(),
            run: self.run.clone(),
            caller: self.caller.clone(),
            event: event.to_string(),
            step: step.map(str::to_string),
            data,
            prev: self.last_hash.clone(),
        };
        let encode_err = |e: serde_json::Error| StateError::Io {
            at: self.backend.log_address(LogKind::Audit),
            source: std::io::Error::other(e),
        };
        let line = serde_json::to_vec(&record).map_err(encode_err)?;
        self.backend.append(LogKind::Audit, record.seq, &line)?;
        if event == AuditEvent::Applying.as_str() {
            // An AWS call follows: the trail says so on disk first.
            self.backend.sync(LogKind::Audit)?;
        }
        // The record is durable before the head names it: a crash in
        // between leaves the head one behind, which the next open catches
        // up (`settle_head`); the other order could name a missing record.
        self.last_hash = sha256_hex(&line);
        self.next_seq += 1;
        let head = Head {
            seq: record.seq,
            sha256: self.last_hash.clone(),
        };
        let json = serde_json::to_vec(&head).map_err(encode_err)?;
        self.backend.write_head(&json)
    }

    /// The trail as JSON lines (each record's exact bytes and `\n`): what is
    /// copied to the forensic bucket, and what `evidence verify` later
    /// compares that copy with.
    pub fn trail_bytes(&self) -> Result<Vec<u8>, StateError> {
        let contents = self.backend.read_log(LogKind::Audit)?;
        let mut out = Vec::with_capacity(contents.records.iter().map(|r| r.len() + 1).sum());
        for r in &contents.records {
            out.extend_from_slice(r);
            out.push(b'\n');
        }
        Ok(out)
    }
}

/// Brings the head up to date after a crash between a record's write and
/// the head's, but only when the head still names a record of this trail
/// exactly; a trail shorter than its head was cut and is refused.
fn settle_head(
    backend: &dyn IncidentBackend,
    records: &[Vec<u8>],
    last_seq: u64,
    last_hash: &str,
) -> Result<(), StateError> {
    let current = Head {
        seq: last_seq,
        sha256: last_hash.to_string(),
    };
    let write = || {
        let json = serde_json::to_vec(&current).map_err(|e| StateError::Io {
            at: backend.address(),
            source: std::io::Error::other(e),
        })?;
        backend.write_head(&json)
    };
    let head = backend
        .read_head()?
        .and_then(|bytes| serde_json::from_slice::<Head>(&bytes).ok());
    match head {
        None if last_seq > 0 => write(),
        None => Ok(()),
        Some(h) if h == current => Ok(()),
        Some(h) if h.seq > last_seq => Err(StateError::Corrupt {
            at: backend.log_address(LogKind::Audit),
            line: last_seq as usize,
            detail: format!(
                "the trail ends at record {last_seq} but its head records {}: records were removed",
                h.seq
            ),
        }),
        Some(h) => {
            let named = records
                .iter()
                .filter(|l| !l.is_empty())
                .find(|l| serde_json::from_slice::<AuditRecord>(l).is_ok_and(|r| r.seq == h.seq));
            if named.is_some_and(|l| sha256_hex(l) == h.sha256) {
                write()
            } else {
                // Left for `audit verify` to report; never papered over.
                Ok(())
            }
        }
    }
}
