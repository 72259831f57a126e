//! The local backend: incident state in a directory, one per incident.
//!
//! ```text
//! <state-dir>/incidents/<id>/
//!   incident.json      metadata `incident`: id and start time
//!   custody.json       metadata `custody` (and any other name: `<name>.json`)
//!   lock               flock held by the one process working on the incident
//!   journal.jsonl      journal records, one a line
//!   audit.jsonl        audit records, one a line
//!   audit.jsonl.head   the trail's head
//! ```
//!
//! This module is the only place that knows these names. Everything else
//! reaches the files through [`StateStore`] and [`IncidentBackend`];
//! [`read_trail_at`] turns a path a user typed (`audit verify DIR`,
//! `evidence verify --trail FILE`) into a trail.

mod lines;
pub mod lock;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use lines::LineFile;

use super::store::check_meta_name;
use super::{
    Holder, IncidentBackend, IncidentId, Lease, LogContents, LogKind, StateError, StateStore, Trail,
};

const INCIDENTS: &str = "incidents";
const LOCK: &str = "lock";
const JOURNAL: &str = "journal.jsonl";
const AUDIT: &str = "audit.jsonl";
const HEAD_SUFFIX: &str = ".head";
/// The metadata that says the incident exists: written first, on open.
const META_INCIDENT: &str = "incident";

pub(crate) fn io_at(at: impl Display, source: std::io::Error) -> StateError {
    StateError::Io {
        at: at.to_string(),
        source,
    }
}

/// Incidents under a state directory (`--state-dir`).
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.to_path_buf(),
        }
    }

    fn dir(&self, id: &IncidentId) -> PathBuf {
        self.root.join(INCIDENTS).join(id.as_str())
    }
}

impl StateStore for LocalStore {
    fn address(&self, id: &IncidentId) -> String {
        self.dir(id).display().to_string()
    }

    fn exists(&self, id: &IncidentId) -> Result<bool, StateError> {
        let p = meta_path(&self.dir(id), META_INCIDENT);
        p.try_exists().map_err(|e| io_at(p.display(), e))
    }

    fn lock(
        &self,
        id: &IncidentId,
        holder: Holder,
    ) -> Result<Box<dyn IncidentBackend>, StateError> {
        let dir = self.dir(id);
        std::fs::create_dir_all(&dir).map_err(|e| io_at(dir.display(), e))?;
        // The lock first: nothing else in the directory is touched by a
        // process that does not hold it.
        let flock = lock::acquire(&dir.join(LOCK), id.as_str(), &holder)?;
        let journal = LineFile::open(&dir.join(JOURNAL), LogKind::Journal.name(), id.as_str())?;
        let audit = LineFile::open(&dir.join(AUDIT), LogKind::Audit.name(), id.as_str())?;
        Ok(Box::new(LocalIncident {
            id: id.clone(),
            dir,
            lease: Lease {
                holder,
                expires_at: None,
            },
            flock: Some(flock),
            released: AtomicBool::new(false),
            journal,
            audit,
            head: Mutex::new(None),
        }))
    }

    fn read_trail(&self, id: &IncidentId) -> Result<Trail, StateError> {
        read_trail_file(&self.dir(id).join(AUDIT))
    }
}

/// The trail at a path a user gave: an incident directory, or a trail
/// file (perhaps a copy) with its head beside it.
pub fn read_trail_at(path: &Path) -> Result<Trail, StateError> {
    if path.is_dir() {
        read_trail_file(&path.join(AUDIT))
    } else {
        read_trail_file(path)
    }
}

fn head_path(trail: &Path) -> PathBuf {
    let mut name = trail.file_name().unwrap_or_default().to_os_string();
    name.push(HEAD_SUFFIX);
    trail.with_file_name(name)
}

fn meta_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

fn read_trail_file(path: &Path) -> Result<Trail, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::NoTrail {
                at: path.display().to_string(),
            })
        }
        Err(e) => return Err(io_at(path.display(), e)),
    };
    let hp = head_path(path);
    Ok(Trail {
        address: path.display().to_string(),
        head_address: hp.display().to_string(),
        bytes,
        head: read_optional(&hp)?,
    })
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path.display(), e)),
    }
}

