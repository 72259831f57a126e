//! Log events → gzip JSON lines, cut into parts of bounded size.
//!
//! The same events must give the same bytes, part for part: that is what
//! lets a re-run after a crash find each part already stored under its key
//! with the same SHA-256 (a no-op) instead of a duplicate. So the gzip
//! header carries no time and no file name, each line has a fixed field
//! order, and a part is cut at the first event boundary after its
//! compressed size reaches the limit (which depends only on the bytes
//! written so far).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use serde::Serialize;

/// One event as a line: CloudWatch's own field names, in a fixed order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line<'a> {
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub log_stream_name: &'a str,
    pub event_id: &'a str,
    pub message: &'a str,
}

/// A finished part, ready to upload.
#[derive(Debug)]
pub struct Part {
    /// 1-based.
    pub number: u32,
    pub bytes: Vec<u8>,
    pub events: u64,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
}

/// Builds one part at a time; memory holds at most one part (plus the
/// encoder's window), whatever the size of the log.
pub struct PartWriter {
    limit: usize,
    number: u32,
    current: Option<Open>,
}

struct Open {
    gz: GzEncoder<Vec<u8>>,
    events: u64,
    first: i64,
    last: i64,
}

impl PartWriter {
    /// `limit`: compressed bytes after which the part is closed.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            number: 0,
            current: None,
        }
    }

    /// Adds one event; returns the part it completed, if any.
    pub fn push(&mut self, line: &Line<'_>) -> std::io::Result<Option<Part>> {
        let open = match &mut self.current {
            Some(o) => o,
            None => self.current.insert(Open {
                // No mtime, no name: byte-identical output for the same events.
                gz: GzBuilder::new().write(
                    Vec::with_capacity(self.limit.min(1 << 20)),
                    Compression::default(),
                ),
                events: 0,
                first: line.timestamp,
                last: line.timestamp,
            }),
        };
        serde_json::to_writer(&mut open.gz, line)?;
        open.gz.write_all(b"\n")?;
        open.events += 1;
        open.last = line.timestamp;
        if open.gz.get_ref().len() >= self.limit {
            return self.close();
        }
        Ok(None)
    }

    /// Closes the part being built (none when no event arrived since the last).
    pub fn close(&mut self) -> std::io::Result<Option<Part>> {
        let Some(open) = self.current.take() else {
            return Ok(None);
        };
        self.number += 1;
        Ok(Some(Part {
            number: self.number,
            bytes: open.gz.finish()?,
            events: open.events,
            first_timestamp: open.first,
            last_timestamp: open.last,
        }))
    }
}

/// `part-00001.jsonl.gz`: zero-padded so keys sort in order.
pub fn part_name(number: u32) -> String {
    format!("part-{number:05}.jsonl.gz")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn events(n: usize) -> Vec<(i64, String)> {
        // Poorly compressible messages so that small limits cut several parts.
        (0..n)
            .map(|i| {
                let noise: String = (0..40)
                    .map(|j| char::from(b'a' + ((i * 7919 + j * 104_729) % 26) as u8))
                    .collect();
                (1_700_000_000_000 + i as i64, format!("event {i} {noise}"))
            })
            .collect()
    }

    fn write_all(evs: &[(i64, String)], limit: usize) -> Vec<Part> {
        let mut w = PartWriter::new(limit);
        let mut parts = Vec::new();
        for (i, (ts, msg)) in evs.iter().enumerate() {
            let id = i.to_string();
            let line = Line {
                timestamp: *ts,
                ingestion_time: ts + 5,
                log_stream_name: "2026/11/23/[$LATEST]abc",
                event_id: &id,
                message: msg,
            };
            parts.extend(w.push(&line).expect("push"));
        }
        parts.extend(w.close().expect("close"));
        parts
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut s = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut s)
            .expect("gunzip");
        s
    }

    #[test]
    fn the_same_events_give_byte_identical_parts() {
        let evs = events(20_000);
        let a = write_all(&evs, 16 * 1024);
        let b = write_all(&evs, 16 * 1024);
        assert!(a.len() > 3, "expected several parts, got {}", a.len());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.bytes, y.bytes, "part {} differs", x.number);
        }
        // gzip header: no mtime (bytes 4..8 zero), no FNAME flag.
        assert_eq!(&a[0].bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(a[0].bytes[3] & 0x08, 0);
    }

    #[test]
    fn parts_hold_every_event_once_in_order_as_json_lines() {
        let evs = events(5_000);
        let parts = write_all(&evs, 16 * 1024);
        let numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
        assert_eq!(numbers, (1..=parts.len() as u32).collect::<Vec<_>>());
        let mut seen = Vec::new();
        for p in &parts {
            let text = gunzip(&p.bytes);
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("json line"))
                .collect();
            assert_eq!(lines.len() as u64, p.events);
            assert_eq!(lines[0]["timestamp"], p.first_timestamp);
            assert_eq!(lines[lines.len() - 1]["timestamp"], p.last_timestamp);
            seen.extend(
                lines
                    .into_iter()
                    .map(|l| l["message"].as_str().map(str::to_string)),
            );
        }
        let want: Vec<Option<String>> = evs.iter().map(|(_, m)| Some(m.clone())).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_part_closes_soon_after_its_limit() {
        let limit = 64 * 1024;
        for p in write_all(&events(20_000), limit) {
            // The encoder holds back at most a deflate block before the cut.
            assert!(
                p.bytes.len() < limit + 256 * 1024,
                "part {} is {} bytes",
                p.number,
                p.bytes.len()
            );
        }
    }

    #[test]
    fn no_events_no_part() {
        assert!(write_all(&[], 1024).is_empty());
        assert_eq!(part_name(7), "part-00007.jsonl.gz");
    }
}
