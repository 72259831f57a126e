//! The contract of `store.rs`, as tests any backend runs: a backend's test
//! module implements [`Harness`] and calls [`run_all`] (the local one in
//! `local/tests.rs`; the shared store's against LocalStack, in
//! `tests/integration/s3_state.rs`).

use serde_json::json;

use super::audit::verify;
use super::{
    Holder, Incident, IncidentBackend, IncidentId, JournalEvent, JournalRecord, LogKind,
    StateError, StateStore,
};
use crate::plan::Change;

/// What the suite needs beyond the trait: ways to misbehave that only the
/// backend knows how to stage.
pub trait Harness {
    type Store: StateStore;

    fn store(&self) -> &Self::Store;

    /// Leaves an incomplete record at the end of `log`, as a crash in the
    /// middle of a write would. `false` when the backend's writes are
    /// atomic (nothing can be torn: the check is skipped).
    fn tear(&self, id: &IncidentId, log: LogKind) -> bool;

    /// A second writer on an incident someone holds, past the lease: one
    /// whose lease expired without it noticing, or that did not honour it.
    fn intruder(&self, id: &IncidentId) -> Box<dyn IncidentBackend>;
}

pub fn run_all<H: Harness>(h: &H) {
    the_lease_is_exclusive_and_names_its_holder(h);
    appends_survive_reopen(h);
    a_torn_tail_is_repaired(h);
    metadata_round_trips(h);
    a_second_writer_of_a_sequence_number_gets_a_conflict(h);
    a_released_lease_writes_nothing_and_frees_the_incident(h);
}

fn id(s: &str) -> IncidentId {
    IncidentId::parse(s).unwrap()
}

fn open<H: Harness>(h: &H, id: &IncidentId) -> Result<Incident, StateError> {
    Incident::open_in(h.store(), id, "run-1", "firebreak run")
}

