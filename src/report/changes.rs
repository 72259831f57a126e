//! Every change the incident made or tried, with before → after, as the
//! trail records it: the `applying` record written before each AWS call,
//! then `applied`, `outcome_unknown` or an `error` naming the resource (a
//! refused call). A `confirmed` record is a change an interrupted run made
//! and a later one found in place.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::records::Record;
use crate::plan::Change;
use crate::state::AuditEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// The call was made and succeeded.
    Applied,
    /// An interrupted run had made it; a later run found it in place.
    Confirmed,
    /// `firebreak recover` put the original value back.
    Restored,
    /// The call may or may not have landed (timeout, crash); the next run
    /// re-observes and settles it.
    InDoubt,
    /// AWS refused it: nothing changed.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeEntry {
    pub time: String,
    pub run: String,
    pub step: String,
    pub action: Option<String>,
    pub target: String,
    pub attribute: String,
    pub before: Value,
    pub after: Value,
    pub reason: String,
    pub status: ChangeStatus,
    /// Why it failed or is in doubt.
    pub detail: Option<String>,
    /// For an in-doubt change: a later run settled it (applied or confirmed).
    pub settled_later: bool,
}

/// A secret or parameter this incident rotated (never its value).
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    pub resource: String,
    pub kind: &'static str,
    pub step: String,
    pub time: String,
    pub status: ChangeStatus,
}

fn change_of(v: &Value) -> Option<Change> {
    serde_json::from_value(v.clone()).ok()
}

fn entry(
    r: &Record,
    change: Change,
    status: ChangeStatus,
    actions: &BTreeMap<String, String>,
) -> ChangeEntry {
    let step = r.step.clone().unwrap_or_default();
    ChangeEntry {
        time: r.time.clone(),
        run: r.run.clone(),
        action: actions.get(&step).cloned(),
        step,
        target: change.target,
        attribute: change.attribute,
        before: change.before,
        after: change.after,
        reason: change.reason,
        status,
        detail: None,
        settled_later: false,
    }
}

/// The changes, in the order their outcome was recorded.
pub fn list(records: &[Record], actions: &BTreeMap<String, String>) -> Vec<ChangeEntry> {
    let mut out: Vec<ChangeEntry> = Vec::new();
    // Calls made and not yet answered, per run.
    let mut open: Vec<(usize, ChangeEntry)> = Vec::new();
    let same = |a: &ChangeEntry, r: &Record, c: &Change| {
        a.run == r.run
            && Some(&a.step) == r.step.as_ref()
            && a.target == c.target
            && a.attribute == c.attribute
            && a.after == c.after
    };
    for (i, r) in records.iter().enumerate() {
        match r.event {
            AuditEvent::Applying => {
                if let Some(c) = change_of(&r.data) {
                    open.push((i, entry(r, c, ChangeStatus::InDoubt, actions)));
                }
            }
            AuditEvent::Applied => {
                let Some(c) = change_of(&r.data) else {
                    continue;
                };
                open.retain(|(_, a)| !same(a, r, &c));
                let status = if r.step.as_deref() == Some("recover") {
                    ChangeStatus::Restored
                } else {
                    ChangeStatus::Applied
                };
                out.push(entry(r, c, status, actions));
            }
            AuditEvent::Confirmed => {
                if let Some(c) = change_of(&r.data["change"]) {
                    out.push(entry(r, c, ChangeStatus::Confirmed, actions));
                }
            }
            AuditEvent::OutcomeUnknown => {
                let Some(c) = change_of(&r.data["change"]) else {
                    continue;
                };
                open.retain(|(_, a)| !same(a, r, &c));
                let mut e = entry(r, c, ChangeStatus::InDoubt, actions);
                e.detail = r.data["message"].as_str().map(str::to_string);
                out.push(e);
            }
            AuditEvent::Error => {
                // A refused call names its resource (or, in recover, its
                // item); the call in flight for it failed.
                let resource = r.data["resource"].as_str();
                let pos = open.iter().rposition(|(_, a)| {
                    a.run == r.run
                        && Some(&a.step) == r.step.as_ref()
                        && resource.is_none_or(|res| a.target == res)
                });
                if let Some(pos) = pos {
                    let (_, mut e) = open.remove(pos);
                    e.status = ChangeStatus::Failed;
                    e.time = r.time.clone();
                    e.detail = r.data["message"].as_str().map(str::to_string);
                    out.push(e);
                }
            }
            _ => {}
        }
    }
    // Calls whose run ended before any outcome was written (killed).
    for (_, mut e) in open {
        e.detail = Some("the run ended before the outcome was recorded".into());
        out.push(e);
    }
    // An in-doubt change a later run applied or confirmed is settled.
    for i in 0..out.len() {
        if out[i].status != ChangeStatus::InDoubt {
            continue;
        }
        let settled = out.iter().any(|o| {
            matches!(o.status, ChangeStatus::Applied | ChangeStatus::Confirmed)
                && o.target == out[i].target
                && o.attribute == out[i].attribute
                && o.after == out[i].after
                && o.time >= out[i].time
        });
        out[i].settled_later = settled;
    }
    out.sort_by(|a, b| a.time.cmp(&b.time));
    out
}

/// The rotations among the changes: what was rotated, by name.
pub fn rotations(changes: &[ChangeEntry]) -> Vec<Rotation> {
    changes
        .iter()
        .filter(|c| matches!(c.status, ChangeStatus::Applied | ChangeStatus::Confirmed))
        .filter_map(|c| {
            let kind = match c.action.as_deref() {
                Some("secrets.rotate") => "secret",
                Some("ssm.rotate_parameter") => "parameter",
                _ => return None,
            };
            Some(Rotation {
                resource: c.target.clone(),
                kind,
                step: c.step.clone(),
                time: c.time.clone(),
                status: c.status,
            })
        })
        .collect()
}
