//! Evidence actions: they only ever add objects to the forensic bucket,
//! never change the function, and are never undone by `recover`.

pub mod code_inventory;
pub mod config_documents;
pub mod snapshot_code;
pub mod snapshot_config;
pub mod snapshot_indicators;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::action::lambda::function::FunctionRef;
use crate::action::run_context::Remembered;
use crate::action::spec::{ParamDef, ValueType};
use crate::action::{ActionError, Receipt, StepContext};
use crate::evidence::manifest::{ListedArtifact, Manifest, ManifestRecord};
use crate::evidence::store::{artifact_key, ForensicStore, Retention, RetentionMode, Stored};
use crate::evidence::EvidenceError;
use crate::state::AuditEvent;

/// The parameters every evidence action takes for where and how it writes.
pub const BUCKET_PARAM: ParamDef =
    ParamDef::new("bucket", ValueType::String, "the forensic bucket")
        .check(check_bucket)
        .parts(check_bucket_part);
pub const RETENTION_DAYS_PARAM: ParamDef = ParamDef::new(
    "retention_days",
    ValueType::Integer,
    "Object Lock retention for each object, when the bucket has Object Lock (default 365)",
)
.optional()
.range(1, 36_500);
pub const RETENTION_MODE_PARAM: ParamDef = ParamDef::new(
    "retention_mode",
    ValueType::String,
    "`compliance` (default: nobody can delete before the date) or `governance`",
)
.optional()
.check(check_retention_mode);

pub fn evidence_err(e: EvidenceError) -> ActionError {
    match e {
        EvidenceError::Aws(a) => a.into(),
        other => ActionError::input(other.to_string(), other.hint()),
    }
}

/// Where and how an evidence step writes: the parameters every evidence
/// action takes, flattened into each action's own argument struct.
#[derive(Debug, Clone, Deserialize)]
pub struct StoreArgs {
    pub bucket: String,
    pub bucket_role: Option<String>,
    #[serde(flatten)]
    pub retention: RetentionArgs,
}

/// `retention_days` (1..=36500 by the spec) and `retention_mode`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RetentionArgs {
    pub retention_days: Option<u32>,
    pub retention_mode: Option<RetentionModeArg>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionModeArg {
    Compliance,
    Governance,
}

impl RetentionArgs {
    /// The retention asked for, with its defaults (compliance, 365 days).
    pub fn retention(&self) -> Retention {
        Retention {
            mode: match self.retention_mode {
                Some(RetentionModeArg::Governance) => RetentionMode::Governance,
                Some(RetentionModeArg::Compliance) | None => RetentionMode::Compliance,
            },
            days: self.retention_days.unwrap_or(365),
        }
    }
}

/// The retention arguments of an evidence step, with their defaults.
/// Custody reads them from whichever evidence step it finds; that step
/// reports a bad value itself, so here one falls back to the defaults.
pub fn retention_from(args: &serde_json::Map<String, Value>) -> Retention {
    serde_json::from_value::<RetentionArgs>(Value::Object(args.clone()))
        .unwrap_or_default()
        .retention()
}

pub const BUCKET_ROLE_PARAM: ParamDef = ParamDef::new(
    "bucket_role",
    ValueType::String,
    "a role ARN to assume for writing the bucket, when it is in a separate forensic account (its trust policy must name this caller)",
)
.optional()
.check(check_role_arn)
.parts(crate::action::iam::role::check_part);

/// An IAM role ARN, checked before any call.
pub fn check_role_arn(v: &Value) -> Result<(), String> {
    let Some(s) = v.as_str() else {
        return Ok(());
    };
    if s.contains("${") {
        return Ok(());
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > "role/".len();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
        ))
    }
}

/// The S3 client for the forensic bucket: the run's own, or one acting as
/// the forensic account's role.
/// Also returns the identity the client writes as, when it is not the run's.
pub async fn s3_for(
    aws: &crate::aws::Aws,
    bucket_role: Option<&str>,
    incident: &str,
) -> Result<(aws_sdk_s3::Client, Option<String>), crate::aws::AwsError> {
    match bucket_role {
        None => Ok((aws.s3.clone(), None)),
        Some(role) => {
            // Session names show in the forensic account's CloudTrail:
            // name the incident (trimmed to STS's limits).
            let session: String = format!("firebreak-{incident}")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(*c))
                .take(64)
                .collect();
            let (s3, writer) = aws.s3_assuming(role, &session).await?;
            Ok((s3, Some(writer)))
        }
    }
}

/// Forensic buckets already opened by this run: one HeadBucket, Object
/// Lock lookup and AssumeRole per bucket, not per written object.
#[derive(Default)]
struct OpenStores(crate::evidence::store::StoreCache);

