//! The per-incident, per-target manifest: every artifact with its key, size,
//! SHA-256, the API call it came from, when and by whom it was collected.
//!
//! Manifests are evidence too, so they are written once like everything
//! else: `manifest.json` first, and when a later run has more to list,
//! `manifest.2.json`, `manifest.3.json`... Each one's hash is recorded in the
//! audit trail (`evidence.manifest` events), which is what `evidence verify`
//! starts from.

use serde::{Deserialize, Serialize};

use super::store::{artifact_key, ForensicStore, Stored};
use super::EvidenceError;

pub const FORMAT: &str = "firebreak/evidence-manifest/v1";
/// A manifest larger than this is not ours.
pub const MAX_MANIFEST_BYTES: usize = 8 * 1024 * 1024;
const MAX_GENERATIONS: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// What it is, e.g. `config/function.json`.
    pub name: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
    /// The API call the bytes came from, e.g. `lambda:GetFunctionConfiguration`.
    pub source: String,
    pub collected_at: String,
    /// The ARN of the identity that collected it.
    pub collector: String,
    /// The SHA-256 the service itself reported for these bytes (Lambda's
    /// `CodeSha256`, hex), when it reports one: `evidence verify` flags a
    /// package whose bytes differ from what Lambda says it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub incident: String,
    pub account: String,
    pub region: String,
    pub function: String,
    pub bucket: String,
    /// Sorted by key, so the same evidence always gives the same bytes.
    pub artifacts: Vec<Artifact>,
}

/// Where a manifest went, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub size: u64,
    pub artifacts: usize,
    pub function: String,
    /// False when the same manifest was already there (nothing new).
    pub written: bool,
    /// The artifacts this generation added (or listed again), so that the
    /// trail alone names every artifact with its key and SHA-256 (what an
    /// incident report shows without reading the bucket). Absent in trails
    /// written before it existed: the manifest itself always has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listed: Vec<ListedArtifact>,
}

