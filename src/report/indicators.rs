//! The indicators of compromise identify named, from the trail: for each
//! function, the first `lambda.indicators` observation (the state before
//! containment changed anything), indicator by indicator. Artifacts are
//! left out: they are in the evidence bucket, and the report stays a
//! summary. No value is here: an indicator names variables, never their
//! values.

use std::collections::BTreeMap;

use serde::Serialize;

use super::records::Record;
use crate::action::lambda::indicators::{Assessment, Source};
use crate::state::AuditEvent;

#[derive(Debug, Clone, Serialize)]
pub struct IndicatorEntry {
    /// `public_statement`, `foreign_layer`, … (`Kind::as_str`).
    pub kind: String,
    /// The ARN of what carries it.
    pub subject: String,
    pub detail: String,
    pub suspicious: bool,
    pub why: String,
    pub source: Source,
    pub actor: Option<String>,
    pub when: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionIndicators {
    pub function: String,
    pub observed_at: String,
    pub window_start: String,
    /// Which baseline judged the drift (empty: heuristics only).
    pub baseline: String,
    pub cloudtrail: String,
    pub indicators: Vec<IndicatorEntry>,
}

/// One entry per function identify assessed, from its first observation.
pub fn list(records: &[Record]) -> Vec<FunctionIndicators> {
    let mut first: BTreeMap<String, (&Record, Assessment)> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.event == AuditEvent::Observation && r.data["action"] == "lambda.indicators")
    {
        // A record another version wrote differently is left out, never
        // guessed at (like any unreadable record).
        let Ok(a) = serde_json::from_value::<Assessment>(r.data["state"]["assessment"].clone())
        else {
            continue;
        };
        first.entry(a.function_arn.clone()).or_insert((r, a));
    }
    first
        .into_values()
        .map(|(r, a)| FunctionIndicators {
            function: a.function_arn,
            observed_at: r.time.clone(),
            window_start: a.since,
            baseline: a.baseline,
            cloudtrail: a.cloudtrail,
            indicators: a
                .indicators
                .into_iter()
                .map(|i| IndicatorEntry {
                    kind: i.kind.as_str().to_string(),
                    subject: i.resource,
                    detail: i.detail,
                    suspicious: i.suspicious,
                    why: i.why,
                    source: i.source,
                    actor: i.actor,
                    when: i.when,
                    active: i.active,
                })
                .collect(),
        })
        .collect()
}
