//! The exact record, for whoever must check: every change with before →
//! after and how it ended, the evidence with keys and hashes, the timeline
//! and the runs.

use std::fmt::Write;

use super::{cell, code, list_or_none};
use crate::render::text::status_words;
use crate::report::{brief, ChangeStatus, IncidentReport};

pub(super) fn changes(out: &mut String, r: &IncidentReport) {
    out.push_str("## Changes\n\n");
    if list_or_none(out, r.changes.is_empty()) {
        return;
    }
    out.push_str("| when | step | resource | attribute | before → after | outcome |\n| --- | --- | --- | --- | --- | --- |\n");
    for c in &r.changes {
        let outcome = match c.status {
            ChangeStatus::Applied => "applied".to_string(),
            ChangeStatus::Confirmed => "confirmed (an interrupted run made it)".into(),
            ChangeStatus::Restored => "restored".into(),
            ChangeStatus::InDoubt if c.settled_later => "in doubt, settled by a later run".into(),
            ChangeStatus::InDoubt => format!(
                "**IN DOUBT**: {}",
                c.detail.as_deref().unwrap_or("no outcome recorded")
            ),
            ChangeStatus::Failed => {
                format!("**FAILED**: {}", c.detail.as_deref().unwrap_or("refused"))
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} → {} | {} |",
            c.time,
            code(&c.step),
            cell(&code(&c.target)),
            cell(&code(&c.attribute)),
            cell(&brief(&c.before)),
            cell(&brief(&c.after)),
            cell(&outcome)
        );
    }
    out.push('\n');
}

pub(super) fn evidence(out: &mut String, r: &IncidentReport) {
    let e = &r.evidence;
    out.push_str("## Evidence\n\n");
    if list_or_none(
        out,
        e.manifests.is_empty() && e.artifacts.is_empty() && e.audit_copies.is_empty(),
    ) {
        return;
    }
    if !e.artifacts.is_empty() {
        out.push_str("| artifact | S3 object | SHA-256 | bytes |\n| --- | --- | --- | --- |\n");
        for a in &e.artifacts {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&a.name),
                code(&format!("s3://{}/{}", a.bucket, a.key)),
                code(&a.sha256),
                a.size
            );
        }
        out.push('\n');
    }
    if e.manifests_without_listing > 0 {
        let _ = writeln!(
            out,
            "{} manifest(s) were written by a firebreak that did not name their artifacts in the trail: the manifest objects list them.\n",
            e.manifests_without_listing
        );
    }
    out.push_str("Manifests (each lists every artifact with its SHA-256; `firebreak evidence verify` re-checks them):\n\n");
    for m in &e.manifests {
        let _ = writeln!(
            out,
            "- {} sha256 {} ({} artifacts, {} bytes)",
            code(&format!("s3://{}/{}", m.bucket, m.key)),
            code(&m.sha256),
            m.artifacts,
            m.size
        );
    }
    out.push('\n');
    if !e.audit_copies.is_empty() {
        out.push_str("Copies of the audit trail:\n\n");
        for c in &e.audit_copies {
            let _ = writeln!(
                out,
                "- {} sha256 {} ({} lines)",
                code(&format!("s3://{}/{}", c.bucket, c.key)),
                code(&c.sha256),
                c.lines
            );
        }
        out.push('\n');
    }
}

pub(super) fn timeline(out: &mut String, r: &IncidentReport) {
    out.push_str("## Timeline\n\nObservations, planned changes and the record before each call are left out; the audit trail holds every record.\n\n");
    out.push_str("| time | # | step | what happened |\n| --- | --- | --- | --- |\n");
    for t in &r.timeline {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            t.time,
            t.seq,
            t.step.as_deref().map(code).unwrap_or_default(),
            cell(&t.what)
        );
    }
    out.push('\n');
}

pub(super) fn runs(out: &mut String, r: &IncidentReport) {
    out.push_str("## Runs\n\n| run | command | playbook | started | finished | status |\n| --- | --- | --- | --- | --- | --- |\n");
    for x in &r.runs {
        let command = if x.dry_run {
            format!("{} (dry run)", x.command)
        } else {
            x.command.clone()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            code(&x.run),
            command,
            x.playbook.as_deref().unwrap_or(""),
            x.started_at,
            x.finished_at.as_deref().unwrap_or("**did not finish**"),
            x.status.map(status_words).unwrap_or("")
        );
    }
}
