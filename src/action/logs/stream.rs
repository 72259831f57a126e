//! Streaming one log window into the forensic bucket: pages of
//! FilterLogEvents → gzip JSON-lines parts → `ForensicStore::put`, one part
//! at a time, so memory holds at most one page and one part however large
//! the log is.
//!
//! Parts are plain objects rather than one S3 multipart upload: each part
//! then gets a full-object SHA-256 that S3 itself verifies on write (S3's
//! SHA-256 for a multipart upload is only a checksum of part checksums),
//! and `If-None-Match` makes a re-run's identical part a no-op. A part is
//! complete or absent; the snapshot as a whole is complete only once its
//! summary is written, last, and only then does a manifest list it.

use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::parts::{part_name, Line, Part, PartWriter};
use super::window::Window;
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};
use crate::evidence::store::ForensicStore;
use crate::evidence::EvidenceError;

/// Pauses after a page that still failed with throttling once the call
/// path (which paces FilterLogEvents at the run's `logs_filter` quota and
/// re-sends throttled requests itself) and the SDK's retries gave up:
/// someone else is spending the account's quota, so wait longer.
pub const THROTTLE_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// What to collect.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub log_group: &'a str,
    pub window: Window,
    /// Plain text an event's message must contain (checked here: LocalStack
    /// ignores `filterPattern`, and AWS matches it by terms).
    pub filter: Option<&'a str>,
    /// Compressed bytes per part.
    pub part_limit: usize,
    /// `<prefix>/logs/<group>/<window>`: parts go beneath it.
    pub dir: &'a str,
    /// For the test-only pause point after each stored part.
    pub step_id: &'a str,
}

/// One stored part, as S3 confirmed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPart {
    pub key: String,
    pub size: u64,
    pub sha256: String,
    pub events: u64,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Streamed {
    pub parts: Vec<StoredPart>,
    pub events: u64,
    /// Events the service returned that the text filter dropped.
    pub filtered_out: u64,
    pub pages: u64,
    /// Parts that were already stored with the same bytes (a resumed run).
    pub already_stored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("encoding log events failed: {0}")]
    Encode(#[from] std::io::Error),
}

/// Streams the window into parts under `req.dir`.
pub async fn stream(
    logs: &aws_sdk_cloudwatchlogs::Client,
    store: &ForensicStore,
    req: &Request<'_>,
) -> Result<Streamed, StreamError> {
    let mut writer = PartWriter::new(req.part_limit);
    let mut out = Streamed::default();
    let mut token: Option<String> = None;
    loop {
        let page = fetch(logs, req, token.clone())
            .await
            .map_err(|mut e| {
                // Say where the stream broke and that nothing looks complete.
                e.message = format!(
                    "{} (page {} of the stream, after {} events; the snapshot is incomplete: no summary and no manifest lists it)",
                    e.message,
                    out.pages + 1,
                    out.events
                );
                e
            })?;
        out.pages += 1;
        for ev in page.events() {
            let message = ev.message().unwrap_or_default();
            if req.filter.is_some_and(|f| !message.contains(f)) {
                out.filtered_out += 1;
                continue;
            }
            let line = Line {
                timestamp: ev.timestamp().unwrap_or_default(),
                ingestion_time: ev.ingestion_time().unwrap_or_default(),
                log_stream_name: ev.log_stream_name().unwrap_or_default(),
                event_id: ev.event_id().unwrap_or_default(),
                message,
            };
            out.events += 1;
            if let Some(part) = writer.push(&line)? {
                store_part(store, req, part, &mut out).await?;
            }
        }
        match page.next_token() {
            // The CLI's guard too: a token handed back unchanged would loop forever.
            Some(t) if token.as_deref() != Some(t) => token = Some(t.to_string()),
            _ => break,
        }
    }
    if let Some(part) = writer.close()? {
        store_part(store, req, part, &mut out).await?;
    }
    Ok(out)
}

async fn store_part(
    store: &ForensicStore,
    req: &Request<'_>,
    part: Part,
    out: &mut Streamed,
) -> Result<(), StreamError> {
    let key = format!("{}/{}", req.dir, part_name(part.number));
    let stored = store.put(&key, part.bytes).await?;
    if !stored.written {
        out.already_stored += 1;
    }
    out.parts.push(StoredPart {
        key: stored.key,
        size: stored.size,
        sha256: stored.sha256,
        events: part.events,
        first_timestamp: part.first_timestamp,
        last_timestamp: part.last_timestamp,
    });
    crate::hooks::pause_point("logs_part_stored", req.step_id);
    Ok(())
}

/// One page (paced on the call path), with backoff on throttling beyond
/// the call path's and the SDK's own retries.
async fn fetch(
    logs: &aws_sdk_cloudwatchlogs::Client,
    req: &Request<'_>,
    token: Option<String>,
) -> Result<FilterLogEventsOutput, AwsError> {
    let mut backoff = THROTTLE_BACKOFF.iter();
    loop {
        let result = logs
            .filter_log_events()
            .log_group_name(req.log_group)
            .start_time(req.window.start_ms)
            .end_time(req.window.end_ms)
            .set_filter_pattern(req.filter.and_then(super::window::filter_pattern))
            .set_next_token(token.clone())
            .send()
            .await;
        match result {
            Ok(page) => return Ok(page),
            Err(e) => {
                let err = classify(
                    "FilterLogEvents",
                    "logs:FilterLogEvents",
                    format!("log group {}", req.log_group),
                    e,
                );
                if err.kind == AwsErrorKind::Throttled {
                    if let Some(pause) = backoff.next() {
                        tracing::warn!(
                            log_group = req.log_group,
                            ?pause,
                            "FilterLogEvents throttled; backing off"
                        );
                        tokio::time::sleep(*pause).await;
                        continue;
                    }
                }
                return Err(err);
            }
        }
    }
}
