//! Views of the scorecard: Markdown, JSON and a self-contained HTML page
//! with the timeline drawn (inline CSS and SVG, no script, no external
//! URL). One model, so the three cannot disagree.

pub mod html;
pub mod markdown;

use super::score::Scorecard;

pub fn json(s: &Scorecard) -> String {
    serde_json::to_string_pretty(s).unwrap_or_default() + "\n"
}

pub fn verdict(s: &Scorecard) -> String {
    if s.passed {
        format!(
            "PASSED: {} of {} checks passed, every timing within its target",
            s.summary.passed, s.summary.checks
        )
    } else {
        format!(
            "FAILED: {} of {} checks failed, {} timing(s) over target",
            s.summary.failed, s.summary.checks, s.summary.timings_over_target
        )
    }
}
