//! Views of a recovery to a baseline: per function, each drift item with
//! what is done about it; then what was applied, and the containment
//! lifted last. Text and JSON from the same report. Environment variables
//! appear by name only (their hashes stay in the JSON).

use std::fmt::Write;

use serde_json::{json, Value};

use crate::engine::recover::ItemStatus;
use crate::engine::recover_baseline::{
    BaselineItem, BaselineItemStatus, BaselineRecoverReport, FunctionPlan,
};
use crate::plan::short;

fn mark(s: BaselineItemStatus) -> &'static str {
    match s {
        BaselineItemStatus::Restore => "restore",
        BaselineItemStatus::Remove => "remove",
        BaselineItemStatus::Kept => "KEPT",
        BaselineItemStatus::Held => "HELD",
    }
}

/// Documents and maps are long: their size, not their text.
fn brief(v: &Value) -> String {
    match v {
        Value::Null => "absent".into(),
        Value::Object(o) => format!("{{{} field(s)}}", o.len()),
        other => short(other),
    }
}

fn item(out: &mut String, i: &BaselineItem) {
    let _ = writeln!(
        out,
        "  {:<8} {}\n      now {} → baseline {}",
        mark(i.status),
        i.id,
        brief(&i.drift.current),
        brief(&i.drift.baseline)
    );
    if i.op.preserves_evidence() && i.status == BaselineItemStatus::Remove {
        out.push_str("      preserved in the forensic bucket before removal\n");
    }
    if let Some(r) = &i.reason {
        let _ = writeln!(out, "      {r}");
    }
}

fn functions(out: &mut String, plans: &[FunctionPlan]) {
    for p in plans {
        let _ = writeln!(
            out,
            "{} (baseline taken at {})",
            p.function, p.baseline_taken_at
        );
        if p.items.is_empty() {
            out.push_str("  = no drift from the baseline\n");
        }
        for i in &p.items {
            item(out, i);
        }
        for r in &p.rotations.items {
            let _ = writeln!(out, "  rotate   {} ({})", r.change.target, r.action);
        }
        for n in &p.rotations.notes {
            let _ = writeln!(out, "  secrets: {n}");
        }
    }
}

/// The plan alone, before confirmation.
pub fn text_plan(incident: &str, plans: &[FunctionPlan]) -> String {
    let mut out = format!(
        "firebreak recover --to-baseline (plan, waiting for confirmation) · incident {incident}\n\n"
    );
    functions(&mut out, plans);
    out
}

pub fn text(r: &BaselineRecoverReport) -> String {
    let header = if r.dry_run {
        " (dry run: nothing is changed)"
    } else {
        ""
    };
    let mut out = format!(
        "firebreak recover --to-baseline{header} · incident {} · store {}\n\n",
        r.incident, r.store
    );
    functions(&mut out, &r.functions);
    for o in &r.outcomes {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            if o.ok { "ok  " } else { "FAIL" },
            o.id,
            o.detail
        );
    }
    let lift: Vec<_> = r
        .lift
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Restore)
        .collect();
    if !lift.is_empty() {
        out.push_str("\nContainment, lifted last:\n");
        for i in lift {
            let _ = writeln!(out, "  lift     {}", i.id);
        }
    }
    if let Some(w) = &r.lift.withheld {
        let _ = writeln!(out, "  {w}");
    }
    for o in &r.lift.outcomes {
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
        "\nRecover to baseline: {} to restore, {} to remove, {} secret(s) to rotate, {} containment item(s) to lift, {} kept, {} held (restore by hand).",
        s.restore, s.remove, s.rotate, s.lift, s.kept, s.held
    );
    if !r.dry_run && !r.remaining.is_empty() {
        let _ = writeln!(
            out,
            "Drift left after the restore: {}",
            r.remaining.join(", ")
        );
    }
    super::recover::custody_line(&mut out, r.audit_copy.as_ref());
    out
}

pub fn json(r: &BaselineRecoverReport) -> String {
    let v = json!({
        "kind": "recover_baseline",
        "incident": r.incident,
        "dry_run": r.dry_run,
        "store": r.store,
        "functions": r.functions,
        "outcomes": r.outcomes,
        "lift": r.lift,
        "remaining": r.remaining,
        "audit_copy": r.audit_copy,
        "api_calls": r.api_calls,
        "summary": r.summary(),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}
