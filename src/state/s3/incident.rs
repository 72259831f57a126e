//! One incident in a shared store, held under its lease: the
//! [`IncidentBackend`] the journal and the trail write through.
//!
//! What a second responder can observe, and why each write is conditional:
//! - records: created once (`log.rs`), so two writers never share a number;
//! - the head and the metadata: replaced with `If-Match` on the version
//!   this handle last read or wrote (`If-None-Match: *` when it saw none).
//!   A plain overwrite would be atomic too, but a holder that lost its
//!   lease without noticing could then put back an older head after the
//!   new holder's records (the trail would look tampered with) or replace
//!   the new holder's metadata. With the condition its write fails, and it
//!   learns it lost the incident ([`StateError::LeaseLost`]).
//! - every write first checks the lease is still ours (`lease::ensure_held`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;

use super::keys::Keys;
use super::lease::{self, LeaseCell};
use super::objects::{self, Cond, Put, Target};
use super::worker::Worker;
use super::{log, Tuning};
use crate::state::store::check_meta_name;
use crate::state::{IncidentBackend, IncidentId, Lease, LogContents, LogKind, StateError};

/// The version of a document (head, metadata) this handle last saw.
#[derive(Debug, Clone)]
enum Seen {
    Absent,
    ETag(String),
}

/// Per-key versions, shared with the jobs that read and write them.
type Versions = Arc<Mutex<HashMap<String, Seen>>>;

#[derive(Debug)]
pub struct S3Incident {
    id: IncidentId,
    keys: Keys,
    worker: Worker,
    tuning: Tuning,
    lease: Arc<LeaseCell>,
    /// False for a test's writer that never took the lease.
    leased: bool,
    released: AtomicBool,
    heartbeat: Option<tokio::task::AbortHandle>,
    /// Records this handle knows each log to hold (journal, audit): set by
    /// a read, moved by each append; `None` when unknown.
    counts: Mutex<[Option<u64>; 2]>,
    versions: Versions,
}

fn slot(log: LogKind) -> usize {
    match log {
        LogKind::Journal => 0,
        LogKind::Audit => 1,
    }
}

impl S3Incident {
    pub(super) fn new(
        id: IncidentId,
        keys: Keys,
        worker: Worker,
        tuning: Tuning,
        lease: Arc<LeaseCell>,
        heartbeat: Option<tokio::task::AbortHandle>,
    ) -> Self {
        Self {
            leased: heartbeat.is_some(),
            id,
            keys,
            worker,
            tuning,
            lease,
            released: AtomicBool::new(false),
            heartbeat,
            counts: Mutex::new([None, None]),
            versions: Arc::default(),
        }
    }

    fn count(&self, log: LogKind) -> Option<u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())[slot(log)]
    }

    fn set_count(&self, log: LogKind, n: Option<u64>) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())[slot(log)] = n;
    }

    /// Checks the lease (when this handle holds one) on the store's thread.
    async fn held(c: &Client, cell: &LeaseCell, leased: bool) -> Result<(), StateError> {
        if leased {
            lease::ensure_held(c, cell).await
        } else {
            Ok(())
        }
    }

    fn read_doc(&self, key: String) -> Result<Option<Vec<u8>>, StateError> {
        let (bucket, versions) = (self.keys.bucket.clone(), self.versions.clone());
        self.worker.call(move |c| async move {
            let found = objects::get(
                &c,
                Target {
                    bucket: &bucket,
                    key: &key,
                },
            )
            .await?;
            let seen = match &found {
                Some(o) => Seen::ETag(o.etag.clone()),
                None => Seen::Absent,
            };
            versions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, seen);
            Ok(found.map(|o| o.bytes))
        })
    }

    fn write_doc(&self, key: String, bytes: &[u8]) -> Result<(), StateError> {
        let (cell, leased, versions) = (self.lease.clone(), self.leased, self.versions.clone());
        let bytes = bytes.to_vec();
        self.worker.call(move |c| async move {
            Self::held(&c, &cell, leased).await?;
            let bucket = cell.keys.bucket.clone();
            let t = || Target {
                bucket: &bucket,
                key: &key,
            };
            let seen = versions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .cloned();
            // Never read by this handle: the version there now is the one
            // to replace (the lease says nobody else writes it).
            let seen = match seen {
                Some(s) => s,
                None => objects::etag(&c, t())
                    .await?
                    .map_or(Seen::Absent, Seen::ETag),
            };
            let cond = match &seen {
                Seen::Absent => Cond::Create,
                Seen::ETag(e) => Cond::Match(e),
            };
            match objects::put(&c, t(), &bytes, cond).await? {
                Put::Done { etag } => {
                    versions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key, Seen::ETag(etag));
                    Ok(())
                }
                Put::Precondition => {
                    versions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                    Err(lease::mark_lost(&c, &cell).await)
                }
            }
        })
    }
}