/// Opens a forensic bucket (checks it exists, learns Object Lock), acting
/// as `role` when given. Each distinct bucket, role and retention is opened
/// once per set of clients and reused by every later step and change.
pub async fn open_store(
    aws: &crate::aws::Aws,
    run: &crate::action::RunContext,
    bucket: &str,
    role: Option<&str>,
    retention: Option<Retention>,
    incident: &str,
) -> Result<ForensicStore, ActionError> {
    let key = format!("{bucket}\n{role:?}\n{retention:?}\n{incident}");
    // A forensic role's credentials last an hour: a long run re-assumes.
    const FRESH: std::time::Duration = std::time::Duration::from_secs(45 * 60);
    let stores = run.slot::<OpenStores>();
    let cached = stores
        .0
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned())
        .filter(|(at, _)| at.elapsed() < FRESH);
    if let Some((_, store)) = cached {
        return Ok(store);
    }
    let (s3, writer) = s3_for(aws, role, incident).await?;
    let mut store = ForensicStore::open(s3, bucket, retention)
        .await
        .map_err(evidence_err)?;
    store.set_writer(writer);
    if let Ok(mut m) = stores.0.lock() {
        m.insert(key, (std::time::Instant::now(), store.clone()));
    }
    Ok(store)
}

/// Opens the step's `bucket`.
pub async fn store(cx: &StepContext<'_>, args: &StoreArgs) -> Result<ForensicStore, ActionError> {
    open_store(
        cx.aws,
        cx.run,
        &args.bucket,
        args.bucket_role.as_deref(),
        Some(args.retention.retention()),
        cx.incident_id,
    )
    .await
}

/// `<incident>/<account>/<region>/<function>`: where a target's evidence goes.
pub fn prefix(cx: &StepContext<'_>, f: &FunctionRef) -> Result<String, ActionError> {
    artifact_key(&[cx.incident_id, &cx.caller.account, &cx.aws.region, &f.name])
        .map_err(evidence_err)
}

/// Small documents observed, kept in the run's context (by key) for
/// `apply` so that what is written is what was read; never serialized: they
/// may hold environment variable values.
#[derive(Default)]
struct Observed(Remembered);

/// Keeps a document's bytes for `apply` to write. The run's first reading
/// is kept: the plan's, made before any of the run's changes. Applying an
/// evidence step after a human confirmed the plan reads again, and by
/// then the harm pass has throttled the function and closed its URL; what
/// goes to the bucket must be what the attacker left, which the plan
/// showed (contract 9).
pub fn remember(cx: &StepContext<'_>, key: &str, bytes: Vec<u8>) {
    cx.run.slot::<Observed>().0.put_first(key, bytes);
}

/// `Action::owns_observed` for the evidence steps: their documents are the
/// plan's reading (`remember`) and their objects sit under the target's
/// own prefix, which no other target writes, so under `run --yes` the
/// plan's observation stands for the re-read before writing, which would
/// spend the function's reads (Lambda's control-plane quota) again for
/// bytes never written.
pub const PLAN_READING_STANDS: bool = true;

pub fn recall(cx: &StepContext<'_>, key: &str) -> Option<Arc<Vec<u8>>> {
    cx.run.slot::<Observed>().0.get(key)
}

/// Once written to the bucket, the run need not hold the bytes any more.
pub fn forget(cx: &StepContext<'_>, key: &str) {
    cx.run.slot::<Observed>().0.forget(key);
}

/// An artifact a step wants listed in the target's manifest.
pub struct Listed {
    /// Relative to the target's prefix, e.g. `config/function.json`.
    pub name: String,
    pub key: String,
    /// The API call the bytes came from.
    pub source: String,
    /// What the service says the bytes hash to (hex), when it says.
    pub reported_sha256: Option<String>,
}

/// Adds `listed` to the target's newest manifest and writes the next
/// generation, as a receipt for the audit trail (see `write_listed`).
pub async fn write_manifest(
    cx: &StepContext<'_>,
    store: &ForensicStore,
    f: &FunctionRef,
    listed: &[Listed],
) -> Result<Receipt, ActionError> {
    let target = ManifestTarget {
        incident: cx.incident_id,
        account: &cx.caller.account,
        region: &cx.aws.region,
        function: &f.name,
        collector: &cx.caller.arn,
    };
    let record = write_listed(store, &target, listed).await?;
    Ok(Receipt {
        event: AuditEvent::EvidenceManifest,
        data: serde_json::to_value(&record).unwrap_or(Value::Null),
    })
}

/// Whose manifest, and who collects.
pub struct ManifestTarget<'a> {
    pub incident: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub function: &'a str,
    pub collector: &'a str,
}

