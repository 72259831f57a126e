//! `ssm.rotate_parameter`: a new version of each SecureString parameter.
//!
//! SSM has no rotation Lambda, so without `generate: true` every parameter
//! is an open item ("rotate at the source"). With it, PutParameter
//! (Overwrite) writes a generated value; the old one stays in the
//! parameter's history for the investigation. SSM has no request token:
//! the new version's description carries the incident's rotation token,
//! written in the same call, so a re-run or a crash after the call finds
//! it in the history and rotates nothing more.
//!
//! Modules: `assess` reads one parameter and decides what can be done;
//! `overwrite` writes the generated version.

mod assess;
mod overwrite;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{rotation_token, SecretArgs, BLOCKED_PREFIX, GENERATE_PARAMS};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, StepContext};
use crate::plan::Change;
use assess::{assess, marker, name_of};

pub struct RotateParameter;

static SPEC: ActionSpec = ActionSpec {
    name: "ssm.rotate_parameter",
    summary: "Put a generated value as a new version of SSM SecureString parameters (generate: true); otherwise list them to rotate at the source.",
    mutating: true,
    stops_harm: true,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &[
        ParamDef::new("parameters", ValueType::List, "parameter names (e.g. `${steps.discover.parameters}`)"),
        GENERATE_PARAMS[0],
        GENERATE_PARAMS[1],
        GENERATE_PARAMS[2],
        GENERATE_PARAMS[3],
    ],
    outputs: &[
        OutputDef::new("rotated", ValueType::List, "names of the parameters this step rotates"),
        OutputDef::new("rotate_at_source", ValueType::List, "names of the parameters left to rotate at the source"),
    ],
    iam_actions: &[
        "ssm:GetParameter",
        "ssm:GetParameterHistory",
        "ssm:DescribeParameters",
        "ssm:PutParameter",
        "kms:Decrypt",
        "kms:Encrypt",
    ],
};

pub const ATTRIBUTE: &str = "version";

#[async_trait]
impl Action for RotateParameter {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let args: SecretArgs = cx.args_as(&SPEC)?;
        let mut all = Vec::new();
        for p in &args.parameters {
            all.push(assess(cx, p, args.generate).await?);
        }
        Ok(Observation {
            target: format!("{} parameter(s)", all.len()),
            state: json!({"parameters": all}),
        })
    }

    fn plan(&self, _cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let (mut changes, mut blocked, mut rotated, mut at_source) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for p in observed.state["parameters"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let arn = p["arn"].as_str().unwrap_or_default();
            let name = p["name"].as_str().unwrap_or(arn).to_string();
            let reason = match p["status"].as_str() {
                Some("generate") => "contain: assume it stolen; a generated value becomes the new version, the old one stays in the parameter's history".to_string(),
                _ => format!("{BLOCKED_PREFIX}{}", p["detail"].as_str().unwrap_or("unknown")),
            };
            let change = Change::new(
                arn,
                ATTRIBUTE,
                p["current"].clone(),
                p["token"].clone(),
                reason,
            );
            match p["status"].as_str() {
                Some("generate") => {
                    rotated.push(name);
                    changes.push(change);
                }
                Some("at_source") => at_source.push(name),
                Some("rotated") => {}
                _ => blocked.push(change),
            }
        }
        changes.extend(blocked);
        let mut outputs = Map::new();
        outputs.insert("rotated".into(), json!(rotated));
        outputs.insert("rotate_at_source".into(), json!(at_source));
        let note = (!at_source.is_empty()).then(|| format!("open item: rotate at the source (SSM has no rotation Lambda; pass generate: true only where the value itself is the credential): {}", at_source.join(", ")));
        Ok(Planned {
            changes,
            outputs,
            note,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        let token = rotation_token(cx.incident_id, &change.target);
        if change.attribute != ATTRIBUTE || change.after != json!(marker(&token)) {
            return Err(ActionError::input(
                format!("firebreak never puts back an old value of {}: it must be assumed stolen", change.target),
                "applications must pick up the new value; the old one stays in the parameter's history",
            ));
        }
        let generate = cx
            .args
            .get("generate")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let p = assess(cx, &name_of(&change.target), generate).await?;
        match p["status"].as_str() {
            Some("rotated") => return Ok(()),
            Some("generate") => {}
            _ => {
                return Err(ActionError::input(
                    format!(
                        "parameter {} was not rotated: {BLOCKED_PREFIX}{}",
                        change.target,
                        p["detail"].as_str().unwrap_or("unknown")
                    ),
                    "fix it and run again: the parameters that could be rotated were",
                ))
            }
        }
        let name = p["name"]
            .as_str()
            .map_or_else(|| name_of(&change.target), str::to_string);
        let keys = cx.args_as::<SecretArgs>(&SPEC)?.keys();
        overwrite::put(cx, &name, &token, &keys).await
    }

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        _attribute: &str,
    ) -> Result<Value, ActionError> {
        let p = assess(cx, &name_of(target), false).await?;
        Ok(if p["status"] == "rotated" && p["detail"].is_null() {
            p["token"].clone()
        } else {
            p["current"].clone()
        })
    }

    fn never_restored(&self) -> Option<&'static str> {
        Some("rotated for this incident: applications must pick up the new value (restart or redeploy what caches it); the old value stays in the parameter history for the investigation and, assumed stolen, is never restored")
    }

    /// Each change is one parameter.
    fn independent_changes(&self) -> bool {
        true
    }

    /// The step's target is the whole list: each parameter is its own resource.
    fn covers(&self, observed: &Observation, resource: &str) -> bool {
        observed.state["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["arn"] == resource)
    }
}
