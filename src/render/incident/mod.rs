//! Views of the incident report (`firebreak report`). One model
//! (`report::IncidentReport`), one trait, one renderer per format, so the
//! formats cannot disagree: Markdown, JSON and a self-contained HTML page.

pub mod html;
pub mod json;
pub mod markdown;

use crate::report::IncidentReport;

pub trait IncidentView {
    fn render(&self, report: &IncidentReport) -> String;
}
