//! A trail's log files in its S3 bucket:
//! `[PREFIX/]AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/*.json.gz`.
//!
//! Each file is streamed: S3's chunks go through a small bounded channel to
//! a blocking task that gunzips and parses one record at a time and keeps
//! only the records of the window that concern the function or its role.
//! Memory holds a few chunks and one record, whatever the file's size.

use std::collections::BTreeMap;
use std::io::{self, Read};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::{json, Value};

use super::records::{scan, Matcher};
use super::window::{parse_time, Window};
use crate::action::ActionError;
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};

/// How long after its last event CloudTrail may write a log file: files
/// named (stamped) later than the window's end by more than this are not
/// read, nor are files stamped before the window started.
const DELIVERY: i64 = 60;

/// Chunks in flight between S3 and the parser.
const CHANNEL_CHUNKS: usize = 4;

#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub bucket: &'a str,
    /// The trail's prefix, before `AWSLogs/` (may be empty).
    pub prefix: &'a str,
    pub account: &'a str,
    pub region: &'a str,
}

impl Source<'_> {
    pub fn day_prefix(&self, day: chrono::NaiveDate) -> String {
        let base = format!(
            "AWSLogs/{}/CloudTrail/{}/{}/",
            self.account,
            self.region,
            day.format("%Y/%m/%d")
        );
        match self.prefix.trim_matches('/') {
            "" => base,
            p => format!("{p}/{base}"),
        }
    }

    pub fn describe(&self) -> String {
        match self.prefix.trim_matches('/') {
            "" => format!(
                "s3://{}/AWSLogs/{}/CloudTrail/{}/",
                self.bucket, self.account, self.region
            ),
            p => format!(
                "s3://{}/{p}/AWSLogs/{}/CloudTrail/{}/",
                self.bucket, self.account, self.region
            ),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// Matching records, deduplicated by `eventID`, oldest first.
    pub records: Vec<Value>,
    /// Every file read: key, size and ETag as listed.
    pub files: Vec<Value>,
    pub records_read: u64,
}

/// `..._CloudTrail_us-east-1_20261123T0815Z_abcd.json.gz` → its time stamp.
fn stamp_of(key: &str) -> Option<DateTime<Utc>> {
    let name = key.rsplit('/').next()?;
    let stamp = name
        .split('_')
        .find(|p| p.len() == 14 && p.ends_with('Z') && p.as_bytes().get(8) == Some(&b'T'))?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ")
        .ok()
        .map(|t| t.and_utc())
}

fn worth_reading(key: &str, window: &Window) -> bool {
    if !key.ends_with(".json.gz") {
        return false;
    }
    match stamp_of(key) {
        // Unstamped names are read: better a file too many than a gap.
        None => true,
        Some(t) => {
            t >= window.start - Duration::minutes(5)
                && t <= window.end + Duration::minutes(DELIVERY)
        }
    }
}

pub async fn collect(
    s3: &aws_sdk_s3::Client,
    source: &Source<'_>,
    window: &Window,
    matcher: &Matcher,
) -> Result<Found, ActionError> {
    let mut found = Found::default();
    let mut by_id: BTreeMap<(DateTime<Utc>, String), Value> = BTreeMap::new();
    for day in window.days(Duration::minutes(DELIVERY)) {
        let prefix = source.day_prefix(day);
        let mut pages = s3
            .list_objects_v2()
            .bucket(source.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        let mut listed = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                let mut err = classify("ListObjectsV2", "s3:ListBucket", format!("s3://{}/{prefix}", source.bucket), e);
                if err.kind == AwsErrorKind::NotFound {
                    err.message = format!("trail bucket {} does not exist", source.bucket);
                    err.hint = "check `trail_bucket`: the bucket the trail delivers to (`aws cloudtrail describe-trails` shows it as S3BucketName)".into();
                }
                err
            })?;
            for o in page.contents() {
                if let Some(key) = o.key() {
                    listed.push(json!({"key": key, "size": o.size(), "etag": o.e_tag()}));
                }
            }
        }
        listed.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
        for file in listed {
            let key = file["key"].as_str().unwrap_or_default().to_string();
            if !worth_reading(&key, window) {
                continue;
            }
            let (read, matched) = read_file(s3, source.bucket, &key, window, matcher).await?;
            found.records_read += read;
            for r in matched {
                let at = r["eventTime"]
                    .as_str()
                    .and_then(|t| parse_time(t).ok())
                    .unwrap_or_default();
                let id = r["eventID"].as_str().unwrap_or_default().to_string();
                by_id.entry((at, id)).or_insert(r);
            }
            found.files.push(file);
        }
    }
    found.records = by_id.into_values().collect();
    Ok(found)
}

