//! The machine view: one object per command, the same shape for one target
//! or many (`targets` is always a list). Every object carries
//! `summary.changes`.

use serde_json::{json, Value};

use super::PlanView;
use crate::engine::runner::PlanSet;
use crate::engine::RunReport;

pub struct Json;

fn common(set: &PlanSet, report: &RunReport, kind: &str, dry_run: bool) -> Value {
    let first = set.plans.first();
    json!({
        "kind": kind,
        "dry_run": dry_run,
        "incident": first.map(|p| p.incident.clone()),
        "playbook": first.map(|p| p.playbook.clone()),
        "account": first.map(|p| p.account.clone()),
        "region": first.map(|p| p.region.clone()),
        "phases": first.map(|p| p.phases.clone()),
        "targets": set.plans.iter().map(|p| json!({
            "function": p.params.get("function"),
            "params": p.params,
            "steps": p.steps,
            "summary": p.summary(),
        })).collect::<Vec<_>>(),
        "decisions": report.decisions,
        "errors": report.failures,
        "status": report.status(),
        "api_calls": report.api_calls,
        "timings": report.timings,
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

impl PlanView for Json {
    fn plan(&self, set: &PlanSet, pending: &RunReport, dry_run: bool) -> String {
        let mut v = common(set, pending, "plan", dry_run);
        v["summary"] = json!(set.summary());
        pretty(&v)
    }

    fn run(&self, set: &PlanSet, report: &RunReport) -> String {
        let mut v = common(set, report, "run", false);
        v["outcomes"] = json!(report.outcomes);
        v["verification"] = json!(report.checks);
        v["aborted"] = json!(report.aborted);
        v["custody"] = json!(report.custody);
        if !report.blast_radius.is_empty() {
            v["blast_radius"] = json!(report.blast_radius);
        }
        v["summary"] = json!(report.summary(set.summary()));
        pretty(&v)
    }
}
