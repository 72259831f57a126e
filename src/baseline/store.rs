//! Where baselines are kept: a directory or an S3 prefix, one JSON file per
//! capture at `<account>/<region>/<function>/<taken_at>.json`, never
//! overwritten. S3 goes through the run's guarded, paced S3 client.

use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};

use super::key::{EnvKey, KEY_ENV};
use super::model::{Baseline, FORMAT};
use super::BaselineError;
use crate::aws::error::classify;
use crate::aws::Aws;
use crate::evidence::store::artifact_key;

/// Largest baseline file read back (a function with thousands of
/// statements and versions stays far below).
const MAX_FILE: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaselineStore {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl std::fmt::Display for BaselineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaselineStore::Dir(p) => write!(f, "{}", p.display()),
            BaselineStore::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            BaselineStore::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl BaselineStore {
    /// `DIR` or `s3://BUCKET[/PREFIX]`.
    pub fn parse(given: &str) -> Result<Self, BaselineError> {
        if let Some(rest) = given.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_matches('/').to_string();
            let bad_bucket = bucket.is_empty()
                || !bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if bad_bucket || prefix.split('/').any(|p| p == "." || p == "..") {
                return Err(BaselineError::input(
                    format!("--store `{given}` is not s3://BUCKET/PREFIX"),
                    "e.g. --store s3://my-baselines/prod (a bucket name is lowercase letters, digits, `-` and `.`)",
                ));
            }
            return Ok(BaselineStore::S3 {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        if given.is_empty() {
            return Err(BaselineError::input(
                "--store is empty",
                "pass a directory or s3://BUCKET/PREFIX",
            ));
        }
        Ok(BaselineStore::Dir(PathBuf::from(given)))
    }

    /// The key environment values are hashed with: `FIREBREAK_BASELINE_KEY`
    /// when set; otherwise, for a directory, its `baseline.key` (created on
    /// first use). An S3 store needs the variable: the key must not sit
    /// next to the hashes it protects.
    pub fn env_key(&self) -> Result<EnvKey, BaselineError> {
        if let Some(k) = EnvKey::from_env() {
            return Ok(k);
        }
        match self {
            BaselineStore::Dir(dir) => EnvKey::load_or_create(dir),
            BaselineStore::S3 { .. } => Err(BaselineError::Store {
                location: self.to_string(),
                message: format!("an S3 store needs {KEY_ENV}: the key that hashes environment values"),
                hint: format!("set {KEY_ENV} to a long random secret kept apart from the bucket (the same one every time: hashes only compare under one key)"),
            }),
        }
    }

    fn parts(b: &Baseline) -> [&str; 3] {
        [&b.account, &b.region, &b.function]
    }

    pub(super) fn s3_key(prefix: &str, rel: &str) -> String {
        if prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{prefix}/{rel}")
        }
    }

    /// Writes `b` once; returns where.
    pub async fn put(&self, aws: &Aws, b: &Baseline) -> Result<String, BaselineError> {
        let name = format!("{}.json", b.taken_at);
        let [a, r, f] = Self::parts(b);
        let rel = artifact_key(&[a, r, f, &name])
            .map_err(|e| BaselineError::input(e.to_string(), "function names never hold `/`"))?;
        let mut bytes = serde_json::to_vec_pretty(b).unwrap_or_default();
        bytes.push(b'\n');
        match self {
            BaselineStore::Dir(dir) => {
                let path = dir.join(&rel);
                let io = |e: std::io::Error| BaselineError::Store {
                    location: path.display().to_string(),
                    message: format!("cannot write the baseline: {e}"),
                    hint: "check the directory exists and is writable".into(),
                };
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                let tmp = path.with_extension("json.tmp");
                {
                    use std::io::Write;
                    let mut file = std::fs::File::create(&tmp).map_err(io)?;
                    file.write_all(&bytes).map_err(io)?;
                    file.sync_all().map_err(io)?;
                }
                if path.exists() {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(BaselineError::Store {
                        location: path.display().to_string(),
                        message: "a baseline with this time already exists".into(),
                        hint: "take it again: baselines are never overwritten".into(),
                    });
                }
                std::fs::rename(&tmp, &path).map_err(io)?;
                Ok(path.display().to_string())
            }
            BaselineStore::S3 { bucket, prefix } => {
                let key = Self::s3_key(prefix, &rel);
                aws.s3
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .if_none_match("*")
                    .content_type("application/json")
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(|e| {
                        classify(
                            "PutObject",
                            "s3:PutObject",
                            format!("s3://{bucket}/{key}"),
                            e,
                        )
                    })?;
                Ok(format!("s3://{bucket}/{key}"))
            }
        }
    }

    /// The capture times kept for one function, oldest first.
    pub async fn times(
        &self,
        aws: &Aws,
        account: &str,
        region: &str,
        function: &str,
    ) -> Result<Vec<String>, BaselineError> {
        let rel = artifact_key(&[account, region, function])
            .map_err(|e| BaselineError::input(e.to_string(), "check the function name"))?;
        let mut names = Vec::new();
        match self {
            BaselineStore::Dir(dir) => {
                let path = dir.join(&rel);
                let entries = match std::fs::read_dir(&path) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => {
                        return Err(BaselineError::Store {
                            location: path.display().to_string(),
                            message: format!("cannot list baselines: {e}"),
                            hint: "check the directory's permissions".into(),
                        })
                    }
                };
                for e in entries.flatten() {
                    names.push(e.file_name().to_string_lossy().into_owned());
                }
            }
            BaselineStore::S3 { bucket, prefix } => {
                let base = format!("{}/", Self::s3_key(prefix, &rel));
                let mut pages = aws
                    .s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&base)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| {
                        classify(
                            "ListObjectsV2",
                            "s3:ListBucket",
                            format!("s3://{bucket}/{base}"),
                            e,
                        )
                    })?;
                    for o in page.contents() {
                        if let Some(k) = o.key().and_then(|k| k.strip_prefix(&base)) {
                            names.push(k.to_string());
                        }
                    }
                }
            }
        }
        let mut times: Vec<(DateTime<Utc>, String)> = names
            .iter()
            .filter_map(|n| n.strip_suffix(".json"))
            .filter_map(|t| parse_time(t).map(|p| (p, t.to_string())))
            .collect();
        times.sort();
        Ok(times.into_iter().map(|(_, t)| t).collect())
    }

    /// Reads the baseline taken at `taken_at`.
    pub async fn get(
        &self,
        aws: &Aws,
        account: &str,
        region: &str,
        function: &str,
        taken_at: &str,
    ) -> Result<Baseline, BaselineError> {
        let rel = artifact_key(&[account, region, function, &format!("{taken_at}.json")])
            .map_err(|e| BaselineError::input(e.to_string(), "check the function name"))?;
        let (location, bytes) = self.read(aws, &rel, "baseline", MAX_FILE as u64).await?;
        let b: Baseline = serde_json::from_slice(&bytes).map_err(|e| BaselineError::Store {
            location: location.clone(),
            message: format!("not a baseline file: {e}"),
            hint: "it was edited or damaged; take a new baseline or restore it from a backup"
                .into(),
        })?;
        if b.format != FORMAT || b.function != function || b.account != account {
            return Err(BaselineError::Store {
                location,
                message: format!(
                    "the file holds format {} of function {} in account {}, not format {FORMAT} of {function} in {account}",
                    b.format, b.function, b.account
                ),
                hint: "it was moved or edited; use the baseline of that function".into(),
            });
        }
        Ok(b)
    }

    /// The file at `rel` (a baseline or a package: `what`), at most
    /// `limit` bytes; with where it was read.
    pub(super) async fn read(
        &self,
        aws: &Aws,
        rel: &str,
        what: &str,
        limit: u64,
    ) -> Result<(String, Vec<u8>), BaselineError> {
        let too_large = |location: String| BaselineError::Store {
            location,
            message: format!("the {what} is larger than {limit} bytes"),
            hint: "it was not written by firebreak baseline".into(),
        };
        match self {
            BaselineStore::Dir(dir) => {
                let path = dir.join(rel);
                let location = path.display().to_string();
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if size > limit {
                    return Err(too_large(location));
                }
                let bytes = std::fs::read(&path).map_err(|e| BaselineError::Store {
                    location: location.clone(),
                    message: format!("cannot read the {what}: {e}"),
                    hint: "check the store path".into(),
                })?;
                Ok((location, bytes))
            }
            BaselineStore::S3 { bucket, prefix } => {
                let key = Self::s3_key(prefix, rel);
                let location = format!("s3://{bucket}/{key}");
                let out = aws
                    .s3
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| classify("GetObject", "s3:GetObject", &location, e))?;
                if u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0) > limit {
                    return Err(too_large(location));
                }
                let body = out.body.collect().await.map_err(|e| BaselineError::Store {
                    location: location.clone(),
                    message: format!("reading the {what} failed: {e}"),
                    hint: "try again".into(),
                })?;
                Ok((location, body.into_bytes().to_vec()))
            }
        }
    }

    /// The newest baseline taken strictly before `before` (RFC 3339).
    pub async fn newest_before(
        &self,
        aws: &Aws,
        account: &str,
        region: &str,
        function: &str,
        before: &str,
    ) -> Result<Option<Baseline>, BaselineError> {
        let limit = parse_time(before).ok_or_else(|| {
            BaselineError::input(
                format!("`{before}` is not an RFC 3339 time"),
                "e.g. 2026-12-01T10:00:00Z",
            )
        })?;
        // An incident's start time has whole seconds: a baseline taken
        // within that second counts as before it.
        let limit = if before.contains('.') {
            limit
        } else {
            limit + chrono::Duration::seconds(1)
        };
        let times = self.times(aws, account, region, function).await?;
        let Some(t) = times
            .iter()
            .rev()
            .find(|t| parse_time(t).is_some_and(|p| p < limit))
        else {
            return Ok(None);
        };
        self.get(aws, account, region, function, t).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_locations_parse() {
        assert_eq!(
            BaselineStore::parse("s3://b/p/q/").unwrap(),
            BaselineStore::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            BaselineStore::parse("s3://b").unwrap(),
            BaselineStore::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert!(BaselineStore::parse("s3://").is_err());
        assert!(BaselineStore::parse("s3://B/x").is_err());
        assert!(BaselineStore::parse("s3://b/../x").is_err());
        assert_eq!(
            BaselineStore::parse("dir").unwrap(),
            BaselineStore::Dir("dir".into())
        );
    }

    #[test]
    fn times_compare_as_times_not_text() {
        let a = parse_time("2026-12-02T11:53:10.123Z").unwrap();
        let b = parse_time("2026-12-02T11:53:10Z").unwrap();
        assert!(b < a, "text order would say otherwise");
    }
}