/// Bytes from S3 as a blocking `Read`, fed through a bounded channel.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(Ok(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn bad_file(bucket: &str, key: &str, detail: String) -> ActionError {
    AwsError::new(
        "GetObject",
        format!("s3://{bucket}/{key}"),
        AwsErrorKind::Other,
        format!("not a readable CloudTrail log file: {detail}"),
        "a trail's log files are gzip'd JSON with a Records list; a damaged or altered file is itself a finding: preserve it, and check `trail_prefix` points at the trail's folder",
    )
    .into()
}

async fn read_file(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    window: &Window,
    matcher: &Matcher,
) -> Result<(u64, Vec<Value>), ActionError> {
    let where_ = format!("s3://{bucket}/{key}");
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| classify("GetObject", "s3:GetObject", where_.clone(), e))?;
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    let (window, matcher) = (*window, matcher.clone());
    let parser = tokio::task::spawn_blocking(move || {
        let mut matched = Vec::new();
        let reader = ChunkReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        };
        let read = scan(reader, |r| {
            let in_window = r["eventTime"]
                .as_str()
                .and_then(|t| parse_time(t).ok())
                .is_some_and(|t| window.contains(t));
            if in_window && matcher.matches(&r) {
                matched.push(r);
            }
        })?;
        Ok::<_, String>((read, matched))
    });
    let mut body = out.body;
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => {
                // The parser quit early (a bad file): its error says why.
                if tx.send(Ok(chunk.to_vec())).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx
                    .send(Err(io::Error::other(format!(
                        "the download failed midway: {e}"
                    ))))
                    .await;
                break;
            }
        }
    }
    drop(tx);
    match parser.await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(detail)) => Err(bad_file(bucket, key, detail)),
        Err(e) => Err(bad_file(bucket, key, format!("the parser stopped: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_their_time_and_decide_what_is_read() {
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/23/111122223333_CloudTrail_us-east-1_20261123T0815Z_AbCd.json.gz";
        assert_eq!(stamp_of(key), parse_time("2026-11-23T08:15:00Z").ok());
        let w = Window {
            start: parse_time("2026-11-23T08:00:00Z").unwrap_or_default(),
            end: parse_time("2026-11-23T09:00:00Z").unwrap_or_default(),
        };
        assert!(worth_reading(key, &w));
        assert!(!worth_reading(&key.replace("0815Z", "0700Z"), &w));
        assert!(
            worth_reading(&key.replace("0815Z", "0955Z"), &w),
            "delivered late"
        );
        assert!(!worth_reading(&key.replace("0815Z", "1015Z"), &w));
        assert!(!worth_reading(&key.replace(".json.gz", ".json"), &w));
        assert!(worth_reading("AWSLogs/x/odd-name.json.gz", &w));
        let s = Source {
            bucket: "trail",
            prefix: "/org/",
            account: "111122223333",
            region: "us-east-1",
        };
        assert_eq!(
            s.day_prefix(chrono::NaiveDate::from_ymd_opt(2026, 11, 3).unwrap_or_default()),
            "org/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/03/"
        );
    }
}
