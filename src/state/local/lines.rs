//! An append-only file of records, one a line: `journal.jsonl` and
//! `audit.jsonl` are both this.
//!
//! Every append is written whole before it returns. A durable append is
//! also fsync'd (`sync_data`) before it returns: the engine writes a
//! journal intent and only then makes the AWS call. Other appends are
//! fsync'd together at the next `sync` (the incident calls it before the
//! next durable record of any log). A crash can still tear the last line;
//! on read it is cut off (it can only be a record whose write never
//! completed, so nobody was told it was durable) and the cut is fsync'd
//! before anything is appended after it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::io_at;
use crate::state::{LogContents, StateError};

#[derive(Debug)]
pub struct LineFile {
    path: PathBuf,
    log: &'static str,
    incident: String,
    file: File,
    /// Where this handle expects the file to end and how many records it
    /// holds: set on the first read, moved by each append. `None` until
    /// read, and again after a failed write (the next append re-reads).
    tail: Mutex<Option<Tail>>,
    /// Written lines not yet fsync'd.
    unsynced: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct Tail {
    len: u64,
    count: u64,
}

impl LineFile {
    pub fn open(path: &Path, log: &'static str, incident: &str) -> Result<Self, StateError> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| io_at(path.display(), e))?;
        Ok(Self {
            path: path.to_path_buf(),
            log,
            incident: incident.to_string(),
            file,
            tail: Mutex::new(None),
            unsynced: AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tail(&self) -> MutexGuard<'_, Option<Tail>> {
        // Poisoned only by a panic mid-append; `None` makes the next append
        // re-read the file, which is the truth either way.
        self.tail.lock().unwrap_or_else(|e| {
            let mut g = e.into_inner();
            *g = None;
            g
        })
    }

    /// Every complete line, the torn tail cut off (and the cut fsync'd).
    pub fn read(&self) -> Result<LogContents, StateError> {
        let mut tail = self.tail();
        self.read_locked(&mut tail)
    }

    fn read_locked(&self, tail: &mut Option<Tail>) -> Result<LogContents, StateError> {
        let io = |source| io_at(self.path.display(), source);
        let bytes = std::fs::read(&self.path).map_err(io)?;
        let good_len = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let torn_bytes = bytes.len() - good_len;
        let mut records: Vec<Vec<u8>> = bytes[..good_len]
            .split(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        records.pop(); // what follows the last newline: empty or torn
        if torn_bytes > 0 {
            // The cut must be durable before a record follows it, or a
            // crash could bring the torn bytes back in front of that record.
            self.file.set_len(good_len as u64).map_err(io)?;
            self.file.sync_data().map_err(io)?;
        }
        if tail.is_none() || torn_bytes > 0 {
            *tail = Some(Tail {
                len: good_len as u64,
                count: records.len() as u64,
            });
        }
        Ok(LogContents {
            records,
            torn_bytes,
        })
    }

    /// Fsyncs every line written since the last fsync (none: no call).
    pub fn sync(&self) -> Result<(), StateError> {
        if self.unsynced.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.file.sync_data() {
                self.unsynced.store(true, Ordering::SeqCst);
                return Err(io_at(self.path.display(), e));
            }
        }
        Ok(())
    }

    /// Whether lines were written since the last fsync.
    #[cfg(test)]
    pub fn has_unsynced(&self) -> bool {
        self.unsynced.load(Ordering::SeqCst)
    }

    /// Writes record `seq` as the next line; fsyncs it (and every line
    /// before it) when `durable`, and leaves it for the next `sync`
    /// otherwise.
    ///
    /// The flock makes this handle the only writer; the length check is
    /// the backstop for a writer that did not honour it (a state directory
    /// on a network file system, where `flock` may not reach other hosts):
    /// a file that grew behind our back means `seq` is someone else's.
    pub fn append(&self, seq: u64, record: &[u8], durable: bool) -> Result<(), StateError> {
        let mut tail = self.tail();
        if tail.is_none() {
            self.read_locked(&mut tail)?;
        }
        let Some(t) = *tail else {
            unreachable!("read_locked sets the tail");
        };
        let io = |source| io_at(self.path.display(), source);
        let on_disk = self.file.metadata().map_err(io)?.len();
        if seq <= t.count || on_disk != t.len {
            return Err(StateError::Conflict {
                incident: self.incident.clone(),
                log: self.log,
                seq,
                at: self.path.display().to_string(),
            });
        }
        if seq != t.count + 1 {
            return Err(io(std::io::Error::other(format!(
                "record {seq} would leave a gap after record {}",
                t.count
            ))));
        }
        let mut line = Vec::with_capacity(record.len() + 1);
        line.extend_from_slice(record);
        line.push(b'\n');
        let written = (&self.file).write_all(&line).and_then(|_| {
            if durable {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => {
                self.unsynced.store(!durable, Ordering::SeqCst);
                *tail = Some(Tail {
                    len: t.len + line.len() as u64,
                    count: seq,
                });
                Ok(())
            }
            Err(e) => {
                // A partial line may be on disk: the next append re-reads
                // and cuts it rather than write after it.
                *tail = None;
                Err(io(e))
            }
        }
    }
}
