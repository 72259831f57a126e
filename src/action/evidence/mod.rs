//! Evidence actions: they only ever add objects to the forensic bucket,
//! never change the function, and are never undone by `recover`.

pub mod config_documents;
pub mod snapshot_config;

use serde_json::Value;

use crate::action::lambda::function::FunctionRef;
use crate::action::spec::{ParamDef, ValueType};
use crate::action::{ActionError, StepContext};
use crate::evidence::store::{artifact_key, ForensicStore, Retention, RetentionMode};
use crate::evidence::EvidenceError;

/// The parameters every evidence action takes for where and how it writes.
pub const BUCKET_PARAM: ParamDef =
    ParamDef::new("bucket", ValueType::String, "the forensic bucket").check(check_bucket);
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

/// The retention the step asks for (`retention_days`, `retention_mode`).
pub fn retention(cx: &StepContext<'_>) -> Option<Retention> {
    let days = cx
        .args
        .get("retention_days")
        .and_then(Value::as_u64)
        .unwrap_or(365);
    let mode = match cx.args.get("retention_mode").and_then(Value::as_str) {
        Some("governance") => RetentionMode::Governance,
        _ => RetentionMode::Compliance,
    };
    Some(Retention {
        mode,
        days: u32::try_from(days).unwrap_or(365),
    })
}

/// Opens the step's `bucket` (checks it exists, learns Object Lock).
pub async fn store(cx: &StepContext<'_>) -> Result<ForensicStore, ActionError> {
    ForensicStore::open(cx.aws.s3.clone(), cx.str_arg("bucket")?, retention(cx))
        .await
        .map_err(evidence_err)
}

/// `<incident>/<account>/<region>/<function>`: where a target's evidence goes.
pub fn prefix(cx: &StepContext<'_>, f: &FunctionRef) -> Result<String, ActionError> {
    artifact_key(&[cx.incident_id, &cx.caller.account, &cx.aws.region, &f.name])
        .map_err(evidence_err)
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
    }
}
