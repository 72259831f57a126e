//! One process per incident at a time.
//!
//! An OS file lock (`flock`) on `lock` in the incident directory: the kernel
//! releases it when the holder exits for any reason, including SIGKILL, so
//! a crashed responder never leaves a stale lock behind. The holder writes
//! who it is into the file so that the process turned away can say who.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StateError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub command: String,
    pub since: String,
}

impl Holder {
    pub fn current(command: &str) -> Self {
        Self {
            pid: std::process::id(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| "unknown-host".into()),
            user: std::env::var("USER").unwrap_or_else(|_| "unknown-user".into()),
            command: command.to_string(),
            since: crate::time::now_rfc3339(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}@{}, `{}`, since {})",
            self.pid, self.user, self.host, self.command, self.since
        )
    }
}

/// Held for the life of the value.
#[derive(Debug)]
pub struct IncidentLock {
    _file: File,
}

pub fn acquire(path: &Path, incident: &str, command: &str) -> Result<IncidentLock, StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
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
                holder: holder.map(Box::new),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let me = serde_json::to_string(&Holder::current(command)).unwrap_or_default();
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(me.as_bytes()).map_err(io)?;
    Ok(IncidentLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_told_who() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let first = acquire(&p, "INC-1", "firebreak run").unwrap();
        match acquire(&p, "INC-1", "firebreak run") {
            Err(StateError::Locked {
                holder: Some(h), ..
            }) => {
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.command, "firebreak run");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        assert!(acquire(&p, "INC-1", "firebreak run").is_ok());
    }
}
