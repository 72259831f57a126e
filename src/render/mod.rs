//! Views of plans and run results. Text and JSON are two renderings of the
//! same data (`PlanView`), so `--output json` can never drift from the text.

pub mod incident;
pub mod json;
pub mod recover;
pub mod recover_baseline;
pub mod text;
pub mod timeline;

use crate::engine::runner::PlanSet;
use crate::engine::RunReport;

/// One view of a run: the plan (with what is pending: decisions, failed
/// steps) and the result. One target or many, the same view.
pub trait PlanView {
    fn plan(&self, set: &PlanSet, pending: &RunReport, dry_run: bool) -> String;
    fn run(&self, set: &PlanSet, report: &RunReport) -> String;
}

pub use crate::engine::report::RunSummary;

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
