//! `iam.deactivate_access_keys`: set every active access key of the named
//! IAM users to Inactive. Keys are never deleted: they are evidence, and
//! CloudTrail events name them.

use async_trait::async_trait;
use aws_sdk_iam::types::StatusType;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::role;
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{state_of, Action, ActionError, Check, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::aws::AwsErrorKind;
use crate::plan::Change;

pub struct DeactivateAccessKeys;

static SPEC: ActionSpec = ActionSpec {
    name: "iam.deactivate_access_keys",
    summary: "Deactivate (never delete) every active access key of the named IAM users.",
    mutating: true,
    stops_harm: true,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &[ParamDef::new(
        "users",
        ValueType::List,
        "IAM user names whose keys to deactivate (an empty list does nothing)",
    )
    .check(check_users)
    .parts(role::check_name_part)],
    outputs: &[OutputDef::new(
        "deactivated_keys",
        ValueType::List,
        "access key ids this step deactivates",
    )],
    iam_actions: &["iam:ListAccessKeys", "iam:UpdateAccessKey"],
};

#[derive(Debug, Deserialize)]
struct DeactivateArgs {
    users: Vec<String>,
}

/// The observed keys: user ARN → key id → status (`Active`, `Inactive`),
/// in the order the users were given and the keys listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct KeysState {
    keys: IndexMap<String, IndexMap<String, String>>,
}

const KEY: &str = "access_key:";

/// Every item is an IAM user name (an item holding a reference is checked
/// once it is resolved).
fn check_users(v: &Value) -> Result<(), String> {
    let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
    for user in items.iter().filter_map(Value::as_str) {
        if !user.contains("${") && !role::valid_name(user) {
            return Err(format!(
                "`{user}` is not an IAM user name (1-64 letters, digits and `+=,.@_-`)"
            ));
        }
    }
    Ok(())
}

fn user_arn(cx: &StepContext<'_>, user: &str) -> String {
    let partition = cx.caller.arn.split(':').nth(1).unwrap_or("aws");
    format!("arn:{partition}:iam::{}:user/{user}", cx.caller.account)
}

async fn keys(cx: &StepContext<'_>, user: &str) -> Result<Vec<(String, String)>, ActionError> {
    let mut out = Vec::new();
    let mut pages = cx
        .aws
        .iam
        .list_access_keys()
        .user_name(user)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let mut e = classify("ListAccessKeys", "iam:ListAccessKeys", user, e);
            if e.kind == AwsErrorKind::NotFound {
                e.message = format!("IAM user `{user}` does not exist ({})", e.message);
            }
            ActionError::from(e)
        })?;
        for k in page.access_key_metadata() {
            if let Some(id) = k.access_key_id() {
                out.push((
                    id.to_string(),
                    k.status().map_or("Unknown", |s| s.as_str()).to_string(),
                ));
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl Action for DeactivateAccessKeys {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let DeactivateArgs { users } = cx.args_as(&SPEC)?;
        let mut state = KeysState {
            keys: IndexMap::new(),
        };
        for u in &users {
            let k = keys(cx, u).await?.into_iter().collect();
            state.keys.insert(user_arn(cx, u), k);
        }
        Ok(Observation {
            target: format!(
                "iam users: {}",
                if users.is_empty() {
                    "(none)".into()
                } else {
                    users.join(", ")
                }
            ),
            state: state_of(&SPEC, &state)?,
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let state: KeysState = cx.state_as(&SPEC, observed)?;
        let mut changes = Vec::new();
        let mut ids = Vec::new();
        for (user, keys) in &state.keys {
            for (id, status) in keys {
                if status == "Active" {
                    ids.push(id.clone());
                    changes.push(Change::new(
                        user,
                        format!("{KEY}{id}"),
                        json!("Active"),
                        json!("Inactive"),
                        "contain: the key stops working; it is kept as evidence",
                    ));
                }
            }
        }
        let mut outputs = Map::new();
        outputs.insert("deactivated_keys".into(), json!(ids));
        Ok(Planned {
            changes,
            outputs,
            note: None,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        let user = change.target.rsplit('/').next().unwrap_or(&change.target);
        let id = change
            .attribute
            .strip_prefix(KEY)
            .unwrap_or(&change.attribute);
        let status = if change.after == "Active" {
            StatusType::Active
        } else {
            StatusType::Inactive
        };
        cx.aws
            .iam
            .update_access_key()
            .user_name(user)
            .access_key_id(id)
            .status(status)
            .send()
            .await
            .map_err(|e| classify("UpdateAccessKey", "iam:UpdateAccessKey", &change.target, e))?;
        Ok(())
    }

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        attribute: &str,
    ) -> Result<Value, ActionError> {
        let user = target.rsplit('/').next().unwrap_or(target);
        let id = attribute.strip_prefix(KEY).unwrap_or(attribute);
        Ok(keys(cx, user)
            .await?
            .into_iter()
            .find(|(k, _)| k == id)
            .map_or(Value::Null, |(_, s)| json!(s)))
    }

    async fn restore_risk(
        &self,
        _cx: &StepContext<'_>,
        change: &Change,
    ) -> Result<Option<String>, ActionError> {
        Ok((change.after == "Active").then(|| "re-activates a credential that was live during the incident; rotate it instead unless you know it is clean".to_string()))
    }

    async fn verify(
        &self,
        cx: &StepContext<'_>,
        _observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let now = self.observe(cx).await?;
        let active: Vec<String> = self
            .plan(cx, &now)?
            .changes
            .iter()
            .map(|c| c.attribute.clone())
            .collect();
        Ok(vec![Check {
            name: "access keys inactive".into(),
            target: now.target,
            passed: active.is_empty(),
            detail: if active.is_empty() {
                "no active key remains".into()
            } else {
                format!("still active: {}", active.join(", "))
            },
        }])
    }
}
