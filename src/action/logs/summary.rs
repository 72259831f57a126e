//! The snapshot's summary: written last, so its presence is what says the
//! snapshot is complete. It lists every part with its SHA-256, the event
//! count, the first and last event times and the window asked for. It holds
//! no collection time, so a re-run writes exactly the same bytes.

use serde::{Deserialize, Serialize};

use super::stream::{StoredPart, Streamed};
use super::window::{rfc3339, Window};

pub const FORMAT: &str = "firebreak/logs-snapshot/v1";
/// A summary larger than this is not ours (one entry per part of 8 MiB).
pub const MAX_SUMMARY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub format: String,
    pub account: String,
    pub region: String,
    pub log_group: String,
    /// The window asked for, both ends inclusive.
    pub start: String,
    pub end: String,
    /// The text every event's message contains, when a filter was asked for.
    pub filter: Option<String>,
    pub events: u64,
    /// Events the service returned that the text filter dropped.
    pub filtered_out: u64,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    pub parts: Vec<StoredPart>,
}

impl Summary {
    pub fn new(
        account: &str,
        region: &str,
        log_group: &str,
        window: Window,
        filter: Option<&str>,
        s: &Streamed,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            account: account.into(),
            region: region.into(),
            log_group: log_group.into(),
            start: window.start(),
            end: window.end(),
            filter: filter.map(str::to_string),
            events: s.events,
            filtered_out: s.filtered_out,
            first_timestamp: s.parts.first().map(|p| rfc3339(p.first_timestamp)),
            last_timestamp: s.parts.last().map(|p| rfc3339(p.last_timestamp)),
            parts: s.parts.clone(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let s: Summary = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if s.format != FORMAT {
            return Err(format!("format is `{}`, expected `{FORMAT}`", s.format));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_round_trips_and_says_what_was_collected() {
        let streamed = Streamed {
            parts: vec![StoredPart {
                key: "k/part-00001.jsonl.gz".into(),
                size: 10,
                sha256: "ab".into(),
                events: 3,
                first_timestamp: 1_763_900_000_000,
                last_timestamp: 1_763_900_000_500,
            }],
            events: 3,
            filtered_out: 1,
            pages: 2,
            already_stored: 0,
        };
        let w = Window {
            start_ms: 1_763_800_000_000,
            end_ms: 1_763_900_001_000,
        };
        let s = Summary::new(
            "111122223333",
            "us-east-1",
            "/aws/lambda/f",
            w,
            Some("ERR"),
            &streamed,
        );
        assert_eq!(s.first_timestamp.as_deref(), Some("2025-11-23T12:13:20Z"));
        assert_eq!(
            s.last_timestamp.as_deref(),
            Some("2025-11-23T12:13:20.500Z")
        );
        assert_eq!(Summary::parse(&s.to_bytes()), Ok(s.clone()));
        assert!(Summary::parse(br#"{"format":"x"}"#).is_err());
    }
}
