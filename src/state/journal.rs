//! The per-incident journal: what was about to change and what did.
//!
//! Every mutation is bracketed by two records, each written and fsync'd
//! before the process moves on:
//!   1. `intent` (with the prior state) *before* the AWS call, so a crash
//!      right after the call still knows what was there before;
//!   2. `applied` or `failed` after it (nothing when the outcome is
//!      unknown, e.g. a timeout: the intent then stays in doubt).
//!
//! An `intent` without an outcome is "in doubt": the next run re-observes
//! the resource and either records it as applied (the state already is the
//! `after`) or applies it then. Nothing is ever applied twice.
//!
//! A crash can tear the last record; the backend drops it on open (it can
//! only be a record whose write never completed, so its effect is
//! re-observed). Which bytes go where is the backend's business
//! (`store.rs`); this file is the same for every backend.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{IncidentBackend, LogKind, StateError};
use crate::plan::Change;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalEvent {
    Intent,
    Applied,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    pub seq: u64,
    pub time: String,
    pub run: String,
    pub event: JournalEvent,
    pub step: String,
    pub action: String,
    pub change: Change,
    /// For `applied`: true when the change was found already in place by
    /// re-observation after an interrupted run (no call was made).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed_by_observation: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An incident's journal as the steps read it: each record shared, so a
/// step holding the history costs an append a list of pointers.
pub type History = [Arc<JournalRecord>];

#[derive(Debug)]
pub struct Journal {
    backend: Arc<dyn IncidentBackend>,
    /// Every record so far, read once on open: resume and recover consult
    /// the whole history. Shared with the steps that read it
    /// (`snapshot`): a step's context holds the history through its calls,
    /// and copying a thousand targets' records for every step made a large
    /// run spend its time copying (issue 15); an append copies only while
    /// a snapshot is held.
    records: Arc<Vec<Arc<JournalRecord>>>,
    /// Indexes in `records` of the intents with no outcome yet, oldest
    /// first: kept as records are appended, because every step asks and
    /// scanning a thousand targets' history for each made a large run
    /// quadratic (issue 15).
    open: Vec<usize>,
    /// Bytes cut from a torn last record on open (reported in the audit trail).
    pub torn_bytes: usize,
}

impl Journal {
    pub(crate) fn open(backend: Arc<dyn IncidentBackend>) -> Result<Self, StateError> {
        let contents = backend.read_log(LogKind::Journal)?;
        let mut records = Vec::with_capacity(contents.records.len());
        for (i, bytes) in contents.records.iter().enumerate() {
            // A damaged record that is not the last was not torn by a crash:
            // guessing past it could repeat or lose a change, so stop.
            let r = serde_json::from_slice::<JournalRecord>(bytes).map_err(|e| {
                StateError::Corrupt {
                    at: backend.log_address(LogKind::Journal),
                    line: i + 1,
                    detail: e.to_string(),
                }
            })?;
            records.push(r);
        }
        let mut journal = Self {
            backend,
            records: Arc::new(Vec::new()),
            open: Vec::new(),
            torn_bytes: contents.torn_bytes,
        };
        for r in records {
            journal.push(r);
        }
        Ok(journal)
    }

    pub fn records(&self) -> &History {
        &self.records
    }

    /// The history as it is now, without copying it. (An append while it
    /// is held copies the list of pointers, never the records.)
    pub fn snapshot(&self) -> Arc<Vec<Arc<JournalRecord>>> {
        self.records.clone()
    }

    pub fn next_seq(&self) -> u64 {
        self.records.last().map_or(1, |r| r.seq + 1)
    }

    /// Appends one record; it is durable when this returns (the backend's
    /// guarantee 2), so the caller may then make the call it announces.
    /// A [`StateError::Conflict`] means another writer took this sequence
    /// number: the incident is no longer ours, and nothing may be called.
    pub fn append(&mut self, mut record: JournalRecord) -> Result<(), StateError> {
        record.seq = self.next_seq();
        let bytes = serde_json::to_vec(&record).map_err(|e| StateError::Io {
            at: self.backend.log_address(LogKind::Journal),
            source: std::io::Error::other(e),
        })?;
        self.backend.append(LogKind::Journal, record.seq, &bytes)?;
        self.push(record);
        Ok(())
    }

    /// Adds a record read or written, keeping `open`: an outcome settles
    /// every earlier intent of its step with the same intent.
    fn push(&mut self, record: JournalRecord) {
        let records = Arc::make_mut(&mut self.records);
        if record.event == JournalEvent::Intent {
            self.open.push(records.len());
        } else {
            self.open.retain(|&i| {
                let intent = &records[i];
                !(intent.step == record.step && intent.change.same_intent(&record.change))
            });
        }
        records.push(Arc::new(record));
    }

    /// Intents with no outcome yet (the previous run stopped in between).
    pub fn in_doubt(&self) -> Vec<&JournalRecord> {
        self.open.iter().map(|&i| &*self.records[i]).collect()
    }
}