impl IncidentBackend for S3Incident {
    fn address(&self) -> String {
        self.keys.address()
    }

    fn log_address(&self, log: LogKind) -> String {
        self.keys.url(&self.keys.log_prefix(log))
    }

    fn lease(&self) -> Lease {
        self.lease.view()
    }

    fn renew(&self) -> Result<(), StateError> {
        if !self.leased {
            return Ok(());
        }
        let cell = self.lease.clone();
        self.worker
            .call(move |c| async move { lease::renew(&c, &cell).await })
    }

    fn release(&self) -> Result<(), StateError> {
        if !self.leased || self.released.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let cell = self.lease.clone();
        let r = self
            .worker
            .call(move |c| async move { lease::release(&c, &cell).await });
        // After the release: it holds the lease's mutex, so the heartbeat
        // cannot be in the middle of a renewal when it is stopped.
        if let Some(h) = &self.heartbeat {
            h.abort();
        }
        r
    }

    fn read_log(&self, log: LogKind) -> Result<LogContents, StateError> {
        let (keys, page) = (self.keys.clone(), self.tuning.page_size);
        let records = self
            .worker
            .call(move |c| async move { log::read(&c, &keys, log, page).await })?;
        self.set_count(log, Some(records.len() as u64));
        Ok(LogContents {
            records,
            // Each record is one PUT: whole or absent.
            torn_bytes: 0,
        })
    }

    fn append(&self, log: LogKind, seq: u64, record: &[u8]) -> Result<(), StateError> {
        if self.released.load(Ordering::SeqCst) {
            return Err(StateError::LeaseLost {
                incident: self.id.to_string(),
                lease: None,
            });
        }
        // What this handle already knows saves a request: a number it has
        // seen taken is a conflict; one past the next would leave a gap.
        if let Some(n) = self.count(log) {
            if seq <= n {
                return Err(StateError::Conflict {
                    incident: self.id.to_string(),
                    log: log.name(),
                    seq,
                    at: self.keys.url(&self.keys.record(log, seq)),
                });
            }
            if seq != n + 1 {
                return Err(StateError::Io {
                    at: self.log_address(log),
                    source: std::io::Error::other(format!(
                        "record {seq} would leave a gap after record {n}"
                    )),
                });
            }
        }
        let (cell, leased, id, keys) = (
            self.lease.clone(),
            self.leased,
            self.id.clone(),
            self.keys.clone(),
        );
        let record = record.to_vec();
        let r = self.worker.call(move |c| async move {
            Self::held(&c, &cell, leased).await?;
            let r = log::append(&c, &id, &keys, log, seq, &record).await;
            if matches!(r, Err(StateError::Conflict { .. })) && leased {
                // Another writer is in the incident: whatever the lock
                // says, this handle must not write again.
                let _ = lease::mark_lost(&c, &cell).await;
            }
            r
        });
        match &r {
            Ok(()) => self.set_count(log, Some(seq)),
            Err(_) => self.set_count(log, None),
        }
        r
    }

    fn read_head(&self) -> Result<Option<Vec<u8>>, StateError> {
        self.read_doc(self.keys.head())
    }

    fn write_head(&self, head: &[u8]) -> Result<(), StateError> {
        self.write_doc(self.keys.head(), head)
    }

    fn read_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        check_meta_name(name)?;
        self.read_doc(self.keys.meta(name))
    }

    fn write_meta(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        check_meta_name(name)?;
        self.write_doc(self.keys.meta(name), bytes)
    }
}

impl Drop for S3Incident {
    /// The lease goes with the handle, as a local flock does.
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            tracing::warn!(incident = %self.id, "could not release the lease (it expires on its own): {e}");
        }
    }
}
