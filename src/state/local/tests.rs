//! The local backend against the shared contract, and what is particular
//! to it: the files on disk, torn lines, the head caught up after a crash.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::AtomicBool;

use serde_json::json;

use super::*;
use crate::state::conformance::{self, record, Harness};
use crate::state::{Incident, JournalEvent};

struct Local {
    _dir: tempfile::TempDir,
    store: LocalStore,
}

impl Local {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        Self { _dir: dir, store }
    }

    fn file(&self, id: &IncidentId, name: &str) -> PathBuf {
        self.store.dir(id).join(name)
    }
}

impl Harness for Local {
    type Store = LocalStore;

    fn store(&self) -> &LocalStore {
        &self.store
    }

    fn tear(&self, id: &IncidentId, log: LogKind) -> bool {
        let name = match log {
            LogKind::Journal => JOURNAL,
            LogKind::Audit => AUDIT,
        };
        let mut f = OpenOptions::new()
            .append(true)
            .open(self.file(id, name))
            .unwrap();
        f.write_all(b"{\"seq\":9,\"time\":\"t\",\"ru").unwrap();
        true
    }

    /// Another process's handle on the same files without the flock: what
    /// a host that cannot see our flock (NFS) would have. In-process the
    /// flock itself refuses a second handle, so the lock is bypassed here.
    fn intruder(&self, id: &IncidentId) -> Box<dyn IncidentBackend> {
        Box::new(handle(self, id, "intruder"))
    }
}

/// The incident's files under a handle of our own, without the flock:
/// what a host that cannot see it (NFS) would have, and whose fields a
/// test can see.
fn handle(h: &Local, id: &IncidentId, holder: &str) -> LocalIncident {
    let dir = h.store.dir(id);
    LocalIncident {
        id: id.clone(),
        lease: Lease {
            holder: Holder::current(holder),
            expires_at: None,
        },
        flock: None,
        released: AtomicBool::new(false),
        journal: LineFile::open(&dir.join(JOURNAL), "journal", id.as_str()).unwrap(),
        audit: LineFile::open(&dir.join(AUDIT), "audit trail", id.as_str()).unwrap(),
        head: std::sync::Mutex::new(None),
        dir,
    }
}

#[test]
fn trail_lines_are_fsynced_before_a_journal_record_a_call_metadata_and_the_release() {
    let h = Local::new();
    let i = IncidentId::parse("INC-SYNC").unwrap();
    drop(Incident::open_in(&h.store, &i, "run-1", "test").unwrap());
    let inc = handle(&h, &i, "test");
    let seq = |log: LogKind| inc.read_log(log).unwrap().records.len() as u64 + 1;
    let (a, j) = (seq(LogKind::Audit), seq(LogKind::Journal));
    let line = |n: u64| format!("{{\"seq\":{n}}}").into_bytes();

    inc.append(LogKind::Audit, a, &line(a)).unwrap();
    assert!(
        inc.audit.has_unsynced(),
        "a trail line waits for the next sync point"
    );
    inc.append(LogKind::Journal, j, &line(j)).unwrap();
    assert!(
        !inc.audit.has_unsynced(),
        "a journal record syncs the trail before it"
    );
    assert!(
        !inc.journal.has_unsynced(),
        "a journal record is fsync'd itself"
    );

    inc.append(LogKind::Audit, a + 1, &line(a + 1)).unwrap();
    inc.sync(LogKind::Audit).unwrap();
    assert!(!inc.audit.has_unsynced(), "sync before an AWS call");

    inc.append(LogKind::Audit, a + 2, &line(a + 2)).unwrap();
    inc.write_meta("custody", b"{}").unwrap();
    assert!(
        !inc.audit.has_unsynced(),
        "metadata can describe the trail: the trail first"
    );

    inc.append(LogKind::Audit, a + 3, &line(a + 3)).unwrap();
    inc.release().unwrap();
    assert!(
        !inc.audit.has_unsynced(),
        "the release leaves the trail on disk"
    );
    // Nothing written is lost to the reader either way.
    assert_eq!(
        inc.read_log(LogKind::Audit).unwrap().records.len() as u64,
        a + 3
    );
}

#[test]
fn an_applying_record_is_on_disk_before_the_call_it_announces() {
    let h = Local::new();
    let i = IncidentId::parse("INC-APPLYING").unwrap();
    let mut inc = Incident::open_in(&h.store, &i, "run-1", "test").unwrap();
    inc.audit.append("observation", None, json!({})).unwrap();
    drop(inc);
    // The handle above synced on drop; a fresh one sees what the trail
    // layer asks of the backend.
    let backend = std::sync::Arc::new(handle(&h, &i, "test"));
    let mut trail = crate::state::AuditLog::open(backend.clone(), "INC-APPLYING", "run-2").unwrap();
    trail.append("observation", None, json!({})).unwrap();
    assert!(backend.audit.has_unsynced());
    trail
        .append("applying", Some("throttle"), json!({}))
        .unwrap();
    assert!(
        !backend.audit.has_unsynced(),
        "`applying` precedes an AWS call"
    );
}

#[test]
fn the_local_backend_keeps_the_state_contract() {
    conformance::run_all(&Local::new());
}

