//! The forensic bucket writer: every object is sent with its SHA-256 as the
//! S3 checksum (S3 recomputes it and refuses a mismatch with `BadDigest`)
//! and with `If-None-Match: *`, so evidence is written once and never
//! overwritten. A key that already holds the same bytes is a no-op, which
//! is what makes a re-run after a crash complete the snapshot without
//! duplicates; a key holding different bytes is an error.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, ObjectLockMode};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::EvidenceError;
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};

/// Object Lock retention applied to every object when the bucket has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: RetentionMode,
    pub days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionMode {
    /// Nobody, not even root, can delete before the date.
    Compliance,
    /// Principals with `s3:BypassGovernanceRetention` can.
    Governance,
}

/// What the bucket offers, learned once when the store opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketFacts {
    pub bucket: String,
    pub object_lock: bool,
    /// The identity writing, when it is a forensic account's role rather
    /// than the run's own caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
}

impl BucketFacts {
    /// The loud warning plan and output carry for a bucket without Object Lock.
    pub fn warning(&self) -> Option<String> {
        (!self.object_lock).then(|| {
            format!(
                "WARNING: bucket {} has no Object Lock: evidence written there can be deleted or replaced by anyone with s3:DeleteObject; use a bucket created with Object Lock for evidence that must hold up",
                self.bucket
            )
        })
    }
}

/// One object as stored and confirmed by S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub key: String,
    pub size: u64,
    /// Lowercase hex, as investigators compare it with `sha256sum`.
    pub sha256: String,
    /// False when the key already held exactly these bytes.
    pub written: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub sha256: String,
    /// When S3 stored it (RFC 3339): the collection time a manifest records.
    pub written_at: String,
}

/// Opened stores by bucket, role and retention, for one set of clients,
/// with when each was opened.
pub type StoreCache =
    std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, ForensicStore)>>;

#[derive(Debug, Clone)]
pub struct ForensicStore {
    s3: aws_sdk_s3::Client,
    facts: BucketFacts,
    retention: Option<Retention>,
}

/// `<incident>/<account>/<region>/<function>/<artifact>`; each part checked
/// so that an alarm payload cannot steer a write outside its prefix.
pub fn artifact_key(parts: &[&str]) -> Result<String, EvidenceError> {
    for part in parts {
        let why = if part.is_empty() {
            Some("it is empty")
        } else if part.contains('/') || part.contains('\\') {
            Some("it contains a path separator")
        } else if *part == "." || *part == ".." {
            Some("it is a relative path component")
        } else if part.chars().any(|c| c.is_control()) {
            Some("it contains a control character")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(EvidenceError::BadKeyPart {
                part: part.escape_debug().to_string(),
                why,
            });
        }
    }
    Ok(parts.join("/"))
}

pub fn sha256_parts(bytes: &[u8]) -> (String, String) {
    let digest = Sha256::digest(bytes);
    (
        hex::encode(digest),
        base64::engine::general_purpose::STANDARD.encode(digest),
    )
}

pub fn b64_to_hex(b64: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .map(hex::encode)
}

