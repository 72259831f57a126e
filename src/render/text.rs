//! The human view: steps in order, changes as `+ ~ -` with before → after,
//! a one-line summary at the end.

use std::fmt::Write;

use super::{plural, PlanView};
use crate::engine::runner::PlanSet;
use crate::engine::{Outcome, RunReport, RunStatus};
use crate::plan::{short, Plan, StepPlan, StepStatus, Summary};

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
        StepStatus::Held => ("!", "held: needs a decision (below)".to_string()),
        StepStatus::Failed => ("x", "failed (below)".to_string()),
    };
    let target = s.target.as_deref().unwrap_or("");
    let _ = writeln!(out, "  {mark} {} ({}) {target}: {tail}", s.id, s.action);
    if let Some(note) = &s.note {
        let _ = writeln!(out, "      note: {note}");
    }
    // Indicators of compromise (`lambda.indicators`): one line each.
    for f in s
        .outputs
        .get("findings")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
    {
        let _ = writeln!(out, "      finding: {f}");
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

fn plan_summary_line(s: &Summary) -> String {
    let mut line = format!(
        "{}: {} to create, {} to update, {} to delete; {} already satisfied, {} read, {} skipped",
        plural(s.changes, "change", "changes"),
        s.create,
        s.update,
        s.delete,
        plural(s.satisfied, "step", "steps"),
        s.read,
        s.skipped
    );
    if s.held > 0 {
        let _ = write!(line, ", {} held", s.held);
    }
    if s.failed > 0 {
        let _ = write!(line, ", {} failed", s.failed);
    }
    line.push('.');
    line
}

fn plans(out: &mut String, set: &PlanSet, what: &str) {
    let many = set.plans.len() > 1;
    for (n, plan) in set.plans.iter().enumerate() {
        if n == 0 || many {
            if n > 0 {
                let _ = writeln!(out);
            }
            header(out, what, plan);
        }
        if many {
            let function = plan
                .params
                .get("function")
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            let _ = writeln!(out, "target {function}");
        }
        steps(out, plan);
    }
}

fn decisions(out: &mut String, report: &RunReport) {
    if report.decisions.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nDecisions pending (held; everything else goes on)");
    for d in &report.decisions {
        let on = d
            .function
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        let _ = writeln!(out, "  ! {}{on}: {}", d.step, d.decision.question);
        if !d.decision.affects.is_empty() {
            let _ = writeln!(out, "      affects: {}", d.decision.affects.join(", "));
        }
        for o in &d.decision.options {
            let _ = writeln!(out, "      {}: {}", o.how, o.effect);
        }
    }
}

impl Text {
    /// Every step that failed, with its hint: the CLI prints this on
    /// stderr, where errors go.
    pub fn errors(&self, report: &RunReport) -> String {
        let mut out = String::new();
        for f in &report.failures {
            let on = f
                .resource
                .as_deref()
                .or(f.target.as_deref())
                .map(|t| format!(" on {t}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "error: step `{}` ({}){on}: {}",
                f.step, f.action, f.message
            );
            let _ = writeln!(out, "  hint: {}", f.hint);
        }
        for a in &report.aborted {
            let on = a
                .function
                .as_deref()
                .map(|t| format!(" for {t}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "the run stopped at step {}{on}; that target's later steps did not start",
                a.step
            );
        }
        out
    }
}

impl PlanView for Text {
    fn plan(&self, set: &PlanSet, pending: &RunReport, dry_run: bool) -> String {
        let mut out = String::new();
        plans(
            &mut out,
            set,
            if dry_run {
                "firebreak plan (dry run: nothing is changed)"
            } else {
                "firebreak plan"
            },
        );
        decisions(&mut out, pending);
        let targets = if set.plans.len() > 1 {
            format!(" ({} targets)", set.plans.len())
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "\nPlan{targets}: {}",
            plan_summary_line(&set.summary())
        );
        out
    }

    fn run(&self, set: &PlanSet, report: &RunReport) -> String {
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
        for b in &report.blast_radius {
            let _ = writeln!(
                out,
                "\nBlast radius of {} ({}): {} function(s) use the role: {}",
                b.step,
                b.role,
                b.functions.len(),
                b.functions.join(", ")
            );
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
        decisions(&mut out, report);
        let s = report.summary(set.summary());
        let _ = writeln!(
            out,
            "\nResult: {} applied, {} confirmed, {} already in place, {} failed; {} of {} checks passed{}.",
            plural(s.applied, "change", "changes"),
            s.confirmed,
            s.already_satisfied,
            plural(s.failed, "step", "steps"),
            s.checks_passed,
            s.checks_passed + s.checks_failed,
            if s.decisions_pending > 0 {
                format!("; {} pending", plural(s.decisions_pending, "decision", "decisions"))
            } else {
                String::new()
            }
        );
        let _ = writeln!(out, "Status: {}.", status_words(report.status()));
        let calls = &report.api_calls;
        let _ = writeln!(
            out,
            "Targets: {}; API calls: {} ({} mutating, {} throttled).",
            set.plans.len(),
            calls.total,
            calls.mutating,
            calls.throttled
        );
        out
    }
}

/// How a run ended, in words (the run's `Status` line, the incident report).
pub fn status_words(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Ok => "contained and verified",
        RunStatus::DecisionPending => {
            "contained as far as possible without a decision; decide and run again"
        }
        RunStatus::Incomplete => {
            "containment holds, but a step that does not stop harm failed: the run is incomplete"
        }
        RunStatus::VerificationFailed => "a change did not take effect: see the failed checks",
        RunStatus::Failed => "a harm-stopping step failed: containment is NOT complete",
        RunStatus::Refused => "refused: the state moved under the plan",
    }
}
