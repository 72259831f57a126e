//! The human view: steps in order, changes as `+ ~ -` with before → after,
//! a one-line summary at the end.

use std::fmt::Write;

use super::{plural, run_summary, PlanView};
use crate::engine::{Outcome, RunReport};
use crate::plan::{short, Plan, StepPlan, StepStatus};

pub struct Text;

fn header(out: &mut String, what: &str, plan: &Plan) {
    let _ = writeln!(
        out,
        "{what} · incident {} · playbook {} · account {} · {}",
        plan.incident, plan.playbook.name, plan.account, plan.region
    );
}

fn step_line(out: &mut String, s: &StepPlan) {
    let (mark, tail) = match s.status {
        StepStatus::Changes => ("~", plural(s.changes.len(), "change", "changes")),
        StepStatus::Satisfied => ("=", "already satisfied".to_string()),
        StepStatus::Read => ("?", "read".to_string()),
        StepStatus::Skipped => ("-", "skipped".to_string()),
    };
    let target = s.target.as_deref().unwrap_or("");
    let _ = writeln!(out, "  {mark} {} ({}) {target}: {tail}", s.id, s.action);
    if let Some(note) = &s.note {
        let _ = writeln!(out, "      note: {note}");
    }
    let mut changes: Vec<_> = s.changes.iter().collect();
    changes.sort_by(|a, b| a.target.cmp(&b.target));
    for c in changes {
        let _ = writeln!(out, "      {} {}", c.kind.symbol(), c.target);
        let _ = writeln!(
            out,
            "          {}: {} → {}",
            c.attribute,
            short(&c.before),
            short(&c.after)
        );
        let _ = writeln!(out, "          why: {}", c.reason);
    }
}

fn steps(out: &mut String, plan: &Plan) {
    let mut phase = None;
    for s in &plan.steps {
        if phase != Some(s.phase) {
            let _ = writeln!(out, "\n{}", s.phase);
            phase = Some(s.phase);
        }
        step_line(out, s);
    }
}

fn plan_summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "{}: {} to create, {} to update, {} to delete; {} already satisfied, {} read, {} skipped.",
        plural(s.changes, "change", "changes"),
        s.create,
        s.update,
        s.delete,
        plural(s.satisfied, "step", "steps"),
        s.read,
        s.skipped
    )
}

impl PlanView for Text {
    fn plan(&self, plan: &Plan, dry_run: bool) -> String {
        let mut out = String::new();
        header(
            &mut out,
            if dry_run {
                "firebreak plan (dry run: nothing is changed)"
            } else {
                "firebreak plan"
            },
            plan,
        );
        steps(&mut out, plan);
        let _ = writeln!(out, "\nPlan: {}", plan_summary_line(plan));
        out
    }

    fn run(&self, plan: &Plan, report: &RunReport) -> String {
        let mut out = String::new();
        if !report.outcomes.is_empty() {
            let _ = writeln!(out, "\nApplied");
            for o in &report.outcomes {
                let what = match o.outcome {
                    Outcome::Applied => "applied",
                    Outcome::Confirmed => "confirmed (done by an interrupted earlier run)",
                    Outcome::AlreadySatisfied => "already in place",
                };
                let _ = writeln!(
                    out,
                    "  {} {} {} {}: {} → {}  {what}",
                    o.change.kind.symbol(),
                    o.step,
                    o.change.target,
                    o.change.attribute,
                    short(&o.change.before),
                    short(&o.change.after)
                );
            }
        }
        if !report.checks.is_empty() {
            let _ = writeln!(out, "\nVerification");
            for c in &report.checks {
                let mark = if c.check.passed { "ok  " } else { "FAIL" };
                let _ = writeln!(
                    out,
                    "  {mark} {} {}: {} ({})",
                    c.step, c.check.name, c.check.detail, c.check.target
                );
            }
        }
        if !report.failures.is_empty() {
            let _ = writeln!(out, "\nErrors");
            for f in &report.failures {
                let _ = writeln!(
                    out,
                    "  error in step {} ({}): {}",
                    f.step, f.action, f.message
                );
                let _ = writeln!(out, "      hint: {}", f.hint);
            }
            if let Some(step) = &report.aborted_at {
                let _ = writeln!(
                    out,
                    "  the run stopped at step {step}; later steps did not start"
                );
            }
        }
        let s = run_summary(plan, report);
        let _ = writeln!(
            out,
            "\nResult: {} applied, {} confirmed, {} already in place, {} failed; {} of {} checks passed.",
            plural(s.applied, "change", "changes"),
            s.confirmed,
            s.already_satisfied,
            plural(s.failed, "step", "steps"),
            s.checks_passed,
            s.checks_passed + s.checks_failed
        );
        out
    }
}
