//! Where a shared store's objects live: the `s3://BUCKET/PREFIX` a user
//! names, and every key under it. The only place that knows the layout:
//!
//! ```text
//! <prefix>/<incident>/
//!   lock.json                the lease: holder, expiry, heartbeat (If-Match CAS)
//!   meta/<name>.json         metadata `incident`, `custody`, ...
//!   journal/<seq:020>.json   one journal record an object, written once (If-None-Match: *)
//!   audit/<seq:020>.json     one audit record an object, written once
//!   audit.head               the trail's head
//! ```
//!
//! Sequence numbers are zero-padded to the 20 digits of a `u64`, so that
//! S3's lexicographic listing is also numeric order (the reader still sorts
//! by the parsed number and checks for gaps).

use std::fmt;

use super::super::{IncidentId, LogKind};

/// `s3://BUCKET/PREFIX` (`--state`): where a shared store keeps incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

/// A `--state` value that is not a usable S3 location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not an S3 state location: {problem}")]
pub struct LocationError {
    pub given: String,
    pub problem: String,
}

impl LocationError {
    pub fn hint(&self) -> &'static str {
        "write it as s3://BUCKET/PREFIX, e.g. --state s3://acme-ir-state/firebreak (an existing bucket; the prefix is optional); for a local directory use --state-dir"
    }
}

impl S3Location {
    pub fn parse(given: &str) -> Result<Self, LocationError> {
        let err = |problem: &str| LocationError {
            given: given.to_string(),
            problem: problem.to_string(),
        };
        let rest = given
            .strip_prefix("s3://")
            .ok_or_else(|| err("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(err("the bucket name is missing"));
        }
        if !valid_bucket(bucket) {
            return Err(err(&format!(
                "`{bucket}` is not a valid bucket name (3 to 63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit)"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.len() > 512 {
            return Err(err("the prefix is longer than 512 characters"));
        }
        for segment in prefix.split('/').filter(|_| !prefix.is_empty()) {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(err(&format!(
                    "the prefix `{prefix}` has an empty, `.` or `..` segment"
                )));
            }
            if segment.chars().any(|c| c.is_control() || c == '\\') {
                return Err(err(&format!(
                    "the prefix `{prefix}` holds a control character or `\\`"
                )));
            }
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The keys of one incident.
    pub fn incident(&self, id: &IncidentId) -> Keys {
        let base = if self.prefix.is_empty() {
            id.to_string()
        } else {
            format!("{}/{id}", self.prefix)
        };
        Keys {
            bucket: self.bucket.clone(),
            base,
        }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

fn valid_bucket(b: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(b.chars().next())
        && edge(b.chars().last())
        && !b.contains("..")
}

/// Every key of one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub bucket: String,
    /// `<prefix>/<incident>`.
    base: String,
}

impl Keys {
    pub fn lock(&self) -> String {
        format!("{}/lock.json", self.base)
    }

    pub fn meta(&self, name: &str) -> String {
        format!("{}/meta/{name}.json", self.base)
    }

    pub fn head(&self) -> String {
        format!("{}/audit.head", self.base)
    }

    /// The prefix every record of `log` is under (ends with `/`).
    pub fn log_prefix(&self, log: LogKind) -> String {
        let dir = match log {
            LogKind::Journal => "journal",
            LogKind::Audit => "audit",
        };
        format!("{}/{dir}/", self.base)
    }

    pub fn record(&self, log: LogKind, seq: u64) -> String {
        format!("{}{seq:020}.json", self.log_prefix(log))
    }

    /// The sequence number of a key listed under `log_prefix(log)`;
    /// `None` for anything firebreak did not write there.
    pub fn seq_of(&self, log: LogKind, key: &str) -> Option<u64> {
        let name = key.strip_prefix(&self.log_prefix(log))?;
        let digits = name.strip_suffix(".json")?;
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|s| *s > 0)
    }

    /// `s3://bucket/key`, for messages.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The incident's own address, for messages.
    pub fn address(&self) -> String {
        self.url(&format!("{}/", self.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> IncidentId {
        IncidentId::parse(s).unwrap()
    }

    #[test]
    fn locations_parse_with_or_without_a_prefix() {
        let l = S3Location::parse("s3://acme-ir-state/fire/break/").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("acme-ir-state", "fire/break")
        );
        assert_eq!(l.to_string(), "s3://acme-ir-state/fire/break");
        let root = S3Location::parse("s3://acme-ir-state").unwrap();
        assert_eq!(root.prefix, "");
        assert_eq!(root.incident(&id("INC-1")).lock(), "INC-1/lock.json");
    }

    #[test]
    fn malformed_locations_say_what_is_wrong() {
        for (bad, says) in [
            ("acme/x", "does not start with s3://"),
            ("s3:/acme/x", "does not start with s3://"),
            ("s3://", "bucket name is missing"),
            ("s3:///x", "bucket name is missing"),
            ("s3://Acme_State/x", "not a valid bucket name"),
            ("s3://ab/x", "not a valid bucket name"),
            ("s3://acme-ir-state/a//b", "empty"),
            ("s3://acme-ir-state/a/../b", "`..`"),
        ] {
            let e = S3Location::parse(bad).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
            assert!(e.to_string().contains(bad), "names the value: {e}");
        }
    }

    #[test]
    fn record_keys_sort_numerically_and_parse_back() {
        let k = S3Location::parse("s3://b-1/p")
            .unwrap()
            .incident(&id("INC-7"));
        assert_eq!(
            k.record(LogKind::Journal, 12),
            "p/INC-7/journal/00000000000000000012.json"
        );
        assert!(k.record(LogKind::Audit, 9) < k.record(LogKind::Audit, 10));
        assert_eq!(
            k.seq_of(LogKind::Audit, &k.record(LogKind::Audit, 10)),
            Some(10)
        );
        assert_eq!(
            k.seq_of(LogKind::Journal, &k.record(LogKind::Audit, 10)),
            None
        );
        for foreign in [
            "p/INC-7/journal/12.json",
            "p/INC-7/journal/x",
            "p/INC-7/journal/00000000000000000000.json",
        ] {
            assert_eq!(k.seq_of(LogKind::Journal, foreign), None, "{foreign}");
        }
        assert_eq!(k.meta("custody"), "p/INC-7/meta/custody.json");
        assert_eq!(k.head(), "p/INC-7/audit.head");
        assert_eq!(k.address(), "s3://b-1/p/INC-7/");
    }
}