#[test]
fn the_layout_on_disk_is_what_the_docs_describe() {
    let h = Local::new();
    let i = IncidentId::parse("INC-1").unwrap();
    let mut inc = Incident::open_in(&h.store, &i, "run-1", "test").unwrap();
    inc.journal.append(record(JournalEvent::Intent)).unwrap();
    inc.audit.append("observation", None, json!({})).unwrap();
    inc.write_meta("custody", &json!({"bucket": "b"})).unwrap();
    for name in [
        "incident.json",
        "custody.json",
        "lock",
        "journal.jsonl",
        "audit.jsonl",
        "audit.jsonl.head",
    ] {
        assert!(h.file(&i, name).is_file(), "{name}");
    }
    let journal = std::fs::read_to_string(h.file(&i, JOURNAL)).unwrap();
    assert_eq!(journal.lines().count(), 1);
    assert!(journal.starts_with("{\"seq\":1,"), "{journal}");
    // A directory or the trail file itself names the trail.
    let by_dir = read_trail_at(&h.store.dir(&i)).unwrap();
    assert_eq!(by_dir, read_trail_at(&h.file(&i, AUDIT)).unwrap());
    assert_eq!(by_dir, h.store.read_trail(&i).unwrap());
}

#[test]
fn a_corrupt_middle_journal_line_stops_the_incident() {
    let h = Local::new();
    let i = IncidentId::parse("INC-1").unwrap();
    drop(Incident::open_in(&h.store, &i, "run-1", "test").unwrap());
    std::fs::write(h.file(&i, JOURNAL), "not json\n{}\n").unwrap();
    assert!(matches!(
        Incident::open_in(&h.store, &i, "run-2", "test"),
        Err(StateError::Corrupt { line: 1, .. })
    ));
}

/// The head is written where it is (the same file, never a sibling renamed
/// over it), whole each time, and a shorter head leaves no tail behind.
#[test]
fn the_head_is_overwritten_in_place() {
    use std::os::unix::fs::MetadataExt;
    let h = Local::new();
    let i = IncidentId::parse("INC-1").unwrap();
    drop(Incident::open_in(&h.store, &i, "run-1", "test").unwrap());
    let inc = handle(&h, &i, "test");
    let path = h.file(&i, "audit.jsonl.head");
    inc.write_head(br#"{"seq":10,"sha256":"aa"}"#).unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    inc.write_head(br#"{"seq":100,"sha256":"bbbb"}"#).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        br#"{"seq":100,"sha256":"bbbb"}"#
    );
    inc.write_head(br#"{"seq":1,"sha256":"c"}"#).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), br#"{"seq":1,"sha256":"c"}"#);
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert!(!path.with_extension("head.tmp").exists());
}

#[test]
fn a_head_left_behind_by_a_crash_is_caught_up_but_a_cut_trail_is_refused() {
    let h = Local::new();
    let i = IncidentId::parse("INC-1").unwrap();
    let open = |run: &str| Incident::open_in(&h.store, &i, run, "test");
    let mut inc = open("run-1").unwrap();
    for n in 0..3 {
        inc.audit
            .append("observation", None, json!({"n": n}))
            .unwrap();
    }
    let head = std::fs::read(h.file(&i, "audit.jsonl.head")).unwrap();
    inc.audit.append("observation", None, json!({})).unwrap();
    drop(inc);
    // As if killed between the record's write and the head's.
    std::fs::write(h.file(&i, "audit.jsonl.head"), &head).unwrap();
    let verify = || crate::state::audit::verify(&h.store.read_trail(&i).unwrap(), true).unwrap();
    assert!(verify().broken.is_some());
    drop(open("run-2").unwrap());
    assert_eq!(verify().broken, None);

    let trail = std::fs::read_to_string(h.file(&i, AUDIT)).unwrap();
    let kept: String = trail.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(h.file(&i, AUDIT), kept).unwrap();
    assert!(matches!(open("run-3"), Err(StateError::Corrupt { .. })));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// The journal keeps the intents in doubt as records arrive; they are
    /// what the definition says (an intent with no later outcome of its
    /// step and intent), live and after a reopen.
    #[test]
    fn in_doubt_is_every_intent_with_no_later_outcome(
        ops in proptest::collection::vec((0u8..3, 0u8..2, 0u8..3, 0u8..2), 0..40)
    ) {
        let h = Local::new();
        let i = IncidentId::parse("INC-DOUBT").unwrap();
        let open = || Incident::open_in(&h.store, &i, "run-1", "firebreak run").unwrap();
        let mut inc = open();
        for (event, step, target, after) in ops {
            let mut r = record(match event {
                0 => JournalEvent::Intent,
                1 => JournalEvent::Applied,
                _ => JournalEvent::Failed,
            });
            r.step = format!("s{step}");
            r.change.target = format!("arn:f{target}");
            r.change.after = json!(after);
            inc.journal.append(r).unwrap();
        }
        let all = inc.journal.records();
        let naive: Vec<u64> = all
            .iter()
            .filter(|i| i.event == JournalEvent::Intent)
            .filter(|i| {
                !all.iter().any(|o| {
                    o.seq > i.seq
                        && o.event != JournalEvent::Intent
                        && o.step == i.step
                        && o.change.same_intent(&i.change)
                })
            })
            .map(|r| r.seq)
            .collect();
        let seqs = |inc: &Incident| -> Vec<u64> {
            inc.journal.in_doubt().iter().map(|r| r.seq).collect()
        };
        proptest::prop_assert_eq!(&seqs(&inc), &naive);
        drop(inc);
        proptest::prop_assert_eq!(&seqs(&open()), &naive);
    }
}
