//! Views of a recovery: its plan (items, newest change first), what was
//! restored, and the counts. Text and JSON from the same report.

use std::fmt::Write;

use serde_json::{json, Value};

use crate::engine::recover::{ItemStatus, RecoverItem, RecoverReport};
use crate::evidence::audit_copy::AuditCopy;
use crate::plan::short;

fn mark(s: ItemStatus) -> &'static str {
    match s {
        ItemStatus::Restore => "restore",
        ItemStatus::Held => "HELD",
        ItemStatus::Excluded => "excluded",
        ItemStatus::Restored => "=",
        ItemStatus::Drifted => "DRIFTED",
        ItemStatus::Kept => "KEPT",
    }
}

/// Policy documents are long: show their size, not their text.
fn short_doc(v: &Value) -> String {
    match v {
        Value::Object(_) => format!("policy document ({} bytes)", v.to_string().len()),
        other => short(other),
    }
}

fn items(out: &mut String, items: &[RecoverItem]) {
    if items.is_empty() {
        out.push_str("The journal records no change made by this incident: nothing to recover.\n");
    }
    for i in items {
        let _ = writeln!(
            out,
            "  {:<8} {}\n      {}: {} → {}\n      recorded by step `{}` at {}",
            mark(i.status),
            i.id,
            i.change.target,
            short_doc(&i.change.before),
            short_doc(&i.change.after),
            i.recorded_by_step,
            i.recorded_at
        );
        if let Some(r) = &i.reason {
            let _ = writeln!(out, "      {r}");
        }
    }
}

/// The plan alone, before confirmation.
pub fn text_plan(incident: &str, plan: &[RecoverItem], indicators: Option<&str>) -> String {
    let mut out =
        format!("firebreak recover (plan, waiting for confirmation) · incident {incident}\n\n");
    items(&mut out, plan);
    if let Some(line) = indicators {
        let _ = writeln!(out, "Indicators: {line}");
    }
    out
}

pub fn text(r: &RecoverReport) -> String {
    let header = if r.dry_run {
        " (dry run: nothing is changed)"
    } else {
        ""
    };
    let mut out = format!("firebreak recover{header} · incident {}\n\n", r.incident);
    items(&mut out, &r.items);
    for o in &r.outcomes {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            if o.ok { "ok  " } else { "FAIL" },
            o.id,
            o.detail
        );
    }
    let s = r.summary();
    let _ = writeln!(
        out,
        "\nRecover: {} to restore, {} held back, {} excluded, {} already restored, {} changed by others, {} kept (never restored).",
        s.restore, s.held, s.excluded, s.already_restored, s.drifted, s.kept
    );
    if let Some(line) = &r.indicators {
        let _ = writeln!(out, "Indicators: {line}");
    }
    if r.items.iter().any(|i| {
        i.status == ItemStatus::Restore
            && i.change.attribute == "reserved_concurrency"
            && i.change.before == json!(0)
    }) {
        out.push_str("Note: asynchronous invocations queued while the function was throttled will run once its concurrency returns.\n");
    }
    custody_line(&mut out, r.audit_copy.as_ref());
    out
}

/// Where a recover run's audit trail went (both kinds of recover).
pub(crate) fn custody_line(out: &mut String, copy: Option<&AuditCopy>) {
    if let Some(c) = copy {
        let _ = writeln!(
            out,
            "Chain of custody: audit trail ({} lines, sha256 {}) copied to s3://{}/{}",
            c.lines, c.sha256, c.bucket, c.key
        );
    }
}

pub fn json(r: &RecoverReport) -> String {
    let v = json!({
        "kind": "recover",
        "incident": r.incident,
        "dry_run": r.dry_run,
        "items": r.items,
        "outcomes": r.outcomes,
        "audit_copy": r.audit_copy,
        "indicators": r.indicators,
        "api_calls": r.api_calls,
        "summary": r.summary(),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}
