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

#[derive(Debug)]
pub struct Journal {
    backend: Arc<dyn IncidentBackend>,
    /// Every record so far, read once on open: resume and recover consult
    /// the whole history. Shared with the steps that read it
    /// (`snapshot`): a step's context holds the history through its calls,
    /// and copying a thousand targets' records for every step made a large
    /// run spend its time copying (issue 15); an append copies only while
    /// a snapshot is held.
    records: Arc<Vec<JournalRecord>>,
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
        Ok(Self {
            backend,
            records: Arc::new(records),
            torn_bytes: contents.torn_bytes,
        })
    }

    pub fn records(&self) -> &[JournalRecord] {
        &self.records
    }

    /// The history as it is now, without copying it.
    pub fn snapshot(&self) -> Arc<Vec<JournalRecord>> {
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
        Arc::make_mut(&mut self.records).push(record);
        Ok(())
    }

    /// Intents with no outcome yet (the previous run stopped in between).
    pub fn in_doubt(&self) -> Vec<&JournalRecord> {
        self.records
            .iter()
            .filter(|r| r.event == JournalEvent::Intent)
            .filter(|i| {
                !self.records.iter().any(|o| {
                    o.seq > i.seq
                        && o.event != JournalEvent::Intent
                        && o.step == i.step
                        && o.change.same_intent(&i.change)
                })
            })
            .collect()
    }
}
