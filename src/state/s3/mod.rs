//! The shared backend: incident state in S3 with conditional writes, so
//! that any number of responders on any number of machines share it
//! ("Beyond one machine" in the design).
//!
//! - `keys`: `s3://BUCKET/PREFIX` and the one key layout;
//! - `lease`: the lock object, taken, renewed and released by CAS
//!   (`If-Match: <ETag>`), with its heartbeat;
//! - `log`: one write-once object a record (`If-None-Match: *`): exactly
//!   one writer claims each sequence number; listing reads them back;
//! - `incident`: the held incident (head and metadata CAS'd too);
//! - `objects`: the requests, retried in one place, errors made readable;
//! - `worker`: the store's own thread and runtime, which is how these
//!   blocking traits call the async SDK safely from any caller.
//!
//! IAM: `s3:GetObject` and `s3:PutObject` on `arn:aws:s3:::BUCKET/PREFIX/*`,
//! `s3:ListBucket` on `arn:aws:s3:::BUCKET` (for the prefix). No delete.

mod incident;
mod keys;
mod lease;
mod log;
mod objects;
mod worker;

use std::sync::Arc;

pub use incident::S3Incident;
pub use keys::{LocationError, S3Location};
pub use lease::LeaseTerms;

use super::{Holder, IncidentBackend, IncidentId, StateError, StateStore, Trail};
use crate::aws::AwsSettings;
use lease::LeaseCell;
use worker::{ClientSource, Worker};

/// Knobs a test turns (small listing pages prove pagination).
#[derive(Debug, Clone, Copy, Default)]
struct Tuning {
    /// Keys a ListObjectsV2 page; S3's default (1,000) when `None`.
    page_size: Option<i32>,
}

/// Incidents under `s3://BUCKET/PREFIX` (`--state`).
#[derive(Debug, Clone)]
pub struct S3Store {
    location: S3Location,
    worker: Worker,
    terms: LeaseTerms,
    tuning: Tuning,
}

impl S3Store {
    /// A store at `location`, reached as `settings` say (region, profile,
    /// endpoint; `dry_run` is not used: see `aws/state_client.rs`). Starts
    /// the store's request thread; nothing is sent until the first call,
    /// so a missing bucket or a permission is reported by that call.
    pub fn connect(
        location: S3Location,
        settings: AwsSettings,
        terms: LeaseTerms,
    ) -> Result<Self, StateError> {
        let worker = Worker::start(ClientSource::Settings(settings), location.to_string())?;
        Ok(Self {
            location,
            worker,
            terms,
            tuning: Tuning::default(),
        })
    }

    /// A store using `client` (build it with `aws::state_s3_client_from`:
    /// the store retries by itself and needs the SDK's retries off).
    pub fn with_client(
        location: S3Location,
        client: aws_sdk_s3::Client,
        terms: LeaseTerms,
    ) -> Result<Self, StateError> {
        let worker = Worker::start(ClientSource::Ready(client), location.to_string())?;
        Ok(Self {
            location,
            worker,
            terms,
            tuning: Tuning::default(),
        })
    }

    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// Lists `n` keys a page instead of S3's 1,000 (tests of pagination).
    #[doc(hidden)]
    pub fn with_page_size(mut self, n: i32) -> Self {
        self.tuning.page_size = Some(n);
        self
    }

    /// A handle on an incident that never took its lease: what a responder
    /// whose lease lapsed without it noticing amounts to. For the
    /// conformance suite's second writer; nothing else may use it.
    #[doc(hidden)]
    pub fn unleased(&self, id: &IncidentId) -> Box<dyn IncidentBackend> {
        let keys = self.location.incident(id);
        let doc = lease::LockDoc {
            state: lease::LockState::Held,
            holder: Holder::current("intruder"),
            token: String::new(),
            lease_ms: 0,
            expires_at: String::new(),
            heartbeat: String::new(),
            renewals: 0,
        };
        let cell = LeaseCell::new(id.clone(), keys.clone(), self.terms, doc, String::new());
        Box::new(S3Incident::new(
            id.clone(),
            keys,
            self.worker.clone(),
            self.tuning,
            Arc::new(cell),
            None,
        ))
    }
}

impl StateStore for S3Store {
    fn address(&self, id: &IncidentId) -> String {
        self.location.incident(id).address()
    }

    fn exists(&self, id: &IncidentId) -> Result<bool, StateError> {
        let keys = self.location.incident(id);
        self.worker.call(move |c| async move {
            let key = keys.meta(super::META_INCIDENT);
            let t = objects::Target {
                bucket: &keys.bucket,
                key: &key,
            };
            // GetObject, not HeadObject: a HEAD's bare 404 cannot tell a
            // missing bucket from a new incident.
            Ok(objects::get(&c, t).await?.is_some())
        })
    }

    fn lock(
        &self,
        id: &IncidentId,
        holder: Holder,
    ) -> Result<Box<dyn IncidentBackend>, StateError> {
        let (keys, terms, owned_id) = (self.location.incident(id), self.terms, id.clone());
        let (cell, heartbeat) = self.worker.call(move |c| async move {
            let cell = Arc::new(lease::take(&c, &owned_id, &keys, holder, terms).await?);
            // The heartbeat lives on the store's runtime: it beats while
            // the caller's thread is busy or blocked.
            let beat = tokio::spawn(lease::heartbeat(c, cell.clone()));
            Ok((cell, beat.abort_handle()))
        })?;
        Ok(Box::new(S3Incident::new(
            id.clone(),
            self.location.incident(id),
            self.worker.clone(),
            self.tuning,
            cell,
            Some(heartbeat),
        )))
    }

    fn read_trail(&self, id: &IncidentId) -> Result<Trail, StateError> {
        let (keys, page) = (self.location.incident(id), self.tuning.page_size);
        let found = self
            .worker
            .call(move |c| async move { log::read_trail(&c, &keys, page).await })?;
        match found {
            Some(t) => Ok(t),
            // Opened, nothing recorded yet: an empty trail, which
            // verification reports as such.
            None if self.exists(id)? => Ok(Trail {
                address: self.address(id),
                head_address: self
                    .location
                    .incident(id)
                    .url(&self.location.incident(id).head()),
                bytes: Vec::new(),
                head: None,
            }),
            None => Err(StateError::NoTrail {
                at: self.address(id),
            }),
        }
    }
}
