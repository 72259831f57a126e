//! The audit trail read back as typed records, and the runs it holds.
//!
//! The report never trusts a record it cannot read: a line that is not a
//! firebreak audit record is counted (the integrity check names it) and
//! left out, never guessed at.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::engine::RunStatus;
use crate::state::audit::AuditRecord;
use crate::state::AuditEvent;

/// One audit record, with its event known.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub time: String,
    pub run: String,
    pub caller: Option<String>,
    pub account: Option<String>,
    pub event: AuditEvent,
    pub step: Option<String>,
    pub data: Value,
}

/// Every readable record, in trail order, and how many lines were not.
pub fn parse(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut unreadable = 0;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let parsed = serde_json::from_slice::<AuditRecord>(line)
            .ok()
            .and_then(|r| AuditEvent::parse(&r.event).map(|e| (r, e)));
        match parsed {
            Some((r, event)) => out.push(Record {
                seq: r.seq,
                time: r.time,
                run: r.run,
                caller: r.caller.as_ref().map(|c| c.arn.clone()),
                account: r.caller.map(|c| c.account),
                event,
                step: r.step,
                data: r.data,
            }),
            None => unreadable += 1,
        }
    }
    (out, unreadable)
}

/// One command's work on the incident (`plan`, `run`, `recover`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunInfo {
    pub run: String,
    pub command: String,
    pub dry_run: bool,
    pub playbook: Option<String>,
    pub caller: Option<String>,
    pub region: Option<String>,
    pub started_at: String,
    /// `None`: the run ended without recording its end (killed, crashed,
    /// or still going).
    pub finished_at: Option<String>,
    /// How a `run` ended (`None` for `plan` and `recover`).
    pub status: Option<RunStatus>,
}

impl RunInfo {
    /// A run that could change AWS (not a dry run, not `recover`): `run`,
    /// a responder's run for an alarm or finding (`respond`, `watch`, the
    /// Lambda handler), or a drill's direct run.
    pub fn contains(&self) -> bool {
        matches!(
            self.command.as_str(),
            "firebreak run" | "firebreak respond" | "firebreak drill"
        ) && !self.dry_run
    }

    /// `firebreak recover`, plain or `--to-baseline`.
    pub fn recovers(&self) -> bool {
        self.command == "firebreak recover" || self.command.starts_with("firebreak recover ")
    }
}

/// The runs, in the order they started.
pub fn runs(records: &[Record]) -> Vec<RunInfo> {
    let mut runs: Vec<RunInfo> = Vec::new();
    for r in records {
        match r.event {
            AuditEvent::RunStarted => runs.push(RunInfo {
                run: r.run.clone(),
                command: text(&r.data["command"]).unwrap_or_else(|| "firebreak".into()),
                dry_run: r.data["dry_run"].as_bool().unwrap_or(false),
                playbook: text(&r.data["playbook"]["name"]),
                caller: r.caller.clone(),
                region: text(&r.data["region"]),
                started_at: r.time.clone(),
                finished_at: None,
                status: None,
            }),
            AuditEvent::RunFinished => {
                if let Some(info) = runs.iter_mut().rev().find(|i| i.run == r.run) {
                    info.finished_at = Some(r.time.clone());
                    info.status = serde_json::from_value(r.data["status"].clone()).ok();
                }
            }
            _ => {}
        }
    }
    runs
}

/// The action of each step, as its observations name it (`recover` is
/// firebreak's own).
pub fn actions(records: &[Record]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in records {
        if let (Some(step), Some(action)) = (&r.step, r.data["action"].as_str()) {
            out.insert(step.clone(), action.to_string());
        }
    }
    out.entry("recover".into())
        .or_insert_with(|| "firebreak recover".into());
    out
}

pub fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}