impl ForensicStore {
    /// Checks the bucket exists and whether it has Object Lock.
    pub async fn open(
        s3: aws_sdk_s3::Client,
        bucket: &str,
        retention: Option<Retention>,
    ) -> Result<Self, EvidenceError> {
        s3.head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| {
                let mut err = classify("HeadBucket", "s3:ListBucket", bucket, e);
                if err.kind == AwsErrorKind::NotFound {
                    err.message = format!("forensic bucket {bucket} does not exist");
                    err.hint = "create it first (with Object Lock: `aws s3api create-bucket --bucket B --object-lock-enabled-for-bucket`), or pass the right name".into();
                }
                err
            })?;
        let object_lock = match s3
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => out
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                .is_some_and(|e| e.as_str() == "Enabled"),
            Err(e) => {
                let err = classify(
                    "GetObjectLockConfiguration",
                    "s3:GetBucketObjectLockConfiguration",
                    bucket,
                    e,
                );
                let none = err.code.as_deref() == Some("ObjectLockConfigurationNotFoundError")
                    || err.kind == AwsErrorKind::NotFound;
                if !none {
                    return Err(err.into());
                }
                false
            }
        };
        Ok(Self {
            s3,
            facts: BucketFacts {
                bucket: bucket.to_string(),
                object_lock,
                writer: None,
            },
            retention,
        })
    }

    pub fn set_writer(&mut self, writer: Option<String>) {
        self.facts.writer = writer;
    }

    pub fn facts(&self) -> &BucketFacts {
        &self.facts
    }

    /// Writes `bytes` at `key` exactly once.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, EvidenceError> {
        let (hex, b64) = sha256_parts(&bytes);
        let size = bytes.len() as u64;
        self.put_body(key, ByteStream::from(bytes), hex, b64, size)
            .await
    }

    /// Writes the file at `path`, whose SHA-256 the caller computed while
    /// writing it, at `key` exactly once; the file is streamed, not loaded.
    pub async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        sha256_hex: &str,
        sha256_b64: &str,
        size: u64,
    ) -> Result<Stored, EvidenceError> {
        let body = ByteStream::from_path(path).await.map_err(|e| {
            AwsError::new(
                "PutObject",
                format!("s3://{}/{key}", self.facts.bucket),
                AwsErrorKind::Other,
                format!("cannot read {} to upload it: {e}", path.display()),
                "check the temporary directory (TMPDIR) is readable and has space, then re-run",
            )
        })?;
        self.put_body(
            key,
            body,
            sha256_hex.to_string(),
            sha256_b64.to_string(),
            size,
        )
        .await
    }

    async fn put_body(
        &self,
        key: &str,
        body: ByteStream,
        hex: String,
        b64: String,
        size: u64,
    ) -> Result<Stored, EvidenceError> {
        let bucket = &self.facts.bucket;
        let mut req = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .checksum_sha256(&b64)
            .if_none_match("*")
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .body(body);
        if let (true, Some(r)) = (self.facts.object_lock, self.retention) {
            let until = chrono::Utc::now() + chrono::Duration::days(i64::from(r.days));
            req = req
                .object_lock_mode(match r.mode {
                    RetentionMode::Compliance => ObjectLockMode::Compliance,
                    RetentionMode::Governance => ObjectLockMode::Governance,
                })
                .object_lock_retain_until_date(aws_smithy_types::DateTime::from_secs(
                    until.timestamp(),
                ));
        }
        match req.send().await {
            Ok(out) => {
                // S3 verified our checksum before storing; its echo is the
                // receipt the manifest relies on.
                match out.checksum_sha256() {
                    Some(echo) if echo == b64 => {}
                    Some(echo) => {
                        return Err(EvidenceError::Unconfirmed {
                            bucket: bucket.clone(),
                            key: key.to_string(),
                            sent: hex,
                            reported: b64_to_hex(echo).unwrap_or_else(|| echo.to_string()),
                        })
                    }
                    None => self.confirm(key, &hex, &b64).await?,
                }
                Ok(Stored {
                    key: key.to_string(),
                    size,
                    sha256: hex,
                    written: true,
                })
            }
            Err(e) => {
                let err = classify(
                    "PutObject",
                    "s3:PutObject",
                    format!("s3://{bucket}/{key}"),
                    e,
                );
                if err.code.as_deref() == Some("PreconditionFailed") {
                    self.confirm(key, &hex, &b64).await?;
                    return Ok(Stored {
                        key: key.to_string(),
                        size,
                        sha256: hex,
                        written: false,
                    });
                }
                Err(err.into())
            }
        }
    }

    /// Whether `key` holds exactly the bytes whose SHA-256 is `hex`.
    async fn confirm(&self, key: &str, hex: &str, b64: &str) -> Result<(), EvidenceError> {
        let bucket = &self.facts.bucket;
        let head = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| {
                classify(
                    "HeadObject",
                    "s3:GetObject",
                    format!("s3://{bucket}/{key}"),
                    e,
                )
            })?;
        let existing = match head.checksum_sha256() {
            Some(c) if c == b64 => return Ok(()),
            // A full-object checksum that differs, or none at all (written by
            // something else): hash the bytes themselves.
            _ => self.sha256_of(key).await?.0,
        };
        if existing == hex {
            Ok(())
        } else {
            Err(EvidenceError::Different {
                bucket: bucket.clone(),
                key: key.to_string(),
                existing,
                ours: hex.to_string(),
            })
        }
    }

    /// What S3 holds at `key`: size, SHA-256 (S3's checksum, else the bytes
    /// hashed) and write time; `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<Head>, AwsError> {
        let bucket = &self.facts.bucket;
        let out = match self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = classify(
                    "HeadObject",
                    "s3:GetObject",
                    format!("s3://{bucket}/{key}"),
                    e,
                );
                return if e.kind == AwsErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let written_at = out
            .last_modified()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
            .unwrap_or_default();
        let (sha256, size) = match out.checksum_sha256().and_then(b64_to_hex) {
            Some(hex) => (hex, out.content_length().unwrap_or(0).max(0) as u64),
            None => self.sha256_of(key).await?,
        };
        Ok(Some(Head {
            size,
            sha256,
            written_at,
        }))
    }

    /// Streams an object and returns (sha256 hex, size) without holding it.
    pub async fn sha256_of(&self, key: &str) -> Result<(String, u64), AwsError> {
        let bucket = &self.facts.bucket;
        let where_ = format!("s3://{bucket}/{key}");
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("GetObject", "s3:GetObject", where_.clone(), e))?;
        let mut body = out.body;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    size += chunk.len() as u64;
                    hasher.update(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(AwsError::new(
                        "GetObject",
                        where_,
                        AwsErrorKind::Other,
                        format!("reading the object failed midway: {e}"),
                        "re-run: the read is retried from the start",
                    ))
                }
            }
        }
        Ok((hex::encode(hasher.finalize()), size))
    }

    /// Reads a small object (a manifest) whole.
    pub async fn get_small(&self, key: &str, limit: usize) -> Result<Vec<u8>, AwsError> {
        let bucket = &self.facts.bucket;
        let where_ = format!("s3://{bucket}/{key}");
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("GetObject", "s3:GetObject", where_.clone(), e))?;
        let bytes = out.body.collect().await.map_err(|e| {
            AwsError::new(
                "GetObject",
                where_.clone(),
                AwsErrorKind::Other,
                format!("reading the object failed midway: {e}"),
                "re-run",
            )
        })?;
        let bytes = bytes.into_bytes();
        if bytes.len() > limit {
            return Err(AwsError::new(
                "GetObject",
                where_,
                AwsErrorKind::InvalidRequest,
                format!(
                    "the object is {} bytes, more than a manifest can be ({limit})",
                    bytes.len()
                ),
                "this is not a firebreak manifest",
            ));
        }
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_refuse_parts_that_escape_their_prefix() {
        assert_eq!(
            artifact_key(&["INC-1", "111122223333", "us-east-1", "fn", "config.json"]).ok(),
            Some("INC-1/111122223333/us-east-1/fn/config.json".to_string())
        );
        for bad in ["", "a/b", "..", ".", "a\\b", "x\ny"] {
            assert!(
                artifact_key(&["INC-1", bad, "config.json"]).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn sha256_matches_the_well_known_vector() {
        let (hex, b64) = sha256_parts(b"hello");
        assert_eq!(
            hex,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(b64, "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=");
        assert_eq!(b64_to_hex(&b64).as_deref(), Some(hex.as_str()));
    }
}
