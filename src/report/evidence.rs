//! The chain of custody as the trail records it: every manifest written
//! (its key and SHA-256, which `evidence verify` starts from), every
//! artifact those manifests added (key, size, SHA-256), and every copy of
//! the trail itself in the forensic bucket.

use serde::Serialize;

use super::records::Record;
use crate::evidence::audit_copy::AuditCopy;
use crate::evidence::manifest::ManifestRecord;
use crate::state::AuditEvent;

#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub function: String,
    pub name: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    pub manifests: Vec<ManifestRecord>,
    pub artifacts: Vec<Artifact>,
    pub audit_copies: Vec<AuditCopy>,
    /// Manifests recorded by a firebreak that did not list their artifacts
    /// in the trail: their artifacts are in the manifest objects only.
    pub manifests_without_listing: usize,
}

pub fn list(records: &[Record]) -> Evidence {
    let mut e = Evidence::default();
    for r in records {
        match r.event {
            AuditEvent::EvidenceManifest => {
                let Ok(m) = serde_json::from_value::<ManifestRecord>(r.data.clone()) else {
                    continue;
                };
                // A new generation always lists what it added; one that does not
                // was written by a firebreak that did not record artifacts here.
                if m.written && m.listed.is_empty() && m.artifacts > 0 {
                    e.manifests_without_listing += 1;
                }
                for a in &m.listed {
                    if !e.artifacts.iter().any(|x| x.key == a.key) {
                        e.artifacts.push(Artifact {
                            function: m.function.clone(),
                            name: a.name.clone(),
                            bucket: m.bucket.clone(),
                            key: a.key.clone(),
                            size: a.size,
                            sha256: a.sha256.clone(),
                        });
                    }
                }
                let mut m = m;
                m.listed.clear();
                e.manifests.push(m);
            }
            AuditEvent::EvidenceAuditCopy => {
                if let Ok(c) = serde_json::from_value::<AuditCopy>(r.data.clone()) {
                    e.audit_copies.push(c);
                }
            }
            _ => {}
        }
    }
    e.artifacts.sort_by(|a, b| a.key.cmp(&b.key));
    e
}
