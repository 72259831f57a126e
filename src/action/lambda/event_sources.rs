//! `lambda.disable_event_sources`: disable (never delete) every enabled
//! event source mapping of the function, whether it feeds the function
//! itself, an alias or a version. Mappings are configuration and evidence;
//! disabling stops the flow of events and is fully reversible.
//!
//! Mappings are found with one listing of the account's mappings in the
//! region, kept when their `FunctionArn` is this function, qualified or not.
//! Listing by function name is not used: LocalStack matches the name as a
//! substring (`demo` also finds `demo-2`'s mappings) and AWS does not
//! document whether an unqualified name finds an alias's mappings.

use std::collections::BTreeMap;

use async_trait::async_trait;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::function::{self, FunctionRef};
use super::qualifiers::{self, Qualifier};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{state_of, Action, ActionError, Check, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::plan::Change;

pub struct DisableEventSources;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.disable_event_sources",
    summary: "Disable (never delete) every enabled event source mapping of the function.",
    mutating: true,
    stops_harm: true,
    harm_order: HarmOrder::Access,
    own_state: true,
    params: &[ParamDef::new(
        "function",
        ValueType::String,
        "the function's name or ARN (an alias or version ARN contains the whole function)",
    )
    .check(function::check_literal_whole).parts(function::check_part_whole)],
    outputs: &[
        OutputDef::new("function_arn", ValueType::String, "the function's ARN"),
        OutputDef::new(
            "disabled_mappings",
            ValueType::List,
            "the mappings this step disables: UUID on the function itself, QUALIFIER:UUID on an alias or version",
        ),
    ],
    iam_actions: &[
        "lambda:ListAliases",
        "lambda:ListVersionsByFunction",
        "lambda:ListEventSourceMappings",
        "lambda:GetEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
    ],
};

const MAPPING: &str = "event_source_mapping";

/// `event_source_mapping:UUID` on the function itself (the name earlier
/// journals used), `event_source_mapping:QUALIFIER:UUID` on an alias or
/// version. The UUID alone finds the mapping; the qualifier says what it fed.
fn parse_attribute(attribute: &str) -> Result<(Qualifier, &str), ActionError> {
    qualifiers::parse_keyed(attribute, MAPPING).ok_or_else(|| {
        ActionError::input(
            format!("unknown attribute `{attribute}`"),
            "the journal was edited or damaged",
        )
    })
}

/// Enabled and enabling count as on: events flow or are about to.
fn is_on(state: Option<&str>) -> bool {
    !matches!(state, Some("Disabled" | "Disabling"))
}

fn value(enabled: bool, source: Option<&str>) -> Value {
    json!({"enabled": enabled, "event_source_arn": source})
}

/// One mapping as observed; as a change's `before`/`after` it is `value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Mapping {
    enabled: bool,
    event_source_arn: Option<String>,
}

impl Mapping {
    fn value(&self) -> Value {
        value(self.enabled, self.event_source_arn.as_deref())
    }
}

/// The observed state: mappings by qualifier label, then UUID. Index maps
/// keep the order they were built in (qualifiers as `Qualifier` sorts them,
/// `$LATEST` first), which plans, saved plans and the trail show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct MappingsState {
    mappings: IndexMap<String, IndexMap<String, Mapping>>,
}

/// Every mapping of the function by qualifier, then UUID.
async fn mappings(
    cx: &StepContext<'_>,
    f: &FunctionRef,
) -> Result<BTreeMap<Qualifier, BTreeMap<String, Mapping>>, ActionError> {
    let mut out: BTreeMap<Qualifier, BTreeMap<String, Mapping>> = BTreeMap::new();
    // The largest page Lambda allows: one call in all but the busiest regions.
    let mut pages = cx
        .aws
        .lambda
        .list_event_source_mappings()
        .max_items(10_000)
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
            let q = m.function_arn().and_then(|a| Qualifier::of_arn(f, a));
            if let (Some(q), Some(uuid)) = (q, m.uuid()) {
                out.entry(q).or_default().insert(
                    uuid.to_string(),
                    Mapping {
                        enabled: is_on(m.state()),
                        event_source_arn: m.event_source_arn().map(str::to_string),
                    },
                );
            }
        }
    }
    Ok(out)
}

fn label(q: &Qualifier, uuid: &str) -> String {
    match q {
        Qualifier::Latest => uuid.to_string(),
        Qualifier::Named(n) => format!("{n}:{uuid}"),
    }
}

/// The enabled mappings of an observed state, as (qualifier, UUID, value).
fn enabled(state: &MappingsState) -> Vec<(Qualifier, String, Mapping)> {
    let mut out = Vec::new();
    for (q, ms) in &state.mappings {
        for (uuid, m) in ms.iter().filter(|(_, m)| m.enabled) {
            out.push((Qualifier::from_label(q), uuid.clone(), m.clone()));
        }
    }
    out
}

fn observed_state(all: BTreeMap<Qualifier, BTreeMap<String, Mapping>>) -> MappingsState {
    MappingsState {
        mappings: all
            .into_iter()
            .map(|(q, ms)| (q.to_string(), ms.into_iter().collect()))
            .collect(),
    }
}