/// Adds `listed` to the target's newest manifest and writes the next
/// generation. Each object is re-read from S3 first, so the manifest lists
/// only what S3 holds and confirmed, with S3's write time as the
/// collection time: the same evidence always gives the same manifest.
pub async fn write_listed(
    store: &ForensicStore,
    t: &ManifestTarget<'_>,
    listed: &[Listed],
) -> Result<ManifestRecord, ActionError> {
    let mut m = Manifest::latest_or_new(store, t.incident, t.account, t.region, t.function)
        .await
        .map_err(evidence_err)?;
    for l in listed {
        let head = store.head(&l.key).await?.ok_or_else(|| {
            ActionError::input(
                format!(
                    "artifact s3://{}/{} is missing; the manifest lists only stored objects",
                    store.facts().bucket,
                    l.key
                ),
                "re-run: missing artifacts are collected again",
            )
        })?;
        let stored = Stored {
            key: l.key.clone(),
            size: head.size,
            sha256: head.sha256,
            written: false,
        };
        m.add(&l.name, &stored, &l.source, &head.written_at, t.collector);
        if let Some(r) = &l.reported_sha256 {
            m.set_reported_sha256(&l.key, r);
        }
    }
    let mut record = m.write(store).await.map_err(evidence_err)?;
    record.listed = m
        .artifacts
        .iter()
        .filter(|a| listed.iter().any(|l| l.key == a.key))
        .map(|a| ListedArtifact {
            name: a.name.clone(),
            key: a.key.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
        })
        .collect();
    Ok(record)
}

/// Whether this incident's journal already holds `action`'s manifest change
/// for `target` whose planned value satisfies `same`.
pub fn manifest_journaled(
    cx: &StepContext<'_>,
    action: &str,
    target: &str,
    same: impl Fn(&Value) -> bool,
) -> bool {
    cx.history.iter().any(|r| {
        r.event == crate::state::JournalEvent::Applied
            && r.action == action
            && r.change.target == target
            && r.change.attribute == MANIFEST_ATTRIBUTE
            && same(&r.change.after)
    })
}

/// The change every evidence action plans for its manifest.
pub const MANIFEST_ATTRIBUTE: &str = "evidence:manifest";

/// Writes the bytes `observe` kept for `key` (`lookup`); a saved plan
/// applied by a new process has none, so the step observes once more.
pub async fn put_observed<F>(
    store: &ForensicStore,
    key: &str,
    lookup: impl Fn(&str) -> Option<Arc<Vec<u8>>>,
    observe_again: F,
) -> Result<(), ActionError>
where
    F: std::future::Future<Output = Result<crate::action::Observation, ActionError>>,
{
    let bytes = match lookup(key) {
        Some(b) => b,
        None => {
            observe_again.await?;
            lookup(key).ok_or_else(|| {
                ActionError::input(
                    format!("{key} was not observed"),
                    "re-run: the step observes again",
                )
            })?
        }
    };
    store
        .put(key, bytes.as_ref().clone())
        .await
        .map_err(evidence_err)?;
    Ok(())
}

/// S3 bucket naming rules, checked before any call.
pub fn check_bucket(v: &Value) -> Result<(), String> {
    let Some(s) = v.as_str() else {
        return Ok(()); // the type check reports it
    };
    if s.contains("${") {
        return Ok(()); // a reference: checked when resolved
    }
    let ok_len = (3..=63).contains(&s.len());
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_ends && !s.contains("..") {
        Ok(())
    } else {
        Err(format!("`{s}` is not a valid S3 bucket name (3-63 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit)"))
    }
}

/// Part check for a bucket name in text around references
/// (`forensics-${params.account}`).
pub fn check_bucket_part(part: &str) -> Result<(), String> {
    crate::action::spec::part_chars(
        part,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'),
        "an S3 bucket name (lowercase letters, digits, `-` and `.`)",
    )
}

pub fn check_retention_mode(v: &Value) -> Result<(), String> {
    match v.as_str() {
        None | Some("compliance" | "governance") => Ok(()),
        Some(s) if s.contains("${") => Ok(()),
        Some(s) => Err(format!(
            "`{s}` is not a retention mode: use `compliance` or `governance`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["forensics", "acme-ir.evidence-1", "abc"] {
            assert!(check_bucket(&json!(good)).is_ok(), "{good}");
        }
        for bad in ["ab", "Forensics", "-x-", "a..b", "a_b", "x/y"] {
            assert!(check_bucket(&json!(bad)).is_err(), "{bad}");
        }
        assert!(check_retention_mode(&json!("legal")).is_err());
        assert!(check_role_arn(&json!("arn:aws:iam::222233334444:role/forensic-writer")).is_ok());
        for bad in [
            "forensic-writer",
            "arn:aws:iam::2222:role/x",
            "arn:aws:s3:::b",
            "arn:aws:iam::222233334444:user/x",
        ] {
            assert!(check_role_arn(&json!(bad)).is_err(), "{bad}");
        }
    }
}
