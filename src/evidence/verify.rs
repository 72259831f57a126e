//! `firebreak evidence verify`: the audit trail names each manifest and its
//! hash; each manifest names each object with its size and hash. Every link
//! is re-read and re-hashed, and every break is named.

use serde::Serialize;

use super::audit_copy::{AuditCopy, AUDIT_COPY_EVENT};
use super::manifest::{Manifest, ManifestRecord, MAX_MANIFEST_BYTES};
use super::store::{sha256_parts, ForensicStore};
use super::EvidenceError;
use crate::aws::AwsErrorKind;
use crate::state::audit::{self, AuditRecord};
use crate::state::AuditEvent;
use crate::state::Trail;

/// The trail name of `AuditEvent::EvidenceManifest`, which verification reads.
pub const MANIFEST_EVENT: &str = AuditEvent::EvidenceManifest.as_str();

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The object (or the audit trail) at fault.
    pub key: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub bucket: String,
    pub object_lock: bool,
    pub manifests: usize,
    pub artifacts: usize,
    pub mismatches: Vec<Mismatch>,
}

/// The manifests the trail recorded for `bucket`, oldest first.
pub fn recorded_manifests(
    trail: &Trail,
    bucket: &str,
) -> Result<(Vec<ManifestRecord>, Vec<Mismatch>), EvidenceError> {
    let mut problems = Vec::new();
    let chain = audit::verify(trail, false)?;
    if let Some(b) = &chain.broken {
        problems.push(Mismatch {
            key: chain.path.clone(),
            problem: format!("audit trail broken at line {}: {}", b.line, b.problem),
        });
    }
    let text = String::from_utf8_lossy(&trail.bytes);
    let mut records = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(rec) = serde_json::from_str::<AuditRecord>(line) else {
            continue; // reported by the chain check above
        };
        if rec.event != MANIFEST_EVENT {
            continue;
        }
        if let Ok(m) = serde_json::from_value::<ManifestRecord>(rec.data) {
            if m.bucket == bucket && !records.iter().any(|r: &ManifestRecord| r.key == m.key) {
                records.push(m);
            }
        }
    }
    Ok((records, problems))
}

pub async fn verify(store: &ForensicStore, trail: &Trail) -> Result<VerifyReport, EvidenceError> {
    let bucket = store.facts().bucket.clone();
    let (recorded, mut mismatches) = recorded_manifests(trail, &bucket)?;
    if recorded.is_empty() {
        mismatches.push(Mismatch {
            key: trail.address.clone(),
            problem: format!("the audit trail records no manifest in bucket {bucket}"),
        });
    }
    let mut artifacts = 0;
    let mut hashed: std::collections::HashMap<String, (String, u64)> =
        std::collections::HashMap::new();
    let mut counted = std::collections::HashSet::new();
    for rec in &recorded {
        let bytes = match store.get_small(&rec.key, MAX_MANIFEST_BYTES).await {
            Ok(b) => b,
            Err(e) if e.kind == AwsErrorKind::NotFound => {
                mismatches.push(Mismatch {
                    key: rec.key.clone(),
                    problem: "manifest missing from the bucket".into(),
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let (sha, _) = sha256_parts(&bytes);
        if sha != rec.sha256 {
            mismatches.push(Mismatch {
                key: rec.key.clone(),
                problem: format!(
                    "manifest sha256 {sha} differs from the audit trail's {}",
                    rec.sha256
                ),
            });
            continue;
        }
        let manifest = match Manifest::parse(&bucket, &rec.key, &bytes) {
            Ok(m) => m,
            Err(e) => {
                mismatches.push(Mismatch {
                    key: rec.key.clone(),
                    problem: e.to_string(),
                });
                continue;
            }
        };
        for a in &manifest.artifacts {
            // A later generation lists earlier artifacts again: each is
            // counted once, and still compared with every listing.
            if counted.insert(a.key.clone()) {
                artifacts += 1;
            }
            if let Some(reported) = a.reported_sha256.as_deref().filter(|r| *r != a.sha256) {
                mismatches.push(Mismatch {
                    key: a.key.clone(),
                    problem: format!(
                        "the service reported sha256 {reported} for this artifact when it was collected, the collected bytes hash to {}: the package downloaded is not what AWS said it runs",
                        a.sha256
                    ),
                });
            }
            // Each object is read once, however many generations list it.
            let read = match hashed.get(&a.key) {
                Some(r) => Ok(r.clone()),
                None => store.sha256_of(&a.key).await.inspect(|r| {
                    hashed.insert(a.key.clone(), r.clone());
                }),
            };
            match read {
                Ok((sha, size)) => {
                    if size != a.size {
                        mismatches.push(Mismatch {
                            key: a.key.clone(),
                            problem: format!("size {size} bytes, manifest says {}", a.size),
                        });
                    }
                    if sha != a.sha256 {
                        mismatches.push(Mismatch {
                            key: a.key.clone(),
                            problem: format!("sha256 {sha}, manifest says {}", a.sha256),
                        });
                    }
                }
                Err(e) if e.kind == AwsErrorKind::NotFound => mismatches.push(Mismatch {
                    key: a.key.clone(),
                    problem: "object missing from the bucket".into(),
                }),
                Err(e) => return Err(e.into()),
            }
        }
    }
    artifacts += verify_audit_copies(store, trail, &mut mismatches).await?;
    Ok(VerifyReport {
        bucket,
        object_lock: store.facts().object_lock,
        manifests: recorded.len(),
        artifacts,
        mismatches,
    })
}

/// Each copy of the audit trail the trail itself records: the object must
/// still hash as recorded, and must be exactly the local trail's first
/// lines (a local trail edited after the copy, or a copy replaced, shows).
async fn verify_audit_copies(
    store: &ForensicStore,
    trail: &Trail,
    mismatches: &mut Vec<Mismatch>,
) -> Result<usize, EvidenceError> {
    let bucket = &store.facts().bucket;
    let local = &trail.bytes;
    let text = String::from_utf8_lossy(local);
    let copies: Vec<AuditCopy> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<AuditRecord>(l).ok())
        .filter(|r| r.event == AUDIT_COPY_EVENT)
        .filter_map(|r| serde_json::from_value::<AuditCopy>(r.data).ok())
        .filter(|c| &c.bucket == bucket)
        .collect();
    for c in &copies {
        match store.sha256_of(&c.key).await {
            Ok((sha, size)) => {
                if sha != c.sha256 || size != c.size {
                    mismatches.push(Mismatch {
                        key: c.key.clone(),
                        problem: format!(
                            "audit trail copy: sha256 {sha} ({size} bytes), the trail recorded {} ({} bytes)",
                            c.sha256, c.size
                        ),
                    });
                }
            }
            Err(e) if e.kind == AwsErrorKind::NotFound => mismatches.push(Mismatch {
                key: c.key.clone(),
                problem: "audit trail copy missing from the bucket".into(),
            }),
            Err(e) => return Err(e.into()),
        }
        let end = local
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(c.lines.saturating_sub(1))
            .map(|(i, _)| i + 1);
        let same = end.is_some_and(|end| sha256_parts(&local[..end]).0 == c.sha256);
        if !same {
            mismatches.push(Mismatch {
                key: c.key.clone(),
                problem: format!(
                    "the local audit trail's first {} lines differ from the copy recorded in the bucket: one of them was changed",
                    c.lines
                ),
            });
        }
    }
    Ok(copies.len())
}
