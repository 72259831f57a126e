//! One process per incident at a time, on one machine.
//!
//! An OS file lock (`flock`) on `lock` in the incident directory: the kernel
//! releases it when the holder exits for any reason, including SIGKILL, so
//! a crashed responder never leaves a stale lock behind (the lease never
//! expires while the holder lives, so renewing it is a no-op). The holder
//! writes who it is into the file so that the process turned away can say
//! who.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::io_at;
use crate::state::{Holder, Lease, StateError};

/// Held for the life of the value, or until [`Flock::release`].
#[derive(Debug)]
pub struct Flock {
    file: File,
}

impl Flock {
    pub fn release(&self) -> Result<(), StateError> {
        self.file.unlock().map_err(|e| io_at("lock", e))
    }
}

pub fn acquire(path: &Path, incident: &str, holder: &Holder) -> Result<Flock, StateError> {
    let io = |source| io_at(path.display(), source);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| serde_json::from_str::<Holder>(&text).ok());
            return Err(StateError::Locked {
                incident: incident.to_string(),
                lease: holder.map(|holder| {
                    Box::new(Lease {
                        holder,
                        expires_at: None,
                    })
                }),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let me = serde_json::to_string(holder).unwrap_or_default();
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(me.as_bytes()).map_err(io)?;
    Ok(Flock { file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_told_who() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let me = Holder::current("firebreak run");
        let first = acquire(&p, "INC-1", &me).unwrap();
        match acquire(&p, "INC-1", &me) {
            Err(StateError::Locked { lease: Some(l), .. }) => {
                assert_eq!(l.holder.pid, std::process::id());
                assert_eq!(l.holder.command, "firebreak run");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        assert!(acquire(&p, "INC-1", &me).is_ok());
    }
}
