//! The lease on an incident in a shared store: one small lock object
//! swapped by compare-and-swap (`If-Match: <ETag>`), the way Terraform's S3
//! backend locks state without DynamoDB.
//!
//! - **Take:** create the lock (`If-None-Match: *`), or replace one that is
//!   free or whose lease has expired (`If-Match` on the ETag just read).
//!   Two responders racing for it both send a conditional PUT on the same
//!   version; S3 accepts exactly one, the other gets 412 and reads the
//!   winner's lock: [`StateError::Locked`] naming it.
//! - **Keep:** the holder renews (heartbeat) every quarter of the lease, on
//!   the store's own thread, whatever the engine is doing; each renewal is
//!   a CAS on the ETag of the holder's last write, so a holder whose lock
//!   was taken over learns it at its next renewal ([`StateError::LeaseLost`])
//!   and never writes the lock again.
//! - **Give up:** a conditional overwrite marking the lock `free` (our
//!   LocalStack answers DeleteObject with `If-Match` NotImplemented, and an
//!   unconditional delete could remove a new holder's lock).
//!
//! Expiry is judged by the taker's clock against the holder's
//! `expires_at`: responders need synchronised clocks (NTP, as on any AWS
//! host), and the lease must be much longer than their skew. Every write a
//! holder makes to the incident is itself conditional (records are created
//! once, metadata and head are CAS'd), so a holder that lost its lease
//! without noticing is stopped at its next write rather than forking state.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::keys::Keys;
use super::objects::{self, Cond, Put, Target};
use crate::state::{Holder, IncidentId, Lease, StateError};

/// How long a lease lasts and how often its holder renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTerms {
    /// After this long without a renewal, another responder may take the
    /// incident over.
    pub ttl: Duration,
    /// How often the holder renews: a quarter of `ttl`, so that three
    /// renewals in a row can fail (a network blip) before the lease lapses.
    pub heartbeat: Duration,
}

impl LeaseTerms {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            heartbeat: ttl / 4,
        }
    }
}

