//! The tamper-evident audit trail.
//!
//! One JSON object per line. Each line carries the SHA-256 of the exact
//! bytes of the line before it (`prev`; 64 zeros for the first) and a
//! sequence number, so an edited, deleted or reordered line breaks the chain
//! at a place `verify` can name. The chain alone cannot see lines removed
//! from the *end*, so a small head file beside the trail (`<trail>.head`)
//! records the last sequence number and hash after every append.
//!
//! Lines are fsync'd as they are written: the trail must survive a crash at
//! least as well as the journal it accompanies.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::StateError;
use crate::aws::Caller;

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

pub fn head_path(trail: &Path) -> PathBuf {
    let mut name = trail.file_name().unwrap_or_default().to_os_string();
    name.push(".head");
    trail.with_file_name(name)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    last_hash: String,
    next_seq: u64,
    incident: String,
    pub run: String,
    pub caller: Option<Caller>,
    /// Bytes of a torn last line cut on open (recorded as an event).
    pub torn_bytes: usize,
}

impl AuditLog {
    pub fn open(path: &Path, incident: &str, run: &str) -> Result<Self, StateError> {
        let io = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        // Only a record whose write never completed can lack its newline.
        let good_len = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let torn_bytes = text.len() - good_len;
        let good = &text[..good_len];
        let (last_hash, next_seq) = match good[..good_len.saturating_sub(1)]
            .rsplit(|b| *b == b'\n')
            .next()
            .filter(|l| !l.is_empty())
        {
            Some(last) => {
                let rec: AuditRecord =
                    serde_json::from_slice(last).map_err(|e| StateError::Corrupt {
                        path: path.to_path_buf(),
                        line: good.iter().filter(|b| **b == b'\n').count(),
                        detail: e.to_string(),
                    })?;
                (sha256_hex(last), rec.seq + 1)
            }
            None => (GENESIS.to_string(), 1),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if torn_bytes > 0 {
            file.set_len(good_len as u64).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        settle_head(path, good, next_seq - 1, &last_hash)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            last_hash,
            next_seq,
            incident: incident.to_string(),
            run: run.to_string(),
            caller: None,
            torn_bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event, fsyncs it, and moves the head.
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
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let line = serde_json::to_vec(&record).map_err(|e| io(std::io::Error::other(e)))?;
        let mut with_nl = line.clone();
        with_nl.push(b'\n');
        self.file.write_all(&with_nl).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.last_hash = sha256_hex(&line);
        self.next_seq += 1;
        let head = Head {
            seq: record.seq,
            sha256: self.last_hash.clone(),
        };
        let head_file = head_path(&self.path);
        let tmp = head_file.with_extension("head.tmp");
        let json = serde_json::to_vec(&head).map_err(|e| io(std::io::Error::other(e)))?;
        std::fs::write(&tmp, json).map_err(io)?;
        std::fs::rename(&tmp, &head_file).map_err(io)
    }
}

/// Brings the head up to date after a crash between a record's fsync and
/// the head's rename, but only when the head still names a record of this
/// trail exactly; a trail shorter than its head was cut and is refused.
fn settle_head(
    path: &Path,
    trail: &[u8],
    last_seq: u64,
    last_hash: &str,
) -> Result<(), StateError> {
    let hp = head_path(path);
    let write = |head: &Head| {
        let json = serde_json::to_vec(head).map_err(std::io::Error::other)?;
        let tmp = hp.with_extension("head.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &hp)
    };
    let io = |source| StateError::Io {
        path: hp.clone(),
        source,
    };
    let current = Head {
        seq: last_seq,
        sha256: last_hash.to_string(),
    };
    let head = match std::fs::read(&hp) {
        Ok(bytes) => serde_json::from_slice::<Head>(&bytes).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    match head {
        None if last_seq > 0 => write(&current).map_err(io),
        None => Ok(()),
        Some(h) if h == current => Ok(()),
        Some(h) if h.seq > last_seq => Err(StateError::Corrupt {
            path: path.to_path_buf(),
            line: last_seq as usize,
            detail: format!(
                "the trail ends at record {last_seq} but its head records {}: records were removed",
                h.seq
            ),
        }),
        Some(h) => {
            let named = trail
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .find(|l| serde_json::from_slice::<AuditRecord>(l).is_ok_and(|r| r.seq == h.seq));
            if named.is_some_and(|l| sha256_hex(l) == h.sha256) {
                write(&current).map_err(io)
            } else {
                // Left for `audit verify` to report; never papered over.
                Ok(())
            }
        }
    }
}

/// The first place a trail stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// 1-based line number in the file.
    pub line: usize,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub path: String,
    pub records: usize,
    pub head_checked: bool,
    pub broken: Option<Broken>,
}

/// Checks the chain, the sequence numbers and the head of a trail.
pub fn verify(path: &Path, require_head: bool) -> Result<VerifyReport, StateError> {
    let bytes = std::fs::read(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut report = VerifyReport {
        path: path.display().to_string(),
        records: 0,
        head_checked: false,
        broken: None,
    };
    let fail = |mut report: VerifyReport, line: usize, problem: String| {
        report.broken = Some(Broken { line, problem });
        Ok(report)
    };
    if bytes.is_empty() {
        return fail(report, 1, "the trail is empty".into());
    }
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let complete = bytes.last() == Some(&b'\n');
    if complete {
        lines.pop();
    }
    let mut prev_hash = GENESIS.to_string();
    let mut expected_seq = 1u64;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if !complete && n == lines.len() {
            return fail(
                report,
                n,
                format!("line {n} is incomplete: the file was truncated in the middle of a record"),
            );
        }
        let rec: AuditRecord = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(_) => {
                return fail(
                    report,
                    n,
                    format!("line {n} is not a valid audit record: it was edited or damaged"),
                )
            }
        };
        if rec.seq > expected_seq {
            let missing = if rec.seq == expected_seq + 1 {
                format!("record {expected_seq} is missing")
            } else {
                format!("records {expected_seq} to {} are missing", rec.seq - 1)
            };
            return fail(
                report,
                n,
                format!(
                    "line {n} has record {} where {expected_seq} belongs: {missing} (deleted)",
                    rec.seq
                ),
            );
        }
        if rec.seq < expected_seq {
            return fail(
                report,
                n,
                format!(
                    "line {n} has record {} after record {}: lines were reordered or duplicated",
                    rec.seq,
                    expected_seq - 1
                ),
            );
        }
        if rec.prev != prev_hash {
            let problem = if n == 1 {
                "line 1 does not start the chain: its `prev` was altered or records before it were removed".to_string()
            } else {
                format!("line {n} does not chain to line {}: line {} was edited (or this line's `prev` was)", n - 1, n - 1)
            };
            return fail(report, n, problem);
        }
        prev_hash = sha256_hex(line);
        expected_seq += 1;
        report.records += 1;
    }
    let hp = head_path(path);
    match std::fs::read(&hp) {
        Ok(h) => {
            report.head_checked = true;
            let last = lines.len();
            match serde_json::from_slice::<Head>(&h) {
                Ok(head) if head.seq == expected_seq - 1 && head.sha256 == prev_hash => {}
                Ok(head) if head.seq > expected_seq - 1 => {
                    return fail(report, last, format!(
                        "the trail ends at record {} but its head records {}: records were removed from the end (truncated)",
                        expected_seq - 1, head.seq
                    ));
                }
                Ok(head) if head.seq == expected_seq - 1 => {
                    return fail(report, last, format!("line {last} (the last record) was edited: its hash does not match the head"));
                }
                Ok(head) => {
                    return fail(report, last, format!(
                        "the trail has records after the head ({} > {}): appended outside firebreak, or the head was replaced",
                        expected_seq - 1, head.seq
                    ));
                }
                Err(_) => {
                    return fail(
                        report,
                        last,
                        format!("the head file {} is damaged", hp.display()),
                    )
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !require_head => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(
                report,
                lines.len(),
                format!(
                "the head file {} is missing, so removal of trailing records cannot be ruled out",
                hp.display()
            ),
            );
        }
        Err(source) => return Err(StateError::Io { path: hp, source }),
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trail(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&p, "INC-1", "run-1").unwrap();
        for i in 0..n {
            log.append("observation", Some("facts"), json!({"i": i}))
                .unwrap();
        }
        (dir, p)
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write(p: &Path, lines: &[String]) {
        std::fs::write(p, lines.join("\n") + "\n").unwrap();
    }

    fn broken_line(p: &Path) -> Option<usize> {
        verify(p, true).unwrap().broken.map(|b| b.line)
    }

    #[test]
    fn an_untouched_trail_verifies_and_reopens_onto_the_chain() {
        let (_d, p) = trail(3);
        assert_eq!(verify(&p, true).unwrap().broken, None);
        let mut log = AuditLog::open(&p, "INC-1", "run-2").unwrap();
        log.append("run_started", None, json!({})).unwrap();
        let r = verify(&p, true).unwrap();
        assert_eq!((r.records, r.broken), (4, None));
    }

    #[test]
    fn a_head_left_behind_by_a_crash_is_caught_up_but_a_cut_trail_is_refused() {
        let (_d, p) = trail(3);
        let head = std::fs::read(head_path(&p)).unwrap();
        let mut log = AuditLog::open(&p, "INC-1", "run-2").unwrap();
        log.append("observation", None, json!({})).unwrap();
        // As if killed between the record's fsync and the head's rename.
        std::fs::write(head_path(&p), &head).unwrap();
        assert!(verify(&p, true).unwrap().broken.is_some());
        AuditLog::open(&p, "INC-1", "run-3").unwrap();
        assert_eq!(verify(&p, true).unwrap().broken, None);

        let kept: Vec<String> = lines(&p)[..2].to_vec();
        write(&p, &kept);
        assert!(matches!(
            AuditLog::open(&p, "INC-1", "run-4"),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn edits_deletions_swaps_and_truncation_are_named() {
        let (_d, p) = trail(5);
        let orig = lines(&p);

        let mut edited = orig.clone();
        edited[1] = edited[1].replace("\"i\":1", "\"i\":9");
        write(&p, &edited);
        assert_eq!(broken_line(&p), Some(3));

        let mut deleted = orig.clone();
        deleted.remove(2);
        write(&p, &deleted);
        let r = verify(&p, true).unwrap().broken.unwrap();
        assert_eq!(r.line, 3);
        assert!(r.problem.contains("record 3 is missing"), "{}", r.problem);

        let mut swapped = orig.clone();
        swapped.swap(1, 2);
        write(&p, &swapped);
        assert_eq!(broken_line(&p), Some(2));

        write(&p, &orig[..4]);
        let r = verify(&p, true).unwrap().broken.unwrap();
        assert!(r.problem.contains("removed from the end"), "{}", r.problem);

        let mut bytes = (orig.join("\n") + "\n").into_bytes();
        bytes.truncate(bytes.len() - 10);
        std::fs::write(&p, bytes).unwrap();
        let r = verify(&p, true).unwrap().broken.unwrap();
        assert_eq!(r.line, 5);
        assert!(r.problem.contains("incomplete"), "{}", r.problem);

        let mut last = orig.clone();
        last[4] = last[4].replace("\"i\":4", "\"i\":7");
        write(&p, &last);
        assert!(verify(&p, true)
            .unwrap()
            .broken
            .unwrap()
            .problem
            .contains("last record"));
    }
}
