//! What a run returns to whoever drove it (CLI, queue worker, Lambda,
//! drill): typed, so every entry point renders the same facts and none
//! re-derives them.

use serde::{Deserialize, Serialize};

use super::custody::CustodyReport;
use crate::action::registry;
use crate::action::Check;
use crate::aws::CallCounts;
use crate::plan::{Change, Decision, Plan, StepStatus, Summary};

/// What happened to one planned change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The AWS call was made by this run.
    Applied,
    /// An interrupted earlier run had made it; re-observation confirmed it.
    Confirmed,
    /// Someone else had already brought it to the desired state.
    AlreadySatisfied,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeOutcome {
    pub step: String,
    pub outcome: Outcome,
    pub change: Change,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepCheck {
    pub step: String,
    #[serde(flatten)]
    pub check: Check,
}

/// A step that could not do its work, at plan time or while applying.
#[derive(Debug, Clone, Serialize)]
pub struct StepFailure {
    pub step: String,
    /// The step's resource when it was observed; the target function
    /// otherwise (a step that failed before observing).
    pub target: Option<String>,
    /// The one resource a failed change was about (a secret among the
    /// step's secrets); `None` when the step failed as a whole.
    pub resource: Option<String>,
    /// Refused rather than failed: the state moved under the plan.
    pub refused: bool,
    /// The step stops harm (containment did not fully happen).
    pub stops_harm: bool,
    pub action: String,
    pub message: String,
    pub hint: String,
}

/// A target whose run stopped at a step (`on_error: abort`, or a stale
/// change): its later steps did not start, other targets went on.
#[derive(Debug, Clone, Serialize)]
pub struct Aborted {
    pub function: Option<String>,
    pub step: String,
}

/// A step held back until someone decides (contract 14), with where.
#[derive(Debug, Clone, Serialize)]
pub struct PendingDecision {
    pub step: String,
    pub function: Option<String>,
    #[serde(flatten)]
    pub decision: Decision,
}

/// Wall-clock time of each stage, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub plan_ms: u64,
    pub apply_ms: u64,
    pub verify_ms: u64,
    /// Planning, then every target's harm-stopping steps until the last
    /// was answered: time to contained. Time spent waiting for a human to
    /// confirm is not counted.
    pub contained_ms: u64,
    /// Time to contained split into waiting for AWS, pacing and
    /// firebreak's own work: from the session's origin (the CLI: the
    /// process's start) in `run --yes`, from the start of applying after a
    /// confirmation or with a saved plan. Exact for one target; with
    /// several, round trips overlap.
    pub to_contained: super::Split,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub outcomes: Vec<ChangeOutcome>,
    pub checks: Vec<StepCheck>,
    pub failures: Vec<StepFailure>,
    pub decisions: Vec<PendingDecision>,
    pub aborted: Vec<Aborted>,
    pub timings: Timings,
    /// Requests sent, by operation, and how many were throttled.
    pub api_calls: CallCounts,
    /// Where the chain of custody went (empty without evidence steps).
    pub custody: CustodyReport,
    /// Who a change affected, named after containment because the change
    /// went on before the region's functions were listed (`run --yes`).
    pub blast_radius: Vec<BlastRadius>,
}

/// Every function using a role a step quarantined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlastRadius {
    pub step: String,
    pub role: String,
    /// ARNs, sorted; the target's own included.
    pub functions: Vec<String>,
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
    #[serde(default)]
    pub decisions_pending: usize,
}

/// How a run ended, most serious first; each entry point maps it to its
/// own signal (the CLI: an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// A change was refused because the state moved under the plan.
    Refused,
    /// A harm-stopping step failed: containment is not complete.
    Failed,
    /// AWS accepted a change that verification shows is not in effect.
    VerificationFailed,
    /// Containment holds, but a step that does not stop harm (evidence,
    /// identify) failed: the run is incomplete.
    Incomplete,
    /// Everything that needed no decision is done; some steps wait for one.
    DecisionPending,
    Ok,
}

impl RunReport {
    /// The counts of `plan` (one or several targets) plus what happened.
    pub fn summary(&self, plan: Summary) -> RunSummary {
        let count = |o: Outcome| self.outcomes.iter().filter(|x| x.outcome == o).count();
        RunSummary {
            plan,
            applied: count(Outcome::Applied),
            confirmed: count(Outcome::Confirmed),
            already_satisfied: count(Outcome::AlreadySatisfied),
            failed: self.failures.len(),
            checks_passed: self.checks.iter().filter(|c| c.check.passed).count(),
            checks_failed: self.checks_failed(),
            decisions_pending: self.decisions.len(),
        }
    }

    /// Adds a part of the run (one target, one pass) to the whole.
    pub fn merge(&mut self, part: RunReport) {
        self.outcomes.extend(part.outcomes);
        self.checks.extend(part.checks);
        self.failures.extend(part.failures);
        self.decisions.extend(part.decisions);
        self.aborted.extend(part.aborted);
    }

    pub fn checks_failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.check.passed).count()
    }

    pub fn status(&self) -> RunStatus {
        if self.failures.iter().any(|f| f.refused) {
            RunStatus::Refused
        } else if self.failures.iter().any(|f| f.stops_harm) {
            RunStatus::Failed
        } else if self.checks_failed() > 0 {
            RunStatus::VerificationFailed
        } else if !self.failures.is_empty() {
            RunStatus::Incomplete
        } else if !self.decisions.is_empty() {
            RunStatus::DecisionPending
        } else {
            RunStatus::Ok
        }
    }

    /// The step where a target's run stopped (one target's view).
    pub fn aborted_at(&self) -> Option<&str> {
        self.aborted.first().map(|a| a.step.as_str())
    }
}

/// What planning already knows is pending or failed, before anything is
/// applied: held steps and steps that could not be observed.
pub fn from_plans(plans: &[Plan]) -> RunReport {
    let mut report = RunReport::default();
    for plan in plans {
        let function = plan
            .params
            .get("function")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        for s in &plan.steps {
            match s.status {
                StepStatus::Held => {
                    if let Some(d) = &s.decision {
                        report.decisions.push(PendingDecision {
                            step: s.id.clone(),
                            function: function.clone(),
                            decision: d.clone(),
                        });
                    }
                }
                StepStatus::Failed => {
                    let (message, hint) = s
                        .error
                        .as_ref()
                        .map(|e| (e.message.clone(), e.hint.clone()))
                        .unwrap_or_default();
                    report.failures.push(StepFailure {
                        step: s.id.clone(),
                        target: s.target.clone().or_else(|| function.clone()),
                        resource: None,
                        refused: false,
                        stops_harm: registry::find(&s.action).is_some_and(|a| a.spec().stops_harm),
                        action: s.action.clone(),
                        message,
                        hint,
                    });
                }
                _ => {}
            }
        }
    }
    report
}
