//! The machine view. Every object carries `summary.changes`.

use serde_json::{json, Value};

use super::{run_summary, PlanView};
use crate::engine::RunReport;
use crate::plan::Plan;

pub struct Json;

fn plan_value(plan: &Plan, kind: &str, dry_run: bool) -> Value {
    json!({
        "kind": kind,
        "dry_run": dry_run,
        "incident": plan.incident,
        "playbook": plan.playbook,
        "account": plan.account,
        "region": plan.region,
        "phases": plan.phases,
        "params": plan.params,
        "steps": plan.steps,
    })
}

impl PlanView for Json {
    fn plan(&self, plan: &Plan, dry_run: bool) -> String {
        let mut v = plan_value(plan, "plan", dry_run);
        v["summary"] = json!(plan.summary());
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    }

    fn run(&self, plan: &Plan, report: &RunReport) -> String {
        let mut v = plan_value(plan, "run", false);
        v["outcomes"] = json!(report.outcomes);
        v["verification"] = json!(report.checks);
        v["errors"] = json!(report.failures);
        v["aborted_at"] = json!(report.aborted_at);
        v["summary"] = json!(run_summary(plan, report));
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    }
}