pub fn record(event: JournalEvent) -> JournalRecord {
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

fn the_lease_is_exclusive_and_names_its_holder<H: Harness>(h: &H) {
    let i = id("INC-LEASE");
    assert!(!h.store().exists(&i).unwrap());
    let first = open(h, &i).unwrap();
    assert!(h.store().exists(&i).unwrap());
    assert_eq!(first.lease().holder.pid, std::process::id());
    first.renew_lease().unwrap();
    match open(h, &i) {
        Err(StateError::Locked {
            incident,
            lease: Some(l),
        }) => {
            assert_eq!(incident, "INC-LEASE");
            assert_eq!(l.holder.pid, std::process::id());
            assert_eq!(l.holder.command, "firebreak run");
        }
        other => panic!("expected Locked naming the holder, got {other:?}"),
    }
    drop(first);
    open(h, &i).expect("free once the holder is gone");
}

fn appends_survive_reopen<H: Harness>(h: &H) {
    let i = id("INC-REOPEN");
    let started_at = {
        let mut inc = open(h, &i).unwrap();
        inc.journal.append(record(JournalEvent::Intent)).unwrap();
        inc.journal.append(record(JournalEvent::Applied)).unwrap();
        inc.journal.append(record(JournalEvent::Intent)).unwrap();
        inc.audit
            .append("observation", None, json!({"n": 1}))
            .unwrap();
        inc.audit.append("applied", Some("s"), json!({})).unwrap();
        inc.meta.started_at.clone()
    };
    let mut inc = open(h, &i).unwrap();
    assert_eq!(inc.meta.started_at, started_at, "stable across runs");
    let seqs: Vec<u64> = inc.journal.records().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(inc.journal.in_doubt().len(), 1);
    inc.audit.append("run_started", None, json!({})).unwrap();
    // The trail continues the chain, readable without the lease.
    let r = verify(&h.store().read_trail(&i).unwrap(), true).unwrap();
    assert_eq!((r.records, r.broken), (3, None));
    assert_eq!(
        inc.audit.trail_bytes().unwrap(),
        h.store().read_trail(&i).unwrap().bytes
    );
    assert!(matches!(
        h.store().read_trail(&id("INC-NONE")),
        Err(StateError::NoTrail { .. })
    ));
}

fn a_torn_tail_is_repaired<H: Harness>(h: &H) {
    let i = id("INC-TORN");
    {
        let mut inc = open(h, &i).unwrap();
        inc.journal.append(record(JournalEvent::Intent)).unwrap();
        inc.journal.append(record(JournalEvent::Applied)).unwrap();
        inc.audit.append("observation", None, json!({})).unwrap();
    }
    if !(h.tear(&i, LogKind::Journal) && h.tear(&i, LogKind::Audit)) {
        return;
    }
    let mut inc = open(h, &i).unwrap();
    assert!(inc.journal.torn_bytes > 0 && inc.audit.torn_bytes > 0);
    assert_eq!(inc.journal.records().len(), 2);
    inc.journal.append(record(JournalEvent::Intent)).unwrap();
    inc.audit.append("repaired", None, json!({})).unwrap();
    drop(inc);
    let inc = open(h, &i).unwrap();
    assert_eq!((inc.journal.torn_bytes, inc.audit.torn_bytes), (0, 0));
    assert_eq!(inc.journal.records().len(), 3);
    assert_eq!(inc.journal.records()[2].seq, 3);
    let r = verify(&h.store().read_trail(&i).unwrap(), true).unwrap();
    assert_eq!((r.records, r.broken), (2, None));
}

fn metadata_round_trips<H: Harness>(h: &H) {
    let i = id("INC-META");
    let value = json!({"bucket": "forensics", "role": null});
    {
        let inc = open(h, &i).unwrap();
        assert_eq!(inc.read_meta::<serde_json::Value>("custody").unwrap(), None);
        inc.write_meta("custody", &json!({"bucket": "old"}))
            .unwrap();
        inc.write_meta("custody", &value).unwrap();
        assert!(matches!(
            inc.write_meta("../x", &value),
            Err(StateError::BadMetaName(_))
        ));
    }
    let inc = open(h, &i).unwrap();
    assert_eq!(inc.read_meta("custody").unwrap(), Some(value));
    assert_eq!(inc.meta.id, "INC-META");
}

fn a_second_writer_of_a_sequence_number_gets_a_conflict<H: Harness>(h: &H) {
    let i = id("INC-RACE");
    let mut inc = open(h, &i).unwrap();
    inc.journal.append(record(JournalEvent::Intent)).unwrap();
    inc.audit.append("applying", None, json!({})).unwrap();
    let other = h.intruder(&i);
    let conflict = |r: Result<(), StateError>, want: u64| match r {
        Err(StateError::Conflict { seq, .. }) => assert_eq!(seq, want),
        other => panic!("expected Conflict on record {want}, got {other:?}"),
    };
    // Record 1 is taken: the intruder cannot write it again...
    for log in [LogKind::Journal, LogKind::Audit] {
        conflict(other.append(log, 1, b"{}"), 1);
    }
    // ...and once it has taken record 2, the holder cannot either: it
    // learns it lost the incident before its next AWS call.
    other.append(LogKind::Journal, 2, b"{}").unwrap();
    conflict(inc.journal.append(record(JournalEvent::Applied)), 2);
    assert_eq!(inc.journal.records().len(), 1, "nothing recorded");
}

fn a_released_lease_writes_nothing_and_frees_the_incident<H: Harness>(h: &H) {
    let i = id("INC-RELEASE");
    let held = h
        .store()
        .lock(&i, Holder::current("firebreak run"))
        .unwrap();
    held.release().unwrap();
    assert!(matches!(
        held.append(LogKind::Journal, 1, b"{}"),
        Err(StateError::LeaseLost { .. })
    ));
    let mut again = open(h, &i).expect("released");
    again.journal.append(record(JournalEvent::Intent)).unwrap();
    assert_eq!(again.journal.records()[0].seq, 1);
    drop(held);
    again.release().unwrap();
}
