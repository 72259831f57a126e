//! What `plan` and `run` share about targets and results: `--target` to
//! the runner's `Targets`, a run's status to an exit code.

use super::{exit, OutputFormat};
use crate::engine::runner::PlanSet;
use crate::engine::{RunReport, RunStatus, Targets};
use crate::playbook::Playbook;
use crate::render::json::Json;
use crate::render::text::Text;
use crate::render::PlanView;

pub const DEFAULT_MAX_TARGETS: u32 = 25;

pub fn targets(selectors: &[String], max_flag: Option<u32>, playbook: &Playbook) -> Targets {
    if selectors.is_empty() {
        Targets::AsGiven
    } else {
        Targets::Select {
            selectors: selectors.to_vec(),
            max: max_flag
                .or(playbook.max_targets)
                .unwrap_or(DEFAULT_MAX_TARGETS),
        }
    }
}

/// The exit code of a run (docs/cli.md).
pub fn exit_code(report: &RunReport) -> u8 {
    match report.status() {
        RunStatus::Refused => exit::REFUSED,
        RunStatus::Failed => exit::ERROR,
        RunStatus::VerificationFailed => exit::VERIFICATION_FAILED,
        RunStatus::Incomplete => exit::INCOMPLETE,
        RunStatus::DecisionPending => exit::DECISION_PENDING,
        RunStatus::Ok => exit::OK,
    }
}

/// The exit code of a dry run: a step that could not be planned first,
/// then changes pending, then decisions pending.
pub fn plan_exit_code(set: &PlanSet, pending: &RunReport) -> u8 {
    if pending.failures.iter().any(|f| f.stops_harm) {
        exit::ERROR
    } else if !pending.failures.is_empty() {
        exit::INCOMPLETE
    } else if set.summary().changes > 0 {
        exit::CHANGES_PENDING
    } else if !pending.decisions.is_empty() {
        exit::DECISION_PENDING
    } else {
        exit::OK
    }
}

pub fn print_plan(output: OutputFormat, set: &PlanSet, pending: &RunReport, dry_run: bool) {
    match output {
        OutputFormat::Text => {
            print!("{}", Text.plan(set, pending, dry_run));
            eprint!("{}", Text.errors(pending));
        }
        OutputFormat::Json => print!("{}", Json.plan(set, pending, dry_run)),
    }
}

pub fn print_run(output: OutputFormat, set: &PlanSet, report: &RunReport) {
    match output {
        OutputFormat::Text => {
            print!("{}", Text.run(set, report));
            eprint!("{}", Text.errors(report));
            if let Some(copy) = &report.custody.audit_copy {
                println!(
                    "Chain of custody: {} pre-change state(s) preserved; audit trail ({} lines, sha256 {}) copied to s3://{}/{}",
                    report.custody.pre_change.len(),
                    copy.lines,
                    copy.sha256,
                    copy.bucket,
                    copy.key
                );
            }
        }
        OutputFormat::Json => print!("{}", Json.run(set, report)),
    }
}
