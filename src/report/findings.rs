//! What the incident found out, from the observations in the trail: for
//! each function, the secrets and parameters it could read (and why), the
//! readable parameters that are not secret storage, and environment
//! variables that look like a secret kept in plain text (names only: the
//! trail never holds a value).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::records::Record;
use crate::state::AuditEvent;

/// A resource and where discovery found it ("policy X", "environment
/// variable Y", "playbook").
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub resource: String,
    pub from: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlaintextVariable {
    pub variable: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionFindings {
    pub function: String,
    /// When it was observed (the latest observation counts).
    pub observed_at: String,
    pub secrets: Vec<Found>,
    pub parameters: Vec<Found>,
    pub plain_parameters: Vec<Found>,
    pub plaintext_variables: Vec<PlaintextVariable>,
}

fn found(list: &Value, key: &str) -> Vec<Found> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some(Found {
                resource: i[key].as_str()?.to_string(),
                from: i["from"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// One entry per function discovery looked at, from its latest observation.
pub fn list(records: &[Record]) -> Vec<FunctionFindings> {
    let mut latest: BTreeMap<String, &Record> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.event == AuditEvent::Observation && r.data["action"] == "secrets.discover")
    {
        if let Some(target) = r.data["target"].as_str() {
            latest.insert(target.to_string(), r);
        }
    }
    latest
        .into_iter()
        .map(|(function, r)| {
            let state = &r.data["state"];
            FunctionFindings {
                function,
                observed_at: r.time.clone(),
                secrets: found(&state["secrets"], "arn"),
                parameters: found(&state["parameters"], "name"),
                plain_parameters: found(&state["plain_parameters"], "name"),
                plaintext_variables: state["plaintext_findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| {
                        Some(PlaintextVariable {
                            variable: f["variable"].as_str()?.to_string(),
                            why: f["why"].as_str().unwrap_or_default().to_string(),
                        })
                    })
                    .collect(),
            }
        })
        .collect()
}
