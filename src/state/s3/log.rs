//! The journal and the audit trail in a shared store: one object a record,
//! created once.
//!
//! `append(log, seq, ..)` is a PUT with `If-None-Match: *` on the record's
//! own key: S3 lets exactly one writer create it, so exactly one writer
//! claims each sequence number and a stale holder gets
//! [`StateError::Conflict`] instead of overwriting or forking the log. A
//! PUT is atomic: a record is whole or absent, never torn.
//!
//! Reading lists the log's prefix (every page) and fetches the records, a
//! few at a time, in sequence order. A listed key firebreak did not write,
//! or a gap in the numbers (a deleted record), is damage: the journal
//! refuses to guess past it (`Corrupt`); the trail, read for `audit verify`,
//! is handed over as stored so that verification names the break.

use aws_sdk_s3::Client;
use futures::{StreamExt, TryStreamExt};

use super::keys::Keys;
use super::objects::{self, Cond, Put, Target, PARALLEL_READS};
use crate::state::audit::Head;
use crate::state::{IncidentId, LogKind, StateError, Trail};

/// The records of `log` as stored: `(seq, bytes)` in sequence order, gaps
/// and all.
pub async fn fetch(
    c: &Client,
    keys: &Keys,
    log: LogKind,
    page_size: Option<i32>,
) -> Result<Vec<(u64, Vec<u8>)>, StateError> {
    let prefix = keys.log_prefix(log);
    let mut seqs = Vec::new();
    for key in objects::list(c, &keys.bucket, &prefix, page_size).await? {
        match keys.seq_of(log, &key) {
            Some(seq) => seqs.push(seq),
            None => {
                return Err(StateError::Corrupt {
                    at: keys.url(&prefix),
                    line: 0,
                    detail: format!(
                        "{} is not a {} record firebreak wrote (records are <20-digit seq>.json)",
                        keys.url(&key),
                        log.name()
                    ),
                })
            }
        }
    }
    seqs.sort_unstable();
    futures::stream::iter(seqs)
        .map(|seq| async move {
            let key = keys.record(log, seq);
            match objects::get(
                c,
                Target {
                    bucket: &keys.bucket,
                    key: &key,
                },
            )
            .await?
            {
                Some(obj) => Ok((seq, obj.bytes)),
                None => Err(StateError::Corrupt {
                    at: keys.url(&keys.log_prefix(log)),
                    line: seq as usize,
                    detail: format!(
                        "record {seq} was listed, then gone when read: it is being deleted"
                    ),
                }),
            }
        })
        .buffered(PARALLEL_READS)
        .try_collect()
        .await
}

/// Every record of `log`, record 1 first; a gap is damage.
pub async fn read(
    c: &Client,
    keys: &Keys,
    log: LogKind,
    page_size: Option<i32>,
) -> Result<Vec<Vec<u8>>, StateError> {
    let records = fetch(c, keys, log, page_size).await?;
    let mut out = Vec::with_capacity(records.len());
    for (i, (seq, bytes)) in records.into_iter().enumerate() {
        let want = i as u64 + 1;
        if seq != want {
            return Err(StateError::Corrupt {
                at: keys.url(&keys.log_prefix(log)),
                line: i + 1,
                detail: format!("record {want} is missing (deleted): the next one stored is {seq}"),
            });
        }
        out.push(bytes);
    }
    Ok(out)
}

/// Creates record `seq` of `log`, or [`StateError::Conflict`] when another
/// writer already has.
pub async fn append(
    c: &Client,
    id: &IncidentId,
    keys: &Keys,
    log: LogKind,
    seq: u64,
    record: &[u8],
) -> Result<(), StateError> {
    let key = keys.record(log, seq);
    match objects::put(
        c,
        Target {
            bucket: &keys.bucket,
            key: &key,
        },
        record,
        Cond::Create,
    )
    .await?
    {
        Put::Done { .. } => Ok(()),
        Put::Precondition => Err(StateError::Conflict {
            incident: id.to_string(),
            log: log.name(),
            seq,
            at: keys.url(&key),
        }),
    }
}

/// How many times the trail is read again while a writer is between a
/// record and its head, and how long apart.
const SETTLE_READS: u32 = 5;
const SETTLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// The trail and its head as stored, for `audit verify` (no lease).
///
/// The head is read *before* the records: a holder writes a record before
/// the head that names it, so every record the head names is then in the
/// listing, and a trail shorter than its head is a real truncation. A
/// trail *longer* than its head is usually a run caught between a record
/// and its head: read again a few times before handing it over, so that a
/// live run is not reported as tampered with.
pub async fn read_trail(
    c: &Client,
    keys: &Keys,
    page_size: Option<i32>,
) -> Result<Option<Trail>, StateError> {
    let head_key = keys.head();
    let mut attempt = 1;
    loop {
        let head = objects::get(
            c,
            Target {
                bucket: &keys.bucket,
                key: &head_key,
            },
        )
        .await?;
        let records = fetch(c, keys, LogKind::Audit, page_size).await?;
        if head.is_none() && records.is_empty() {
            return Ok(None);
        }
        let head_seq = head
            .as_ref()
            .and_then(|h| serde_json::from_slice::<Head>(&h.bytes).ok())
            .map(|h| h.seq);
        let last = records.last().map_or(0, |(seq, _)| *seq);
        let moving = head_seq.is_some_and(|h| last > h);
        if !moving || attempt == SETTLE_READS {
            let mut bytes = Vec::with_capacity(records.iter().map(|(_, r)| r.len() + 1).sum());
            for (_, r) in records {
                bytes.extend_from_slice(&r);
                bytes.push(b'\n');
            }
            return Ok(Some(Trail {
                address: keys.url(&keys.log_prefix(LogKind::Audit)),
                head_address: keys.url(&head_key),
                bytes,
                head: head.map(|h| h.bytes),
            }));
        }
        attempt += 1;
        tokio::time::sleep(SETTLE_PAUSE).await;
    }
}
