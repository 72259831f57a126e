//! The machine view: the report model as one object, with the `kind` and
//! `summary` every `--output json` object carries.

use serde_json::json;

use super::IncidentView;
use crate::report::IncidentReport;

pub struct Json;

impl IncidentView for Json {
    fn render(&self, r: &IncidentReport) -> String {
        let v = json!({
            "kind": "report",
            "report": r,
            "summary": {
                "changes": 0,
                "changes_recorded": r.changes.len(),
                "secrets_rotated": r.secrets_rotated.len(),
                "open_items": r.open_items.len(),
                "decisions_pending": r.decisions_pending.len(),
                "artifacts": r.evidence.artifacts.len(),
                "intact": r.integrity.intact,
            },
        });
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    }
}
