//! Views of plans and run results. Text and JSON are two renderings of the
//! same data (`PlanView`), so `--output json` can never drift from the text.

pub mod json;
pub mod text;

use serde::{Deserialize, Serialize};

use crate::engine::{Outcome, RunReport};
use crate::plan::{Plan, Summary};

pub trait PlanView {
    fn plan(&self, plan: &Plan, dry_run: bool) -> String;
    fn run(&self, plan: &Plan, report: &RunReport) -> String;
}

/// The summary of a run: the plan's counts plus what happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    #[serde(flatten)]
    pub plan: Summary,
    pub applied: usize,
    pub confirmed: usize,
    pub already_satisfied: usize,
    pub failed: usize,
    pub checks_passed: usize,
    pub checks_failed: usize,
}

pub fn run_summary(plan: &Plan, report: &RunReport) -> RunSummary {
    summarize(plan.summary(), report)
}

/// A run's summary from the plan counts (of one or several targets).
pub fn summarize(plan: Summary, report: &RunReport) -> RunSummary {
    let count = |o: Outcome| report.outcomes.iter().filter(|x| x.outcome == o).count();
    RunSummary {
        plan,
        applied: count(Outcome::Applied),
        confirmed: count(Outcome::Confirmed),
        already_satisfied: count(Outcome::AlreadySatisfied),
        failed: report.failures.len(),
        checks_passed: report.checks.iter().filter(|c| c.check.passed).count(),
        checks_failed: report.checks_failed(),
    }
}

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
