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
//! A crash can tear the last line; it is cut off on open (it can only be a
//! record whose write never completed, so its effect is re-observed).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StateError;
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
    path: PathBuf,
    file: File,
    records: Vec<JournalRecord>,
    /// Bytes cut from a torn last line on open (reported in the audit trail).
    pub torn_bytes: usize,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let io = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let (records, good_len, torn_bytes) = read(path)?;
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if torn_bytes > 0 {
            file.set_len(good_len).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            records,
            torn_bytes,
        })
    }

    pub fn records(&self) -> &[JournalRecord] {
        &self.records
    }

    pub fn next_seq(&self) -> u64 {
        self.records.last().map_or(1, |r| r.seq + 1)
    }

    /// Appends one record and fsyncs it before returning.
    pub fn append(&mut self, mut record: JournalRecord) -> Result<(), StateError> {
        record.seq = self.next_seq();
        let mut line = serde_json::to_vec(&record).map_err(|e| StateError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.records.push(record);
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

/// Reads all complete records; returns them, the length of the good prefix
/// and the number of torn bytes after it.
fn read(path: &Path) -> Result<(Vec<JournalRecord>, u64, usize), StateError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0, 0)),
        Err(source) => {
            return Err(StateError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut good_len = 0u64;
    let mut line_no = 0;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| StateError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            return Ok((records, good_len, 0));
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            // The write of this record never completed.
            return Ok((records, good_len, n));
        }
        match serde_json::from_slice::<JournalRecord>(&buf[..n - 1]) {
            Ok(r) => records.push(r),
            Err(e) => {
                return Err(StateError::Corrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    detail: e.to_string(),
                })
            }
        }
        good_len += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(event: JournalEvent) -> JournalRecord {
        JournalRecord {
            seq: 0,
            time: "t".into(),
            run: "r".into(),
            event,
            step: "throttle".into(),
            action: "lambda.set_concurrency".into(),
            change: Change::new(
                "arn:f",
                "reserved_concurrency",
                json!(null),
                json!(0),
                "why",
            ),
            confirmed_by_observation: false,
            error: None,
        }
    }

    #[test]
    fn torn_last_record_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        {
            let mut j = Journal::open(&p).unwrap();
            j.append(record(JournalEvent::Intent)).unwrap();
            j.append(record(JournalEvent::Applied)).unwrap();
        }
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"seq\":3,\"time\":\"t\",\"ru").unwrap();
        drop(f);
        let mut j = Journal::open(&p).unwrap();
        assert_eq!(j.records().len(), 2);
        assert!(j.torn_bytes > 0);
        j.append(record(JournalEvent::Intent)).unwrap();
        let j = Journal::open(&p).unwrap();
        assert_eq!(j.records().len(), 3);
        assert_eq!(j.records()[2].seq, 3);
        assert_eq!(j.in_doubt().len(), 1);
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        std::fs::write(&p, "not json\n{}\n").unwrap();
        assert!(matches!(
            Journal::open(&p),
            Err(StateError::Corrupt { line: 1, .. })
        ));
    }
}