/// The check of contract 15: it names the qualifiers it read (the listing
/// covers them all), and a listing that failed fails it.
fn check(
    target: &str,
    qualifiers: Result<qualifiers::Qualifiers, String>,
    found: Result<MappingsState, String>,
) -> Check {
    let (passed, detail) = match (qualifiers, found) {
        (Err(e), _) => (false, format!("could not list the function's aliases and versions, so not every qualifier was named: {e}")),
        (Ok(qs), Err(e)) => (
            false,
            format!("could not read the event source mappings of {}: {e}", qs.names()),
        ),
        (Ok(qs), Ok(state)) => {
            let on: Vec<String> = enabled(&state)
                .iter()
                .map(|(q, uuid, _)| label(q, uuid))
                .collect();
            if on.is_empty() {
                (true, format!("no enabled mapping on {}", qs.names()))
            } else {
                (false, format!("still enabled: {}", on.join(", ")))
            }
        }
    };
    Check {
        name: "event sources disabled".into(),
        target: target.to_string(),
        passed,
        detail,
    }
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
        let named = cx
            .args_as::<function::FunctionArgs>(&SPEC)?
            .function
            .resolve_whole(cx)?;
        let f = named.function;
        let state = state_of(&SPEC, &observed_state(mappings(cx, &f).await?))?;
        Ok(Observation {
            target: f.arn,
            state,
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let mut changes = Vec::new();
        let mut disabled = Vec::new();
        let state: MappingsState = cx.state_as(&SPEC, observed)?;
        for (q, uuid, m) in enabled(&state) {
            disabled.push(label(&q, &uuid));
            let source = m.event_source_arn.as_deref();
            changes.push(Change::new(
                &observed.target,
                qualifiers::attribute(MAPPING, &q, Some(&uuid)),
                m.value(),
                value(false, source),
                format!(
                    "contain: stop events from {} into {} (the mapping is disabled, not deleted)",
                    source.unwrap_or("its source"),
                    q.describe()
                ),
            ));
        }
        let arg = cx.args_as::<function::FunctionArgs>(&SPEC)?.function;
        let named = arg.resolve_whole(cx)?;
        let note = named.qualifier.map(|q| {
            format!(
                "`{}` names {}: the mappings of the whole function {} are disabled, whatever they feed",
                arg.as_str(),
                Qualifier::from_label(&q).describe(),
                observed.target
            )
        });
        let mut outputs = Map::new();
        outputs.insert("function_arn".into(), json!(observed.target));
        outputs.insert("disabled_mappings".into(), json!(disabled));
        Ok(Planned {
            changes,
            outputs,
            note,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        let f = function::from_arn(&change.target)?;
        let (_, uuid) = parse_attribute(&change.attribute)?;
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
        let (_, uuid) = parse_attribute(attribute)?;
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

    /// Lists again, so a mapping added since the plan (on any qualifier)
    /// is seen; the qualifiers are listed only to name them in the check.
    async fn verify(
        &self,
        cx: &StepContext<'_>,
        observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let f = function::from_arn(&observed.target)?;
        let qs = qualifiers::list(cx, &f).await.map_err(|e| e.to_string());
        let found = mappings(cx, &f)
            .await
            .map(observed_state)
            .map_err(|e| e.to_string());
        Ok(vec![check(&f.arn, qs, found)])
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

    #[test]
    fn mapping_attributes_name_their_qualifier_and_old_names_still_parse() {
        let uuid = "a1b2c3d4-0000-1111-2222-333344445555";
        let old = format!("event_source_mapping:{uuid}");
        assert_eq!(parse_attribute(&old).unwrap(), (Qualifier::Latest, uuid));
        let live = Qualifier::Named("live".into());
        let attr = qualifiers::attribute(MAPPING, &live, Some(uuid));
        assert_eq!(attr, format!("event_source_mapping:live:{uuid}"));
        assert_eq!(parse_attribute(&attr).unwrap(), (live, uuid));
        assert!(parse_attribute("function_url").is_err());
    }

    fn listed() -> qualifiers::Qualifiers {
        qualifiers::Qualifiers {
            aliases: [("live".to_string(), "2".to_string())].into(),
            versions: vec!["1".into(), "2".into()],
            listed: vec![],
        }
    }

    #[test]
    fn the_check_names_what_it_read_and_fails_on_what_it_could_not() {
        let mut all = BTreeMap::new();
        all.entry(Qualifier::Named("live".into()))
            .or_insert_with(BTreeMap::new)
            .insert(
                "u1".to_string(),
                Mapping {
                    enabled: false,
                    event_source_arn: Some("arn:aws:sqs:us-east-1:1:q".into()),
                },
            );
        let c = check("arn", Ok(listed()), Ok(observed_state(all.clone())));
        assert!(c.passed);
        assert_eq!(c.detail, "no enabled mapping on $LATEST, live, 1, 2");

        all.entry(Qualifier::Named("1".into()))
            .or_insert_with(BTreeMap::new)
            .insert(
                "u2".to_string(),
                Mapping {
                    enabled: true,
                    event_source_arn: None,
                },
            );
        let c = check("arn", Ok(listed()), Ok(observed_state(all)));
        assert!(!c.passed);
        assert_eq!(c.detail, "still enabled: 1:u2");

        let c = check("arn", Ok(listed()), Err("access denied".into()));
        assert!(!c.passed && c.detail.contains("could not read the event source mappings of $LATEST, live, 1, 2: access denied"));
        let c = check("arn", Err("throttled".into()), Ok(MappingsState::default()));
        assert!(!c.passed && c.detail.contains("throttled"));
    }
}
