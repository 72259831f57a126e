//! `lambda.tag`: mark the function with the incident, so anyone looking at
//! it in the console knows it is contained, since when and by whom.

use std::collections::BTreeMap;

use async_trait::async_trait;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::function;
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{state_of, Action, ActionError, Check, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::plan::Change;

pub struct Tag;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.tag",
    summary: "Tag the function with the incident id, the containment time and who contained it.",
    mutating: true,
    stops_harm: false,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &[
        ParamDef::new("function", ValueType::String, "the function's name or ARN")
            .check(function::check_literal)
            .parts(function::check_part),
    ],
    outputs: &[OutputDef::new(
        "function_arn",
        ValueType::String,
        "the function's ARN",
    )],
    iam_actions: &[
        "lambda:ListTags",
        "lambda:TagResource",
        "lambda:UntagResource",
    ],
};

const TAG: &str = "tag:";

/// Our three tags as observed (null when absent), in `wanted`'s order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TagState {
    tags: IndexMap<String, Option<String>>,
}

async fn tags(cx: &StepContext<'_>, arn: &str) -> Result<BTreeMap<String, String>, ActionError> {
    let out = cx
        .aws
        .lambda
        .list_tags()
        .resource(arn)
        .send()
        .await
        .map_err(|e| classify("ListTags", "lambda:ListTags", arn, e))?;
    Ok(out
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

fn wanted(cx: &StepContext<'_>) -> [(&'static str, String); 3] {
    [
        ("firebreak:incident", cx.incident_id.to_string()),
        ("firebreak:contained-at", cx.incident_started_at.to_string()),
        ("firebreak:contained-by", cx.caller.arn.clone()),
    ]
}

#[async_trait]
impl Action for Tag {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let f = cx
            .args_as::<function::FunctionArgs>(&SPEC)?
            .function
            .resolve(cx)?;
        let t = tags(cx, &f.arn).await?;
        let tags = wanted(cx)
            .iter()
            .map(|(k, _)| (k.to_string(), t.get(*k).cloned()))
            .collect();
        Ok(Observation {
            target: f.arn,
            state: state_of(&SPEC, &TagState { tags })?,
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let state: TagState = cx.state_as(&SPEC, observed)?;
        let now = |k: &str| json!(state.tags.get(k).cloned().flatten());
        let changes = wanted(cx)
            .into_iter()
            .filter(|(k, v)| now(k) != json!(v))
            .map(|(k, v)| {
                Change::new(
                    &observed.target,
                    format!("{TAG}{k}"),
                    now(k),
                    json!(v),
                    "mark the function as contained by this incident",
                )
            })
            .collect();
        let mut outputs = Map::new();
        outputs.insert("function_arn".into(), json!(observed.target));
        Ok(Planned {
            changes,
            outputs,
            note: None,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        let key = change
            .attribute
            .strip_prefix(TAG)
            .unwrap_or(&change.attribute);
        match change.after.as_str() {
            Some(v) => cx
                .aws
                .lambda
                .tag_resource()
                .resource(&change.target)
                .tags(key, v)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("TagResource", "lambda:TagResource", &change.target, e)),
            None => cx
                .aws
                .lambda
                .untag_resource()
                .resource(&change.target)
                .tag_keys(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("UntagResource", "lambda:UntagResource", &change.target, e)),
        }
        .map_err(ActionError::from)
    }

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        attribute: &str,
    ) -> Result<Value, ActionError> {
        let key = attribute.strip_prefix(TAG).unwrap_or(attribute);
        Ok(json!(tags(cx, target).await?.get(key)))
    }

    async fn verify(
        &self,
        cx: &StepContext<'_>,
        _observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let now = self.observe(cx).await?;
        let missing = self.plan(cx, &now)?.changes.len();
        Ok(vec![Check {
            name: "incident tags present".into(),
            target: now.target,
            passed: missing == 0,
            detail: if missing == 0 {
                "the function carries the incident's tags".into()
            } else {
                format!("{missing} tag(s) missing or different")
            },
        }])
    }
}
