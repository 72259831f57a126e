//! `lambda.disable_event_sources`: disable (never delete) every enabled
//! event source mapping of the function. Mappings are configuration and
//! evidence; disabling stops the flow of events and is fully reversible.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::function::{self, FunctionRef};
use crate::action::spec::{ActionSpec, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Check, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::plan::Change;

pub struct DisableEventSources;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.disable_event_sources",
    summary: "Disable (never delete) every enabled event source mapping of the function.",
    mutating: true,
    stops_harm: true,
    params: &[
        ParamDef::new("function", ValueType::String, "the function's name or ARN")
            .check(function::check_literal),
    ],
    outputs: &[
        OutputDef::new("function_arn", ValueType::String, "the function's ARN"),
        OutputDef::new(
            "disabled_mappings",
            ValueType::List,
            "UUIDs of the mappings this step disables",
        ),
    ],
    iam_actions: &[
        "lambda:ListEventSourceMappings",
        "lambda:GetEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
    ],
};

const MAPPING: &str = "event_source_mapping:";

/// Enabled and enabling count as on: events flow or are about to.
fn is_on(state: Option<&str>) -> bool {
    !matches!(state, Some("Disabled" | "Disabling"))
}

fn value(enabled: bool, source: Option<&str>) -> Value {
    json!({"enabled": enabled, "event_source_arn": source})
}

async fn mappings(
    cx: &StepContext<'_>,
    f: &FunctionRef,
) -> Result<Vec<(String, Value)>, ActionError> {
    let mut out = Vec::new();
    let mut pages = cx
        .aws
        .lambda
        .list_event_source_mappings()
        .function_name(&f.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                "ListEventSourceMappings",
                "lambda:ListEventSourceMappings",
                &f.arn,
                e,
            )
        })?;
        for m in page.event_source_mappings() {
            if let Some(uuid) = m.uuid() {
                out.push((
                    uuid.to_string(),
                    value(is_on(m.state()), m.event_source_arn()),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Re-enabling a mapping fed by another account's resource lets that
/// account drive the function again.
pub fn foreign_source(source: &str, account: &str) -> Option<String> {
    let owner = source.split(':').nth(4).filter(|a| !a.is_empty())?;
    (owner != account)
        .then(|| format!("re-enables events from another account's resource ({source})"))
}

#[async_trait]
impl Action for DisableEventSources {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let f = function::resolve(cx.str_arg("function")?, cx.caller, &cx.aws.region)?;
        let all: Map<String, Value> = mappings(cx, &f).await?.into_iter().collect();
        Ok(Observation {
            target: f.arn,
            state: json!({"mappings": all}),
        })
    }

    fn plan(&self, _cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let mut changes = Vec::new();
        let mut disabled = Vec::new();
        for (uuid, m) in observed.state["mappings"].as_object().into_iter().flatten() {
            if m["enabled"] == true {
                disabled.push(uuid.clone());
                let source = m["event_source_arn"].as_str();
                changes.push(Change::new(
                    &observed.target,
                    format!("{MAPPING}{uuid}"),
                    m.clone(),
                    value(false, source),
                    format!(
                        "contain: stop events from {} (the mapping is disabled, not deleted)",
                        source.unwrap_or("its source")
                    ),
                ));
            }
        }
        let mut outputs = Map::new();
        outputs.insert("function_arn".into(), json!(observed.target));
        outputs.insert("disabled_mappings".into(), json!(disabled));
        Ok(Planned {
            changes,
            outputs,
            note: None,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        let f = function::from_arn(&change.target)?;
        let uuid = change.attribute.strip_prefix(MAPPING).ok_or_else(|| {
            ActionError::input(
                format!("unknown attribute `{}`", change.attribute),
                "the journal was edited or damaged",
            )
        })?;
        let enabled = change.after["enabled"].as_bool().unwrap_or(false);
        cx.aws
            .lambda
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(enabled)
            .send()
            .await
            .map_err(|e| {
                classify(
                    "UpdateEventSourceMapping",
                    "lambda:UpdateEventSourceMapping",
                    &f.arn,
                    e,
                )
            })?;
        Ok(())
    }

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        attribute: &str,
    ) -> Result<Value, ActionError> {
        let uuid = attribute.strip_prefix(MAPPING).ok_or_else(|| {
            ActionError::input(
                format!("unknown attribute `{attribute}`"),
                "the journal was edited or damaged",
            )
        })?;
        let m = cx
            .aws
            .lambda
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .map_err(|e| {
                classify(
                    "GetEventSourceMapping",
                    "lambda:GetEventSourceMapping",
                    target,
                    e,
                )
            })?;
        Ok(value(is_on(m.state()), m.event_source_arn()))
    }

    async fn restore_risk(
        &self,
        cx: &StepContext<'_>,
        change: &Change,
    ) -> Result<Option<String>, ActionError> {
        if change.after["enabled"] != true {
            return Ok(None);
        }
        Ok(change.after["event_source_arn"]
            .as_str()
            .and_then(|s| foreign_source(s, &cx.caller.account)))
    }

    async fn verify(
        &self,
        cx: &StepContext<'_>,
        _observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let now = self.observe(cx).await?;
        let on: Vec<String> = now.state["mappings"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, m)| m["enabled"] == true)
            .map(|(u, _)| u.clone())
            .collect();
        Ok(vec![Check {
            name: "event sources disabled".into(),
            target: now.target,
            passed: on.is_empty(),
            detail: if on.is_empty() {
                "every mapping is disabled".into()
            } else {
                format!("still enabled: {}", on.join(", "))
            },
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_foreign_sources_are_risky() {
        assert!(
            foreign_source("arn:aws:sqs:us-east-1:444455556666:jobs", "111122223333").is_some()
        );
        assert_eq!(
            foreign_source("arn:aws:sqs:us-east-1:111122223333:jobs", "111122223333"),
            None
        );
        assert_eq!(
            foreign_source("arn:aws:kafka:::cluster", "111122223333"),
            None
        );
        assert!(is_on(Some("Enabled")) && is_on(Some("Enabling")) && !is_on(Some("Disabling")));
    }
}
