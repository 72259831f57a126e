//! The incident's timeline: each thing that happened, with its time, in
//! the order the trail recorded it. Observations, planned changes and the
//! `applying` record written before each call are left out (their outcome
//! is here); the trail itself holds every record.

use serde::Serialize;
use serde_json::Value;

use super::brief;
use super::records::Record;
use crate::state::AuditEvent;

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// The record's sequence number in the trail.
    pub seq: u64,
    pub time: String,
    pub run: String,
    pub event: AuditEvent,
    pub step: Option<String>,
    /// What happened, in one line.
    pub what: String,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn change_line(c: &Value) -> String {
    format!(
        "{} of {}: {} → {}",
        s(&c["attribute"]),
        s(&c["target"]),
        brief(&c["before"]),
        brief(&c["after"])
    )
}

/// An alarm or finding as the responder re-read it, in words.
fn trigger(e: &Value) -> String {
    match e["kind"].as_str() {
        Some("alarm") => format!(
            "alarm {} ({} at {})",
            s(&e["name"]),
            s(&e["state"]),
            s(&e["changed_at"])
        ),
        Some("guard_duty") => format!("GuardDuty finding {}", s(&e["id"])),
        Some("security_hub") => format!("Security Hub finding {}", s(&e["id"])),
        _ => "an event".into(),
    }
}

fn what(r: &Record) -> Option<String> {
    let d = &r.data;
    Some(match r.event {
        AuditEvent::Observation
        | AuditEvent::Planned
        | AuditEvent::Applying
        | AuditEvent::Skipped
        | AuditEvent::AlreadySatisfied
        | AuditEvent::RecoverPlanned => return None,
        AuditEvent::RunStarted => {
            let mut line = format!("{} started", s(&d["command"]));
            if d["dry_run"] == true {
                line.push_str(" (dry run)");
            }
            if let Some(p) = d["playbook"]["name"].as_str() {
                line.push_str(&format!(": playbook {p}"));
            }
            if let Some(phases) = d["phases"].as_array() {
                let phases: Vec<&str> = phases.iter().filter_map(Value::as_str).collect();
                line.push_str(&format!(", phases {}", phases.join(", ")));
            }
            if let Some(c) = &r.caller {
                line.push_str(&format!("; by {c}"));
            }
            if let Some(region) = d["region"].as_str() {
                line.push_str(&format!(" in {region}"));
            }
            line
        }
        AuditEvent::Targets => format!(
            "targets selected: {} function(s) matched {}",
            d["matched"].as_array().map_or(0, Vec::len),
            d["selectors"]
        ),
        AuditEvent::Held => format!("held for a decision: {}", s(&d["decision"]["question"])),
        AuditEvent::PlanSaved => "plan saved".into(),
        AuditEvent::Triggered => format!(
            "triggered by {} via route {} for function {}",
            trigger(&d["reread"]),
            s(&d["route"]),
            s(&d["function"])
        ),
        AuditEvent::EventRefused => {
            format!("event refused ({}): {}", s(&d["code"]), s(&d["reason"]))
        }
        AuditEvent::BlastRadius => {
            let users: Vec<&str> = d["functions_using_role"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "blast radius of {}: {} function(s) use it: {}",
                s(&d["role"]),
                users.len(),
                users.join(", ")
            )
        }
        AuditEvent::Refused => format!("refused: {}", s(&d["message"])),
        AuditEvent::Applied if r.step.as_deref() == Some("recover") => {
            format!("restored {}", change_line(d))
        }
        // `recover --to-baseline` records an item's id and what it
        // preserved, not a change.
        AuditEvent::Applied if r.step.as_deref() == Some(crate::engine::recover_baseline::STEP) => {
            let kept: Vec<&str> = d["evidence"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .collect();
            if kept.is_empty() {
                format!("restored to the baseline: {}", s(&d["id"]))
            } else {
                format!(
                    "restored to the baseline: {} (preserved first: {})",
                    s(&d["id"]),
                    kept.join(", ")
                )
            }
        }
        AuditEvent::Applied => format!("changed {}", change_line(d)),
        AuditEvent::OutcomeUnknown => format!(
            "outcome unknown for {} ({})",
            change_line(&d["change"]),
            s(&d["message"])
        ),
        AuditEvent::Confirmed => format!(
            "confirmed, made by an interrupted run: {}",
            change_line(&d["change"])
        ),
        AuditEvent::Verification => format!(
            "check {}: {} ({}): {}",
            if d["passed"] == true {
                "passed"
            } else {
                "FAILED"
            },
            s(&d["name"]),
            s(&d["target"]),
            s(&d["detail"])
        ),
        AuditEvent::Error => format!("error: {}", s(&d["message"])),
        AuditEvent::Repaired => "a torn last record was cut off on open".into(),
        AuditEvent::RunFinished => match d["status"].as_str() {
            Some(status) => format!("{} finished: {status}", s(&d["command"])),
            None if d["restored"].is_number() => format!(
                "{} finished: {} restored, {} failed",
                s(&d["command"]),
                d["restored"],
                d["failed"]
            ),
            None => format!("{} finished", s(&d["command"])),
        },
        AuditEvent::EvidenceManifest => format!(
            "evidence manifest s3://{}/{} ({} artifacts, sha256 {})",
            s(&d["bucket"]),
            s(&d["key"]),
            d["artifacts"],
            s(&d["sha256"])
        ),
        AuditEvent::EvidenceAuditCopy => format!(
            "audit trail copied to s3://{}/{} ({} lines, sha256 {})",
            s(&d["bucket"]),
            s(&d["key"]),
            d["lines"],
            s(&d["sha256"])
        ),
    })
}

pub fn list(records: &[Record]) -> Vec<TimelineEntry> {
    records
        .iter()
        .filter_map(|r| {
            Some(TimelineEntry {
                what: what(r)?,
                seq: r.seq,
                time: r.time.clone(),
                run: r.run.clone(),
                event: r.event,
                step: r.step.clone(),
            })
        })
        .collect()
}
