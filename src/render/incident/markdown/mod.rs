//! The incident report in Markdown: what state the incident is in and
//! what is left to do first (for whoever must decide: `to_do`), then the
//! exact record (for whoever must check: `record`): every change with
//! before → after, the evidence with its keys and hashes, the timeline and
//! the runs.

mod record;
mod to_do;

use std::fmt::Write;

use super::IncidentView;
use crate::render::text::status_words;
use crate::report::IncidentReport;

pub struct Markdown;

/// Text safe inside a table cell.
pub(super) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub(super) fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

pub(super) fn list_or_none(out: &mut String, empty: bool) -> bool {
    if empty {
        out.push_str("None.\n\n");
    }
    empty
}
fn header(out: &mut String, r: &IncidentReport) {
    let _ = writeln!(out, "# Incident report: {}\n", r.incident);
    let latest = r.runs.iter().rev().find(|x| x.contains());
    let status = match (r.status, latest) {
        (Some(s), Some(run)) => format!(
            "**{}** (latest run {}, finished {})",
            status_words(s),
            code(&run.run),
            run.finished_at.as_deref().unwrap_or("?")
        ),
        (None, Some(run)) => format!(
            "**the latest run ({}) did not record its end**",
            code(&run.run)
        ),
        (_, None) => "**nothing has been changed yet** (no `firebreak run` recorded)".into(),
    };
    let trail = &r.integrity;
    let integrity = if trail.intact {
        format!(
            "{}: {} records, hash chain intact{}",
            code(&trail.trail),
            trail.records,
            if trail.head_checked {
                ", head matches"
            } else {
                ""
            }
        )
    } else {
        format!(
            "{}: **BROKEN**{}: {}",
            code(&trail.trail),
            trail
                .broken_line
                .map(|l| format!(" at line {l}"))
                .unwrap_or_default(),
            trail.problem.as_deref().unwrap_or("unreadable")
        )
    };
    let rows = [
        ("Status", status),
        (
            "Open items",
            format!(
                "{} ({} decision(s) pending)",
                r.open_items.len(),
                r.decisions_pending.len()
            ),
        ),
        (
            "Activity",
            format!(
                "{} → {}, {} run(s)",
                r.first_activity.as_deref().unwrap_or("?"),
                r.last_activity.as_deref().unwrap_or("?"),
                r.runs.len()
            ),
        ),
        ("Accounts", r.accounts.join(", ")),
        ("Regions", r.regions.join(", ")),
        (
            "Responders",
            r.responders
                .iter()
                .map(|c| code(c))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Audit trail", integrity),
        ("Generated", r.generated_at.clone()),
    ];
    out.push_str("| | |\n| --- | --- |\n");
    for (k, v) in rows {
        let _ = writeln!(out, "| {k} | {} |", cell(&v));
    }
    out.push('\n');
    if !trail.intact {
        out.push_str("> **Warning:** the audit trail does not verify: this report may not show what really happened. Keep the trail as it is for the investigation and check it with `firebreak audit verify`.\n\n");
    }
}
impl IncidentView for Markdown {
    fn render(&self, r: &IncidentReport) -> String {
        let mut out = String::new();
        header(&mut out, r);
        to_do::open_items(&mut out, r);
        to_do::decisions(&mut out, r);
        to_do::rotated(&mut out, r);
        to_do::indicators(&mut out, r);
        to_do::findings(&mut out, r);
        record::changes(&mut out, r);
        record::evidence(&mut out, r);
        record::timeline(&mut out, r);
        record::runs(&mut out, r);
        out
    }
}
