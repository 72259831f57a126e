//! The incident state contract: what any backend (the local directory,
//! the shared store in S3 with conditional writes) must guarantee.
//!
//! A backend stores, per incident, two append-only logs of opaque records
//! (the journal and the audit trail), the trail's head, a few small named
//! metadata documents, and a lease that says who works on the incident.
//! It knows nothing of what a record means: the journal's resume logic and
//! the audit chain live above it (`journal.rs`, `audit.rs`) and are the
//! same for every backend, so a new backend cannot get them subtly wrong.
//!
//! The guarantees the engine relies on (contract 4, "Beyond one machine"):
//!
//! 1. **One holder.** [`StateStore::lock`] gives at most one live
//!    [`IncidentBackend`] per incident at a time; any other caller is
//!    refused with [`StateError::Locked`] naming the holder. A lease may
//!    expire ([`Lease::expires_at`]) so that another responder can take a
//!    dead holder's incident over and resume it; the holder keeps it with
//!    [`IncidentBackend::renew`] and learns it lost it from
//!    [`StateError::LeaseLost`].
//! 2. **Durable before the call.** A journal record, and every trail
//!    record appended before it, would survive a crash of this process and
//!    of the machine (fsync, or a PUT the store acknowledged) when
//!    [`IncidentBackend::append`] returns: the engine writes a journal
//!    intent and only then makes the AWS call. The trail's `applying`
//!    record is made durable with [`IncidentBackend::sync`] before the
//!    call; other trail records may be fsync'd together at the next of
//!    these points, a metadata write or the release (never lost to a crash
//!    of the process, which leaves what it wrote to the kernel).
//! 3. **Each sequence number written once.** Records are numbered 1, 2, 3…
//!    per log; `append(log, seq, ..)` creates record `seq` or fails with
//!    [`StateError::Conflict`] when that number is already taken (a writer
//!    that lost its lease without noticing). It never overwrites. This is
//!    what makes a lost lease harmless: the stale writer stops at its next
//!    record instead of forking the journal or the chain.
//! 4. **Read back whole.** [`IncidentBackend::read_log`] returns every
//!    complete record in sequence order. A record whose write never
//!    completed (a torn local line) is dropped and reported in
//!    [`LogContents::torn_bytes`], never returned half.
//!
//! The trait is blocking on purpose: the engine holds the incident's mutex
//! for exactly one append and must not make the AWS call before the append
//! is durable, so there is nothing to overlap. A network backend blocks the
//! calling thread for one request (e.g. on a runtime of its own); making
//! these methods `async` later changes the engine's mutex, not this
//! contract. Nothing here is a path: addresses are text for messages only.

use std::fmt;

use super::{Holder, IncidentId, Lease, StateError};

/// The two append-only logs of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// Intent and outcome of every mutation (resume, recover).
    Journal,
    /// The hash-chained trail of everything observed and done.
    Audit,
}

impl LogKind {
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Journal => "journal",
            LogKind::Audit => "audit trail",
        }
    }
}

/// A log as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogContents {
    /// Each complete record's exact bytes (no line terminator), record 1
    /// first. The audit chain hashes exactly these bytes.
    pub records: Vec<Vec<u8>>,
    /// Bytes of an incomplete last record that were dropped (a local write
    /// torn by a crash). Always 0 for a store whose writes are atomic.
    pub torn_bytes: usize,
}

/// An audit trail as stored, for `audit verify` and `evidence verify`,
/// which read it without taking the lease (an investigator may check a
/// trail while a run appends to it, or check a copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trail {
    /// Where the trail is, for messages (the file's path, locally).
    pub address: String,
    /// Where its head is, for messages.
    pub head_address: String,
    /// The trail as JSON lines: each record's exact bytes and `\n`, in the
    /// order stored. Unrepaired: an incomplete last record is kept (without
    /// `\n`) so that verification reports it.
    pub bytes: Vec<u8>,
    /// The head's bytes, `None` when there is none.
    pub head: Option<Vec<u8>>,
}

/// Where incidents live: opens one under its lease, or reads a trail.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Where the incident lives, for messages (a path, an `s3://` URL).
    fn address(&self, id: &IncidentId) -> String;

    /// Whether the incident was ever opened (its metadata exists).
    fn exists(&self, id: &IncidentId) -> Result<bool, StateError>;

    /// Creates the incident if it is new and takes its lease for `holder`;
    /// refused with [`StateError::Locked`] (naming the current holder) while
    /// another holds a live lease. The lease is given up when the returned
    /// handle is released or dropped.
    fn lock(&self, id: &IncidentId, holder: Holder)
        -> Result<Box<dyn IncidentBackend>, StateError>;

    /// The incident's audit trail and head, read without the lease;
    /// [`StateError::NoTrail`] when there is none.
    fn read_trail(&self, id: &IncidentId) -> Result<Trail, StateError>;
}

/// One incident, held under its lease. Methods take `&self`: the journal
/// and the trail each hold the handle, and the engine already serialises
/// every call behind the incident's mutex.
pub trait IncidentBackend: Send + Sync + fmt::Debug {
    /// Where the incident lives, for messages.
    fn address(&self) -> String;

    /// Where one log lives, for messages (`Corrupt` names it).
    fn log_address(&self, log: LogKind) -> String;

    /// The lease as held now.
    fn lease(&self) -> Lease;

    /// Extends the lease (the heartbeat); [`StateError::LeaseLost`] when
    /// another responder took the incident over. A no-op for a lease that
    /// cannot expire.
    fn renew(&self) -> Result<(), StateError>;

    /// Gives the lease up now rather than when the handle is dropped.
    fn release(&self) -> Result<(), StateError>;

    /// Every complete record of `log`, in sequence order (guarantee 4); a
    /// torn tail is cut off so the next append follows the last complete
    /// record.
    fn read_log(&self, log: LogKind) -> Result<LogContents, StateError>;

    /// Creates record `seq` of `log` (the next number); [`StateError::Conflict`]
    /// when `seq` is already written (guarantee 3). A journal record is
    /// durable when this returns, and so is every trail record appended
    /// before it (guarantee 2); a trail record is durable at the latest at
    /// the next journal record, metadata write or release.
    fn append(&self, log: LogKind, seq: u64, record: &[u8]) -> Result<(), StateError>;

    /// Makes every record of `log` appended so far durable: the trail's
    /// `applying` record, which precedes an AWS call. A no-op where every
    /// append already is.
    fn sync(&self, log: LogKind) -> Result<(), StateError> {
        let _ = log;
        Ok(())
    }

    /// The audit trail's head, if any. It is replaced after every trail
    /// append; a head that lags one record behind after a crash is caught
    /// up by the trail on the next open, so it need not be fsync'd.
    fn read_head(&self) -> Result<Option<Vec<u8>>, StateError>;

    /// Replaces the head atomically (readers see the old or the new one).
    fn write_head(&self, head: &[u8]) -> Result<(), StateError>;

    /// A small named document (`incident`, `custody`, ...), if written.
    fn read_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StateError>;

    /// Replaces a small named document atomically and durably.
    fn write_meta(&self, name: &str, bytes: &[u8]) -> Result<(), StateError>;
}

/// Metadata names are plain words, so that any backend can use them as a
/// file name or a key without escaping.
pub fn check_meta_name(name: &str) -> Result<(), StateError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StateError::BadMetaName(name.to_string()))
    }
}
