//! What is left to do, judged from the latest `run` that could change
//! AWS (or, before any, the latest plan): an earlier run's failure that a
//! later run fixed is not open any more, so only the latest run's held
//! steps, failures, failed checks and "rotate at the source" secrets
//! count. A change left in doubt is open until some later run settles it.

use serde::Serialize;
use serde_json::Value;

use super::changes::{ChangeEntry, ChangeStatus};
use super::records::{Record, RunInfo};
use crate::plan::Decision;
use crate::state::AuditEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenKind {
    /// A step held until someone chooses (the flag is in `how`).
    Decision,
    /// A step, or one resource of it, that failed.
    FailedStep,
    /// A change that may or may not have happened.
    InDoubt,
    /// A check after the changes failed: a change did not take effect.
    CheckFailed,
    /// A secret with no rotation firebreak can do: change it where it is
    /// checked.
    RotateAtSource,
    /// An environment variable that looks like a secret in plain text.
    PlaintextSecret,
    /// The latest run never recorded its end.
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenItem {
    pub kind: OpenKind,
    pub step: Option<String>,
    pub resource: Option<String>,
    pub what: String,
    pub how: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingDecision {
    pub step: String,
    pub target: Option<String>,
    #[serde(flatten)]
    pub decision: Decision,
}

const ROTATE_AT_SOURCE: &str = "change the credential where it is checked (database, provider console), then store the new value (docs/actions.md, \"Rotate at the source\"); or give the secret a rotation Lambda, or pass generate_secrets=true where the stored value is itself the credential, and run again";

fn at_source(r: &Record, list: &str, out: &mut Vec<OpenItem>) {
    for item in r.data["state"][list].as_array().into_iter().flatten() {
        if item["status"] != "at_source" {
            continue;
        }
        let resource = item["arn"].as_str().unwrap_or("?").to_string();
        out.push(OpenItem {
            kind: OpenKind::RotateAtSource,
            step: r.step.clone(),
            what: format!("rotate {resource} at the source: assume it stolen"),
            resource: Some(resource),
            how: ROTATE_AT_SOURCE.into(),
        });
    }
}

/// The open items and the decisions still pending.
pub fn list(
    records: &[Record],
    runs: &[RunInfo],
    changes: &[ChangeEntry],
) -> (Vec<OpenItem>, Vec<PendingDecision>) {
    let mut items = Vec::new();
    let mut decisions: Vec<PendingDecision> = Vec::new();
    let latest = runs
        .iter()
        .rev()
        .find(|r| r.contains())
        .or_else(|| runs.iter().rev().find(|r| !r.recovers()));
    if let Some(run) = latest {
        if run.finished_at.is_none() {
            items.push(OpenItem {
                kind: OpenKind::Interrupted,
                step: None,
                resource: None,
                what: format!("{} ({}) ended without recording its end", run.command, run.run),
                how: "run the same command again with the same --incident: it resumes without repeating a change".into(),
            });
        }
        for r in records.iter().filter(|r| r.run == run.run) {
            let d = &r.data;
            match r.event {
                AuditEvent::Held => {
                    let Ok(decision) = serde_json::from_value::<Decision>(d["decision"].clone())
                    else {
                        continue;
                    };
                    let how = decision
                        .options
                        .iter()
                        .map(|o| format!("{} ({})", o.how, o.effect))
                        .collect::<Vec<_>>()
                        .join("; or ");
                    items.push(OpenItem {
                        kind: OpenKind::Decision,
                        step: r.step.clone(),
                        resource: d["target"].as_str().map(str::to_string),
                        what: decision.question.clone(),
                        how,
                    });
                    decisions.push(PendingDecision {
                        step: r.step.clone().unwrap_or_default(),
                        target: d["target"].as_str().map(str::to_string),
                        decision,
                    });
                }
                AuditEvent::Error if r.step.as_deref() != Some("recover") => {
                    items.push(OpenItem {
                        kind: OpenKind::FailedStep,
                        step: r.step.clone(),
                        resource: d["resource"].as_str().map(str::to_string),
                        what: d["message"].as_str().unwrap_or("failed").to_string(),
                        how: d["hint"].as_str().unwrap_or_default().to_string(),
                    });
                }
                AuditEvent::Verification if d["passed"] == false => {
                    items.push(OpenItem {
                        kind: OpenKind::CheckFailed,
                        step: r.step.clone(),
                        resource: d["target"].as_str().map(str::to_string),
                        what: format!(
                            "check `{}` failed: {}",
                            text(&d["name"]),
                            text(&d["detail"])
                        ),
                        how: "find out why the change did not take effect, fix it and run again"
                            .into(),
                    });
                }
                AuditEvent::Observation => match d["action"].as_str() {
                    Some("secrets.rotate") => at_source(r, "secrets", &mut items),
                    Some("ssm.rotate_parameter") => at_source(r, "parameters", &mut items),
                    Some("secrets.discover") => {
                        for f in d["state"]["plaintext_findings"]
                            .as_array()
                            .into_iter()
                            .flatten()
                        {
                            let var = text(&f["variable"]);
                            items.push(OpenItem {
                                kind: OpenKind::PlaintextSecret,
                                step: r.step.clone(),
                                resource: d["target"].as_str().map(str::to_string),
                                what: format!("environment variable {var} looks like a plaintext secret ({})", text(&f["why"])),
                                how: "assume it stolen: rotate it at the source, then move it to Secrets Manager".into(),
                            });
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    for c in changes
        .iter()
        .filter(|c| c.status == ChangeStatus::InDoubt && !c.settled_later)
    {
        items.push(OpenItem {
            kind: OpenKind::InDoubt,
            step: Some(c.step.clone()),
            resource: Some(c.target.clone()),
            what: format!(
                "{} of {} may or may not have changed{}",
                c.attribute,
                c.target,
                c.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ),
            how: "run the same command again: it re-observes and settles it without repeating the call".into(),
        });
    }
    // The same thing observed twice in a run (a staleness check, several
    // passes) is one item.
    let mut seen = Vec::new();
    items.retain(|i| {
        let key = (i.kind, i.step.clone(), i.resource.clone(), i.what.clone());
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    decisions.dedup_by(|a, b| a.step == b.step && a.target == b.target);
    // Most urgent first; within a kind, in the order they happened.
    items.sort_by_key(|i| match i.kind {
        OpenKind::Interrupted => 0,
        OpenKind::FailedStep => 1,
        OpenKind::InDoubt => 2,
        OpenKind::CheckFailed => 3,
        OpenKind::Decision => 4,
        OpenKind::RotateAtSource => 5,
        OpenKind::PlaintextSecret => 6,
    });
    (items, decisions)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}
