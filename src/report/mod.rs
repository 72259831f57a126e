//! The incident report: what an incident's audit trail says happened,
//! for a manager (what state are we in, what is left to do) and exact for
//! an auditor (every change with before → after, every artifact with its
//! key and SHA-256, the trail's own integrity).
//!
//! Built from the audit trail alone, read through [`StateStore`] without
//! the incident's lease (a report can be made while a run works, or from
//! any backend). The trail never holds a secret value, so neither can the
//! report: secrets appear by name or ARN only. The model is plain data;
//! `render::incident` turns it into Markdown or JSON (HTML comes next), so
//! the views cannot disagree.
//!
//! Modules: `records` reads the trail; `timeline`, `changes`, `findings`,
//! `evidence` and `open_items` each derive one part of the report.

mod changes;
mod evidence;
mod findings;
mod indicators;
mod open_items;
mod records;
#[cfg(test)]
mod tests;
mod timeline;

use serde::Serialize;
use serde_json::Value;

use crate::engine::RunStatus;
use crate::state::{audit, IncidentId, StateError, StateStore, Trail};

pub use changes::{ChangeEntry, ChangeStatus, Rotation};
pub use evidence::{Artifact, Evidence};
pub use findings::{Found, FunctionFindings, PlaintextVariable};
pub use indicators::{FunctionIndicators, IndicatorEntry};
pub use open_items::{OpenItem, OpenKind, PendingDecision};
pub use records::RunInfo;
pub use timeline::TimelineEntry;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("there is no incident `{id}`: nothing was ever recorded at {at}")]
    UnknownIncident { id: String, at: String },
    #[error(transparent)]
    State(#[from] StateError),
}

impl ReportError {
    pub fn hint(&self) -> String {
        match self {
            ReportError::UnknownIncident { .. } => "check the incident id (--incident, FIREBREAK_INCIDENT) and the state directory it was worked in (--state-dir, FIREBREAK_STATE_DIR): `plan`, `run` and `recover` keep each incident there".into(),
            ReportError::State(e) => e.hint(),
        }
    }
}

/// Whether the trail the report comes from is whole.
#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    /// Where the trail is (a path, an address).
    pub trail: String,
    /// Records that chain correctly (all of them when intact).
    pub records: usize,
    pub intact: bool,
    pub head_checked: bool,
    /// The first broken line and why, when it is not intact.
    pub broken_line: Option<usize>,
    pub problem: Option<String>,
    /// Lines that are not a firebreak audit record (left out of the report).
    pub unreadable_lines: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentReport {
    pub incident: String,
    pub generated_at: String,
    pub first_activity: Option<String>,
    pub last_activity: Option<String>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// Who ran firebreak on the incident (caller ARNs).
    pub responders: Vec<String>,
    /// How the latest containing `run` ended; `None` before any.
    pub status: Option<RunStatus>,
    pub integrity: Integrity,
    pub runs: Vec<RunInfo>,
    pub open_items: Vec<OpenItem>,
    pub decisions_pending: Vec<PendingDecision>,
    /// Names and ARNs only, never values.
    pub secrets_rotated: Vec<Rotation>,
    pub findings: Vec<FunctionFindings>,
    /// What identify named as the attacker's changes (and what it judged
    /// expected), per function.
    pub indicators: Vec<FunctionIndicators>,
    pub changes: Vec<ChangeEntry>,
    pub evidence: Evidence,
    pub timeline: Vec<TimelineEntry>,
}

impl IncidentReport {
    /// The ids of the runs that were `firebreak recover`.
    pub fn recover_runs(&self) -> Vec<&str> {
        self.runs
            .iter()
            .filter(|x| x.recovers())
            .map(|x| x.run.as_str())
            .collect()
    }
}

/// The report of incident `id` in `store`.
pub fn build(
    store: &dyn StateStore,
    id: &IncidentId,
    generated_at: &str,
) -> Result<IncidentReport, ReportError> {
    if !store.exists(id)? {
        return Err(ReportError::UnknownIncident {
            id: id.to_string(),
            at: store.address(id),
        });
    }
    let trail = store.read_trail(id)?;
    Ok(from_trail(id.as_str(), &trail, generated_at))
}

/// The report a trail gives (pure: no I/O).
pub fn from_trail(incident: &str, trail: &Trail, generated_at: &str) -> IncidentReport {
    let (records, unreadable_lines) = records::parse(&trail.bytes);
    let integrity = match audit::verify(trail, true) {
        Ok(v) => Integrity {
            trail: v.path,
            records: v.records,
            intact: v.broken.is_none(),
            head_checked: v.head_checked,
            broken_line: v.broken.as_ref().map(|b| b.line),
            problem: v.broken.map(|b| b.problem),
            unreadable_lines,
        },
        Err(e) => Integrity {
            trail: trail.address.clone(),
            records: 0,
            intact: false,
            head_checked: false,
            broken_line: None,
            problem: Some(e.to_string()),
            unreadable_lines,
        },
    };
    let runs = records::runs(&records);
    let actions = records::actions(&records);
    let changes = changes::list(&records, &actions);
    let (open_items, decisions_pending) = open_items::list(&records, &runs, &changes);
    let distinct = |f: &dyn Fn(&records::Record) -> Option<String>| {
        let mut v: Vec<String> = records.iter().filter_map(f).collect();
        v.sort();
        v.dedup();
        v
    };
    IncidentReport {
        incident: incident.to_string(),
        generated_at: generated_at.to_string(),
        first_activity: records.first().map(|r| r.time.clone()),
        last_activity: records.last().map(|r| r.time.clone()),
        accounts: distinct(&|r| r.account.clone()),
        regions: distinct(&|r| {
            (r.event == crate::state::AuditEvent::RunStarted)
                .then(|| r.data["region"].as_str().map(str::to_string))
                .flatten()
        }),
        responders: distinct(&|r| r.caller.clone()),
        status: runs
            .iter()
            .rev()
            .find(|r| r.contains())
            .and_then(|r| r.status),
        integrity,
        open_items,
        decisions_pending,
        secrets_rotated: changes::rotations(&changes),
        findings: findings::list(&records),
        indicators: indicators::list(&records),
        evidence: evidence::list(&records),
        timeline: timeline::list(&records),
        changes,
        runs,
    }
}

/// A value as one short line: an S3 object by its key, a policy document
/// by its size, anything else as compact JSON (long text cut).
pub fn brief(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => cut(s),
        Value::Object(o) if o.get("key").is_some_and(Value::is_string) => {
            format!("s3 key {}", o["key"].as_str().unwrap_or_default())
        }
        Value::Object(o) if o.get("artifacts").is_some_and(Value::is_array) => format!(
            "manifest of {} artifact(s)",
            o["artifacts"].as_array().map_or(0, Vec::len)
        ),
        Value::Object(o) if o.contains_key("Statement") => {
            format!("policy document ({} bytes)", v.to_string().len())
        }
        other => cut(&other.to_string()),
    }
}

fn cut(s: &str) -> String {
    const MAX: usize = 160;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}