/// One artifact as the trail names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedArtifact {
    pub name: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn new(incident: &str, account: &str, region: &str, function: &str, bucket: &str) -> Self {
        Self {
            format: FORMAT.to_string(),
            incident: incident.to_string(),
            account: account.to_string(),
            region: region.to_string(),
            function: function.to_string(),
            bucket: bucket.to_string(),
            artifacts: Vec::new(),
        }
    }

    pub fn prefix(&self) -> Result<String, EvidenceError> {
        artifact_key(&[&self.incident, &self.account, &self.region, &self.function])
    }

    /// Adds an artifact S3 confirmed; an artifact already listed under the
    /// same key keeps its first collection time and collector.
    pub fn add(&mut self, name: &str, stored: &Stored, source: &str, at: &str, collector: &str) {
        if self.artifacts.iter().any(|a| a.key == stored.key) {
            return;
        }
        self.artifacts.push(Artifact {
            name: name.to_string(),
            key: stored.key.clone(),
            size: stored.size,
            sha256: stored.sha256.clone(),
            source: source.to_string(),
            collected_at: at.to_string(),
            collector: collector.to_string(),
            reported_sha256: None,
        });
        self.artifacts.sort_by(|a, b| a.key.cmp(&b.key));
    }

    /// Records the hash the service reported for the artifact at `key`.
    pub fn set_reported_sha256(&mut self, key: &str, hex: &str) {
        if let Some(a) = self.artifacts.iter_mut().find(|a| a.key == key) {
            if a.reported_sha256.is_none() {
                a.reported_sha256 = Some(hex.to_string());
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The newest manifest generation written for this target, if any: a
    /// second evidence step (code after configuration, logs after code)
    /// starts from it so the newest generation always lists everything.
    pub async fn latest(
        store: &ForensicStore,
        incident: &str,
        account: &str,
        region: &str,
        function: &str,
    ) -> Result<Option<Self>, EvidenceError> {
        let bucket = store.facts().bucket.clone();
        let prefix = artifact_key(&[incident, account, region, function])?;
        let mut newest = None;
        for generation in 1..=MAX_GENERATIONS {
            let key = generation_key(&prefix, generation);
            if store.head(&key).await?.is_none() {
                break;
            }
            newest = Some(key);
        }
        let Some(key) = newest else {
            return Ok(None);
        };
        let bytes = store.get_small(&key, MAX_MANIFEST_BYTES).await?;
        Self::parse(&bucket, &key, &bytes).map(Some)
    }

    /// The newest manifest of the target, or an empty one: what an evidence
    /// step adds its artifacts to before writing the next generation.
    pub async fn latest_or_new(
        store: &ForensicStore,
        incident: &str,
        account: &str,
        region: &str,
        function: &str,
    ) -> Result<Self, EvidenceError> {
        Ok(
            match Self::latest(store, incident, account, region, function).await? {
                Some(m) => m,
                None => Self::new(incident, account, region, function, &store.facts().bucket),
            },
        )
    }

    /// Writes the manifest under the first generation that is free or
    /// already holds exactly these bytes.
    pub async fn write(&self, store: &ForensicStore) -> Result<ManifestRecord, EvidenceError> {
        let prefix = self.prefix()?;
        let bytes = self.to_bytes();
        for generation in 1..=MAX_GENERATIONS {
            let key = generation_key(&prefix, generation);
            match store.put(&key, bytes.clone()).await {
                Ok(stored) => {
                    return Ok(ManifestRecord {
                        bucket: self.bucket.clone(),
                        key,
                        sha256: stored.sha256,
                        size: stored.size,
                        artifacts: self.artifacts.len(),
                        function: self.function.clone(),
                        written: stored.written,
                        listed: Vec::new(),
                    })
                }
                Err(EvidenceError::Different { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(EvidenceError::BadManifest {
            bucket: self.bucket.clone(),
            key: format!("{prefix}/manifest.*.json"),
            detail: format!("more than {MAX_GENERATIONS} generations"),
        })
    }

    pub fn parse(bucket: &str, key: &str, bytes: &[u8]) -> Result<Self, EvidenceError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| EvidenceError::BadManifest {
                bucket: bucket.to_string(),
                key: key.to_string(),
                detail: e.to_string(),
            })?;
        if m.format != FORMAT {
            return Err(EvidenceError::BadManifest {
                bucket: bucket.to_string(),
                key: key.to_string(),
                detail: format!("format is `{}`, expected `{FORMAT}`", m.format),
            });
        }
        Ok(m)
    }
}

fn generation_key(prefix: &str, generation: u32) -> String {
    if generation == 1 {
        format!("{prefix}/manifest.json")
    } else {
        format!("{prefix}/manifest.{generation}.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(key: &str) -> Stored {
        Stored {
            key: key.into(),
            size: 1,
            sha256: "ab".into(),
            written: true,
        }
    }

    #[test]
    fn the_same_evidence_gives_the_same_bytes_whatever_the_order() {
        let mut a = Manifest::new("INC-1", "111122223333", "us-east-1", "fn", "b");
        let mut b = a.clone();
        a.add("x", &stored("k/2"), "s", "t1", "c");
        a.add("y", &stored("k/1"), "s", "t1", "c");
        b.add("y", &stored("k/1"), "s", "t1", "c");
        b.add("x", &stored("k/2"), "s", "t1", "c");
        // A re-collection keeps the first time and collector.
        b.add("x", &stored("k/2"), "s", "t2", "other");
        assert_eq!(a.to_bytes(), b.to_bytes());
        let parsed = Manifest::parse("b", "k", &a.to_bytes()).ok();
        assert_eq!(parsed, Some(a));
    }

    #[test]
    fn a_foreign_document_is_not_a_manifest() {
        let err = Manifest::parse("b", "k", br#"{"format":"other"}"#);
        assert!(matches!(err, Err(EvidenceError::BadManifest { .. })));
    }
}
