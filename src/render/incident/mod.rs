//! Views of the incident report (`firebreak report`). One model
//! (`report::IncidentReport`), one trait, one renderer per format, so the
//! formats cannot disagree; HTML (for drills) is the next implementation.

pub mod json;
pub mod markdown;

use crate::report::IncidentReport;

pub trait IncidentView {
    fn render(&self, report: &IncidentReport) -> String;
}