impl Default for LeaseTerms {
    /// A minute: a crashed responder's incident is taken over within a
    /// minute, and a live one renews it every 15 s.
    fn default() -> Self {
        Self::new(Duration::from_secs(60))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    Held,
    /// Released by its last holder (named in `holder`).
    Free,
}

/// The lock object's body (`lock.json`). Every write of it differs (token,
/// renewal count, times), so its ETag names one write: no ABA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockDoc {
    pub state: LockState,
    pub holder: Holder,
    /// This lease's identity, random: tells two leases of one host apart.
    pub token: String,
    pub lease_ms: u64,
    /// RFC 3339: after this, another responder may take the incident over.
    pub expires_at: String,
    /// RFC 3339: the holder's last renewal (or the take).
    pub heartbeat: String,
    pub renewals: u64,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn later(d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| Utc::now().checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl LockDoc {
    fn new(holder: Holder, token: String, terms: LeaseTerms) -> Self {
        let now = Utc::now();
        Self {
            state: LockState::Held,
            holder,
            token,
            lease_ms: u64::try_from(terms.ttl.as_millis()).unwrap_or(u64::MAX),
            expires_at: rfc3339(later(terms.ttl)),
            heartbeat: rfc3339(now),
            renewals: 0,
        }
    }

    pub fn lease(&self) -> Lease {
        Lease {
            holder: self.holder.clone(),
            expires_at: Some(self.expires_at.clone()),
        }
    }

    fn expires(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.expires_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Whether someone holds the incident now (by this machine's clock).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.state == LockState::Held && self.expires().is_some_and(|t| now < t)
    }

    fn renewed(&self, terms: LeaseTerms) -> Self {
        Self {
            expires_at: rfc3339(later(terms.ttl)),
            heartbeat: rfc3339(Utc::now()),
            renewals: self.renewals + 1,
            ..self.clone()
        }
    }

    fn freed(&self) -> Self {
        let now = rfc3339(Utc::now());
        Self {
            state: LockState::Free,
            expires_at: now.clone(),
            heartbeat: now,
            ..self.clone()
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    fn parse(bytes: &[u8], at: String) -> Result<Self, StateError> {
        let doc: Self = serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
            at: at.clone(),
            line: 1,
            detail: format!("the lock object is not firebreak's: {e}"),
        })?;
        if doc.expires().is_none() {
            return Err(StateError::Corrupt {
                at,
                line: 1,
                detail: format!("the lock's expires_at `{}` is not a time", doc.expires_at),
            });
        }
        Ok(doc)
    }
}

/// What a handle knows of its own lease.
#[derive(Debug)]
pub enum Status {
    Held,
    /// Taken over by another responder (named when it could be read).
    Lost(Option<Lease>),
    Released,
}

#[derive(Debug)]
pub struct Current {
    pub doc: LockDoc,
    /// The ETag of our last write of the lock: the next CAS is on it.
    pub etag: String,
    pub status: Status,
}

/// One handle's lease, shared with its heartbeat. `state` is only locked
/// on the store's thread (an async mutex: held across the CAS, so that the
/// heartbeat and a foreground renewal never race each other's ETag);
/// `view` is what `lease()` answers from any thread without waiting.
#[derive(Debug)]
pub struct LeaseCell {
    pub state: tokio::sync::Mutex<Current>,
    view: std::sync::Mutex<Lease>,
    pub id: IncidentId,
    pub keys: Keys,
    pub terms: LeaseTerms,
}

impl LeaseCell {
    pub fn new(id: IncidentId, keys: Keys, terms: LeaseTerms, doc: LockDoc, etag: String) -> Self {
        Self {
            view: std::sync::Mutex::new(doc.lease()),
            state: tokio::sync::Mutex::new(Current {
                doc,
                etag,
                status: Status::Held,
            }),
            id,
            keys,
            terms,
        }
    }

    pub fn view(&self) -> Lease {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_view(&self, lease: Lease) {
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = lease;
    }

    fn lost(&self, lease: Option<Lease>) -> StateError {
        StateError::LeaseLost {
            incident: self.id.to_string(),
            lease: lease.map(Box::new),
        }
    }
}

/// Who holds the incident now, as far as the lock says (for messages).
pub async fn current_holder(c: &Client, keys: &Keys) -> Option<Lease> {
    let key = keys.lock();
    let obj = objects::get(
        c,
        Target {
            bucket: &keys.bucket,
            key: &key,
        },
    )
    .await
    .ok()??;
    LockDoc::parse(&obj.bytes, keys.url(&key))
        .ok()
        .filter(|d| d.state == LockState::Held)
        .map(|d| d.lease())
}

/// Takes the incident's lease for `holder`, or says who holds it.
pub async fn take(
    c: &Client,
    id: &IncidentId,
    keys: &Keys,
    holder: Holder,
    terms: LeaseTerms,
) -> Result<LeaseCell, StateError> {
    let key = keys.lock();
    let t = || Target {
        bucket: &keys.bucket,
        key: &key,
    };
    let token = objects::nonce()?;
    // Three rounds: each lost race means another responder wrote the lock
    // in between, and the next read names it.
    for _ in 0..3 {
        let found = objects::get(c, t()).await?;
        let mine = LockDoc::new(holder.clone(), token.clone(), terms);
        let put = match &found {
            None => objects::put(c, t(), &mine.to_bytes(), Cond::Create).await?,
            Some(obj) => {
                let theirs = LockDoc::parse(&obj.bytes, keys.url(&key))?;
                if theirs.is_live(Utc::now()) {
                    return Err(StateError::Locked {
                        incident: id.to_string(),
                        lease: Some(Box::new(theirs.lease())),
                    });
                }
                let put = objects::put(c, t(), &mine.to_bytes(), Cond::Match(&obj.etag)).await?;
                if theirs.state == LockState::Held && matches!(put, Put::Done { .. }) {
                    tracing::warn!(
                        incident = %id,
                        "took the incident over from {} (its lease expired at {})",
                        theirs.holder,
                        theirs.expires_at
                    );
                }
                put
            }
        };
        if let Put::Done { etag } = put {
            return Ok(LeaseCell::new(id.clone(), keys.clone(), terms, mine, etag));
        }
    }
    Err(StateError::Locked {
        incident: id.to_string(),
        lease: current_holder(c, keys).await.map(Box::new),
    })
}

/// Extends the lease by CAS on our last write; [`StateError::LeaseLost`]
/// when the lock moved (another responder took it) or was released.
pub async fn renew(c: &Client, cell: &LeaseCell) -> Result<(), StateError> {
    let mut cur = cell.state.lock().await;
    match &cur.status {
        Status::Held => {}
        Status::Lost(l) => return Err(cell.lost(l.clone())),
        Status::Released => return Err(cell.lost(None)),
    }
    let key = cell.keys.lock();
    let next = cur.doc.renewed(cell.terms);
    let t = Target {
        bucket: &cell.keys.bucket,
        key: &key,
    };
    match objects::put(c, t, &next.to_bytes(), Cond::Match(&cur.etag)).await? {
        Put::Done { etag } => {
            cell.set_view(next.lease());
            cur.doc = next;
            cur.etag = etag;
            Ok(())
        }
        Put::Precondition => {
            let now = current_holder(c, &cell.keys).await;
            cur.status = Status::Lost(now.clone());
            Err(cell.lost(now))
        }
    }
}

/// Before a write: the lease must still be ours. A lease with less than a
/// quarter of its term left (the heartbeat has been failing) is renewed
/// first, which also proves nobody took it over.
pub async fn ensure_held(c: &Client, cell: &LeaseCell) -> Result<(), StateError> {
    {
        let cur = cell.state.lock().await;
        match &cur.status {
            Status::Held => {}
            Status::Lost(l) => return Err(cell.lost(l.clone())),
            Status::Released => return Err(cell.lost(None)),
        }
        let margin = chrono::Duration::from_std(cell.terms.ttl / 4).unwrap_or_default();
        if cur.doc.expires().is_some_and(|t| Utc::now() + margin < t) {
            return Ok(());
        }
    }
    renew(c, cell).await
}

/// Marks the lease lost after another writer was found in the incident
/// (a record or document written behind our back).
pub async fn mark_lost(c: &Client, cell: &LeaseCell) -> StateError {
    let now = current_holder(c, &cell.keys).await;
    let mut cur = cell.state.lock().await;
    if matches!(cur.status, Status::Held) {
        cur.status = Status::Lost(now.clone());
    }
    cell.lost(now)
}

/// Gives the lease up: a conditional overwrite marking the lock free. A
/// lock that already moved on (taken over) is left alone.
pub async fn release(c: &Client, cell: &LeaseCell) -> Result<(), StateError> {
    let mut cur = cell.state.lock().await;
    let held = matches!(cur.status, Status::Held);
    cur.status = Status::Released;
    if !held {
        return Ok(());
    }
    let key = cell.keys.lock();
    let t = Target {
        bucket: &cell.keys.bucket,
        key: &key,
    };
    objects::put(c, t, &cur.doc.freed().to_bytes(), Cond::Match(&cur.etag)).await?;
    Ok(())
}

/// The heartbeat: renews every `terms.heartbeat` until the lease is given
/// up or lost. A failed renewal that may pass (the network) is tried again
/// at the next beat; writes meanwhile check the lease themselves
/// ([`ensure_held`]).
pub async fn heartbeat(c: Client, cell: Arc<LeaseCell>) {
    loop {
        tokio::time::sleep(cell.terms.heartbeat).await;
        match renew(&c, &cell).await {
            Ok(()) => {}
            Err(StateError::LeaseLost { lease, .. }) => {
                if let Some(l) = lease {
                    tracing::warn!(incident = %cell.id, "lease lost: the incident is now held by {l}");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(incident = %cell.id, "lease renewal failed (retried at the next beat): {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(terms: LeaseTerms) -> LockDoc {
        LockDoc::new(Holder::current("firebreak run"), "t".into(), terms)
    }

    #[test]
    fn a_lease_is_live_until_it_expires_or_is_freed() {
        let d = doc(LeaseTerms::new(Duration::from_secs(60)));
        assert!(d.is_live(Utc::now()));
        assert!(!d.is_live(Utc::now() + chrono::Duration::seconds(61)));
        assert!(!d.freed().is_live(Utc::now()));
        let r = d.renewed(LeaseTerms::new(Duration::from_secs(600)));
        assert_eq!(r.renewals, 1);
        assert!(r.is_live(Utc::now() + chrono::Duration::seconds(300)));
        assert_eq!(r.token, d.token);
    }

    #[test]
    fn every_write_of_the_lock_differs() {
        let d = doc(LeaseTerms::default());
        assert_ne!(d.to_bytes(), d.renewed(LeaseTerms::default()).to_bytes());
        let back = LockDoc::parse(&d.to_bytes(), "x".into()).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.lease().expires_at, Some(d.expires_at.clone()));
    }

    #[test]
    fn a_lock_that_is_not_ours_is_reported_not_taken() {
        assert!(matches!(
            LockDoc::parse(b"{\"who\":1}", "s3://b/INC/lock.json".into()),
            Err(StateError::Corrupt { .. })
        ));
        let mut d = doc(LeaseTerms::default());
        d.expires_at = "soon".into();
        assert!(matches!(
            LockDoc::parse(&serde_json::to_vec(&d).unwrap(), "x".into()),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn the_heartbeat_beats_four_times_a_lease() {
        let t = LeaseTerms::new(Duration::from_secs(2));
        assert_eq!(t.heartbeat, Duration::from_millis(500));
    }
}
