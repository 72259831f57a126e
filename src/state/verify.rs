//! `audit verify`: checks a whole trail, read as stored (unrepaired), with
//! its head, and names the first place it stops being trustworthy. It
//! works on the bytes any backend returns ([`Trail`]), so a trail is
//! checked the same way wherever it lives, and a copy the same as the
//! original.

use serde::Serialize;

use super::audit::{sha256_hex, AuditRecord, Head, GENESIS};
use super::{StateError, Trail};

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
pub fn verify(trail: &Trail, require_head: bool) -> Result<VerifyReport, StateError> {
    let bytes = &trail.bytes;
    let mut report = VerifyReport {
        path: trail.address.clone(),
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
    let last = lines.len();
    match &trail.head {
        Some(h) => {
            report.head_checked = true;
            match serde_json::from_slice::<Head>(h) {
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
                        format!("the head file {} is damaged", trail.head_address),
                    )
                }
            }
        }
        None if !require_head => {}
        None => {
            return fail(
                report,
                last,
                format!(
                    "the head file {} is missing, so removal of trailing records cannot be ruled out",
                    trail.head_address
                ),
            );
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Incident, IncidentId, LocalStore, StateStore};
    use serde_json::json;

    /// A trail of `n` records written by firebreak, as read back.
    fn trail(n: usize) -> Trail {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let id = IncidentId::parse("INC-1").unwrap();
        let mut inc = Incident::open_in(&store, &id, "run-1", "test").unwrap();
        for i in 0..n {
            inc.audit
                .append("observation", Some("facts"), json!({"i": i}))
                .unwrap();
        }
        drop(inc);
        store.read_trail(&id).unwrap()
    }

    fn lines(t: &Trail) -> Vec<String> {
        String::from_utf8(t.bytes.clone())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn with(t: &Trail, lines: &[String]) -> Trail {
        Trail {
            bytes: (lines.join("\n") + "\n").into_bytes(),
            ..t.clone()
        }
    }

    fn broken(t: &Trail) -> Option<Broken> {
        verify(t, true).unwrap().broken
    }

    #[test]
    fn an_untouched_trail_verifies() {
        let t = trail(3);
        let r = verify(&t, true).unwrap();
        assert_eq!((r.records, r.head_checked, r.broken), (3, true, None));
    }

    #[test]
    fn edits_deletions_swaps_and_truncation_are_named() {
        let t = trail(5);
        let orig = lines(&t);

        let mut edited = orig.clone();
        edited[1] = edited[1].replace("\"i\":1", "\"i\":9");
        assert_eq!(broken(&with(&t, &edited)).map(|b| b.line), Some(3));

        let mut deleted = orig.clone();
        deleted.remove(2);
        let r = broken(&with(&t, &deleted)).unwrap();
        assert_eq!(r.line, 3);
        assert!(r.problem.contains("record 3 is missing"), "{}", r.problem);

        let mut swapped = orig.clone();
        swapped.swap(1, 2);
        assert_eq!(broken(&with(&t, &swapped)).map(|b| b.line), Some(2));

        let r = broken(&with(&t, &orig[..4])).unwrap();
        assert!(r.problem.contains("removed from the end"), "{}", r.problem);

        let mut cut = with(&t, &orig);
        cut.bytes.truncate(cut.bytes.len() - 10);
        let r = broken(&cut).unwrap();
        assert_eq!(r.line, 5);
        assert!(r.problem.contains("incomplete"), "{}", r.problem);

        let mut last = orig.clone();
        last[4] = last[4].replace("\"i\":4", "\"i\":7");
        assert!(broken(&with(&t, &last))
            .unwrap()
            .problem
            .contains("last record"));
    }

    #[test]
    fn a_missing_head_is_broken_unless_allowed() {
        let t = Trail {
            head: None,
            ..trail(2)
        };
        assert!(broken(&t).unwrap().problem.contains("missing"));
        let r = verify(&t, false).unwrap();
        assert_eq!((r.head_checked, r.broken), (false, None));
    }
}