/// Replaces `path` by writing a sibling and renaming it over: readers see
/// the old or the new bytes, never a mix.
fn replace(path: &Path, bytes: &[u8], durable: bool) -> Result<(), StateError> {
    let io = |e| io_at(path.display(), e);
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    std::io::Write::write_all(&mut f, bytes).map_err(io)?;
    if durable {
        // Without it a crash after the rename could leave an empty file.
        f.sync_data().map_err(io)?;
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// One incident directory, held under its flock.
#[derive(Debug)]
pub struct LocalIncident {
    id: IncidentId,
    dir: PathBuf,
    lease: Lease,
    /// `None` only for a test's intruder (a writer that ignores the lock).
    flock: Option<lock::Flock>,
    released: AtomicBool,
    journal: LineFile,
    audit: LineFile,
    /// The trail's head file, once written by this handle (`write_head`).
    head: Mutex<Option<std::fs::File>>,
}

impl LocalIncident {
    fn log(&self, log: LogKind) -> &LineFile {
        match log {
            LogKind::Journal => &self.journal,
            LogKind::Audit => &self.audit,
        }
    }

    fn held(&self) -> Result<(), StateError> {
        if self.released.load(Ordering::SeqCst) {
            return Err(StateError::LeaseLost {
                incident: self.id.to_string(),
                lease: None,
            });
        }
        Ok(())
    }
}

impl IncidentBackend for LocalIncident {
    fn address(&self) -> String {
        self.dir.display().to_string()
    }

    fn log_address(&self, log: LogKind) -> String {
        self.log(log).path().display().to_string()
    }

    fn lease(&self) -> Lease {
        self.lease.clone()
    }

    fn renew(&self) -> Result<(), StateError> {
        // A flock does not expire while its holder lives.
        self.held()
    }

    fn release(&self) -> Result<(), StateError> {
        let synced = self.audit.sync();
        self.released.store(true, Ordering::SeqCst);
        let released = self.flock.as_ref().map_or(Ok(()), lock::Flock::release);
        synced.and(released)
    }

    fn read_log(&self, log: LogKind) -> Result<LogContents, StateError> {
        self.log(log).read()
    }

    /// A journal record is fsync'd before this returns, and so is every
    /// trail record written before it: what was observed and recorded
    /// before a change is on disk before the change is sent. Trail records
    /// are otherwise written and fsync'd together at that point (group
    /// commit), at the next metadata write and when the lease is given up:
    /// a few fsyncs per change instead of one per line (26 instead of 44
    /// to contain one function), which a network disk makes worth having.
    /// A process that is killed loses nothing written; only a power loss
    /// can take trail lines written after the last change.
    fn append(&self, log: LogKind, seq: u64, record: &[u8]) -> Result<(), StateError> {
        self.held()?;
        match log {
            LogKind::Journal => {
                self.audit.sync()?;
                self.journal.append(seq, record, true)
            }
            LogKind::Audit => self.audit.append(seq, record, false),
        }
    }

    fn sync(&self, log: LogKind) -> Result<(), StateError> {
        self.held()?;
        self.log(log).sync()
    }

    fn read_head(&self) -> Result<Option<Vec<u8>>, StateError> {
        read_optional(&head_path(self.audit.path()))
    }

    /// Overwritten in place, every audit line: a head replaced through a
    /// sibling and a rename (which ext4 makes write the new file's data
    /// out, and a discard mount the old one's blocks away) cost a run at a
    /// thousand targets more of its planning thread than any other work
    /// (issue 15, measured with perf: about three a target). The head is
    /// under a hundred bytes at offset 0, inside one disk sector, so a
    /// crash leaves the old head or the new; its length only grows (its
    /// `seq` does), and a shorter one (never written) is cut to size.
    /// Not fsync'd (as before): a head that lags after a crash is caught
    /// up from the trail on the next open; an fsync per audit line more
    /// would buy nothing.
    fn write_head(&self, head: &[u8]) -> Result<(), StateError> {
        use std::os::unix::fs::FileExt;
        self.held()?;
        let path = head_path(self.audit.path());
        let io = |e| io_at(path.display(), e);
        let mut file = self.head.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_none() {
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            *file = Some(opened);
        }
        let Some(f) = file.as_ref() else {
            return Ok(());
        };
        f.write_all_at(head, 0).map_err(io)?;
        let len = u64::try_from(head.len()).unwrap_or(u64::MAX);
        if f.metadata().map_err(io)?.len() > len {
            f.set_len(len).map_err(io)?;
        }
        Ok(())
    }

    fn read_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        check_meta_name(name)?;
        read_optional(&meta_path(&self.dir, name))
    }

    fn write_meta(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        check_meta_name(name)?;
        self.held()?;
        // Metadata can describe the trail (custody): the trail first.
        self.audit.sync()?;
        replace(&meta_path(&self.dir, name), bytes, true)
    }
}

impl Drop for LocalIncident {
    /// A handle dropped without `release` (an early return, a panic) still
    /// leaves its trail on disk, under the flock it still holds here.
    fn drop(&mut self) {
        if let Err(e) = self.audit.sync() {
            tracing::error!(error = %e, "could not fsync the audit trail when closing the incident");
        }
    }
}

#[cfg(test)]
mod tests;
