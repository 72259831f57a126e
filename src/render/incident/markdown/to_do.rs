//! The part of the report for whoever must act: what is left to do, the
//! decisions pending, the secrets rotated and what the function could read.

use std::fmt::Write;

use super::{cell, code, list_or_none};
use crate::report::{ChangeStatus, Found, FunctionFindings, IncidentReport, OpenKind};

pub(super) fn open_items(out: &mut String, r: &IncidentReport) {
    out.push_str("## What is left to do\n\n");
    if r.open_items.is_empty() {
        out.push_str("Nothing is left open.\n\n");
        return;
    }
    for (i, item) in r.open_items.iter().enumerate() {
        let kind = match item.kind {
            OpenKind::Decision => "Decide",
            OpenKind::FailedStep => "Failed",
            OpenKind::InDoubt => "In doubt",
            OpenKind::CheckFailed => "Check failed",
            OpenKind::RotateAtSource => "Rotate at the source",
            OpenKind::PlaintextSecret => "Plaintext secret",
            OpenKind::Interrupted => "Interrupted",
        };
        let at = match (&item.step, &item.resource) {
            (Some(s), Some(res)) => format!(" (step {}, {})", code(s), code(res)),
            (Some(s), None) => format!(" (step {})", code(s)),
            (None, Some(res)) => format!(" ({})", code(res)),
            (None, None) => String::new(),
        };
        let _ = writeln!(out, "{}. **{kind}**{at}: {}", i + 1, item.what);
        if !item.how.is_empty() {
            let _ = writeln!(out, "   - what to do: {}", item.how);
        }
    }
    out.push('\n');
}

pub(super) fn decisions(out: &mut String, r: &IncidentReport) {
    out.push_str("## Decisions pending\n\n");
    if list_or_none(out, r.decisions_pending.is_empty()) {
        return;
    }
    for d in &r.decisions_pending {
        let on = d
            .target
            .as_deref()
            .map(|t| format!(" on {}", code(t)))
            .unwrap_or_default();
        let _ = writeln!(out, "- step {}{on}: {}", code(&d.step), d.decision.question);
        if !d.decision.affects.is_empty() {
            let affects: Vec<String> = d.decision.affects.iter().map(|a| code(a)).collect();
            let _ = writeln!(out, "  - affects: {}", affects.join(", "));
        }
        for o in &d.decision.options {
            let _ = writeln!(out, "  - {}: {}", code(&o.how), o.effect);
        }
    }
    out.push('\n');
}

pub(super) fn rotated(out: &mut String, r: &IncidentReport) {
    out.push_str("## Secrets rotated\n\nNames only: values never leave AWS.\n\n");
    if list_or_none(out, r.secrets_rotated.is_empty()) {
        return;
    }
    out.push_str(
        "| secret or parameter | kind | step | when | |\n| --- | --- | --- | --- | --- |\n",
    );
    for s in &r.secrets_rotated {
        let how = match s.status {
            ChangeStatus::Confirmed => "confirmed after an interrupted run",
            _ => "rotated",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {how} |",
            code(&s.resource),
            s.kind,
            code(&s.step),
            s.time
        );
    }
    out.push('\n');
}

fn found_line(out: &mut String, label: &str, found: &[Found]) {
    if found.is_empty() {
        return;
    }
    let items: Vec<String> = found
        .iter()
        .map(|f| format!("{} ({})", code(&f.resource), f.from.join("; ")))
        .collect();
    let _ = writeln!(out, "- **{label}:** {}", items.join(", "));
}

/// Shown only for incidents whose playbook identified indicators.
pub(super) fn indicators(out: &mut String, r: &IncidentReport) {
    if r.indicators.is_empty() {
        return;
    }
    out.push_str("## Indicators of compromise\n\n");
    for f in &r.indicators {
        let _ = writeln!(
            out,
            "### {} (observed {}, window from {})\n",
            code(&f.function),
            f.observed_at,
            f.window_start
        );
        if !f.baseline.is_empty() {
            let _ = writeln!(out, "- **Baseline:** {}", f.baseline);
        }
        let _ = writeln!(out, "- **CloudTrail:** {}\n", f.cloudtrail);
        if f.indicators.is_empty() {
            out.push_str("None found.\n\n");
            continue;
        }
        out.push_str("| | kind | subject | what | why | who, when | source |\n| --- | --- | --- | --- | --- | --- | --- |\n");
        for i in &f.indicators {
            let mark = if i.suspicious {
                "**SUSPICIOUS**"
            } else {
                "expected"
            };
            let who = match (&i.actor, &i.when) {
                (Some(a), Some(w)) => format!("{a} at {w}"),
                (Some(a), None) => a.clone(),
                (None, Some(w)) => w.clone(),
                (None, None) => String::new(),
            };
            let detail = if i.active {
                i.detail.clone()
            } else {
                format!("{} (no longer in effect)", i.detail)
            };
            let source = serde_json::to_value(i.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {mark} | {} | {} | {} | {} | {} | {source} |",
                i.kind,
                code(&i.subject),
                cell(&detail),
                cell(&i.why),
                cell(&who)
            );
        }
        out.push('\n');
    }
}

pub(super) fn findings(out: &mut String, r: &IncidentReport) {
    out.push_str("## What the function could read\n\n");
    if list_or_none(out, r.findings.is_empty()) {
        return;
    }
    for f in &r.findings {
        function_findings(out, f);
    }
}

fn function_findings(out: &mut String, f: &FunctionFindings) {
    let _ = writeln!(
        out,
        "### {} (observed {})\n",
        code(&f.function),
        f.observed_at
    );
    if f.secrets.is_empty() && f.parameters.is_empty() && f.plaintext_variables.is_empty() {
        out.push_str("- no secret or SecureString parameter found\n");
    }
    found_line(out, "Secrets", &f.secrets);
    found_line(out, "SecureString parameters", &f.parameters);
    found_line(
        out,
        "Readable, not SecureString (not rotated)",
        &f.plain_parameters,
    );
    if !f.plaintext_variables.is_empty() {
        let vars: Vec<String> = f
            .plaintext_variables
            .iter()
            .map(|v| format!("{} ({})", code(&v.variable), v.why))
            .collect();
        let _ = writeln!(
            out,
            "- **Plaintext secrets in its environment:** {}",
            vars.join(", ")
        );
    }
    out.push('\n');
}
