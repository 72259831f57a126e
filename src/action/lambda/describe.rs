//! `lambda.describe`: read-only facts about the function for later steps
//! and for the record. Environment variable *names* only: values can hold
//! secrets and never leave this function.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{concurrency, function};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, StepContext};
use crate::plan::Change;

pub struct Describe;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.describe",
    summary: "Read the function's configuration (read-only).",
    mutating: false,
    stops_harm: false,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &[
        ParamDef::new("function", ValueType::String, "the function's name or ARN")
            .check(function::check_literal)
            .parts(function::check_part),
    ],
    outputs: &[
        OutputDef::new("function_arn", ValueType::String, "the function's ARN"),
        OutputDef::new("function_name", ValueType::String, "the function's name"),
        OutputDef::new("role_arn", ValueType::String, "the execution role's ARN"),
        OutputDef::new(
            "runtime",
            ValueType::String,
            "the runtime (absent for container images)",
        )
        .nullable(),
        OutputDef::new(
            "code_sha256",
            ValueType::String,
            "Lambda's base64 SHA-256 of the deployment package",
        ),
        OutputDef::new(
            "last_modified",
            ValueType::String,
            "when the function was last changed",
        ),
        OutputDef::new(
            "environment_variable_names",
            ValueType::List,
            "names of the environment variables (never their values)",
        ),
        OutputDef::new("layers", ValueType::List, "ARNs of the attached layers"),
        OutputDef::new(
            "reserved_concurrency",
            ValueType::Integer,
            "reserved concurrency (absent when none is set)",
        )
        .nullable(),
    ],
    iam_actions: &["lambda:GetFunction", "lambda:GetFunctionConcurrency"],
};

#[async_trait]
impl Action for Describe {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let f = cx
            .args_as::<function::FunctionArgs>(&SPEC)?
            .function
            .resolve(cx)?;
        let out = concurrency::get_planned(cx, &f).await?;
        let reserved = concurrency::read_planned(cx, &f).await?;
        let c = out.configuration();
        let mut env_names: Vec<String> = c
            .and_then(|c| c.environment())
            .and_then(|e| e.variables())
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        env_names.sort();
        let layers: Vec<String> = c
            .map(|c| {
                c.layers()
                    .iter()
                    .filter_map(|l| l.arn().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let state = json!({
            "function_arn": c.and_then(|c| c.function_arn()).unwrap_or(&f.arn),
            "function_name": c.and_then(|c| c.function_name()).unwrap_or(&f.name),
            "role_arn": c.and_then(|c| c.role()),
            "runtime": c.and_then(|c| c.runtime()).map(|r| r.as_str()),
            "code_sha256": c.and_then(|c| c.code_sha256()),
            "last_modified": c.and_then(|c| c.last_modified()),
            "environment_variable_names": env_names,
            "layers": layers,
            "reserved_concurrency": reserved,
        });
        Ok(Observation {
            target: f.arn,
            state,
        })
    }

    /// The function's name, ARN and role, as the listing page that named
    /// it gave them (the same fields of the same configuration that
    /// GetFunction answers); the rest needs GetFunction.
    fn listed_outputs(&self, cx: &StepContext<'_>) -> Option<Map<String, Value>> {
        let f = cx
            .args_as::<function::FunctionArgs>(&SPEC)
            .ok()?
            .function
            .resolve(cx)
            .ok()?;
        let listed = cx.run.listed_function(&f.name).filter(|l| l.arn == f.arn)?;
        let role = listed.role?;
        Some(Map::from_iter([
            ("function_arn".to_string(), Value::String(listed.arn)),
            ("function_name".to_string(), Value::String(listed.name)),
            ("role_arn".to_string(), Value::String(role)),
        ]))
    }

    fn plan(&self, _cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let outputs: Map<String, Value> = SPEC
            .outputs
            .iter()
            .map(|o| {
                (
                    o.name.to_string(),
                    observed.state.get(o.name).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        Ok(Planned {
            changes: vec![],
            outputs,
            note: None,
        })
    }

    async fn apply(&self, _cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        Err(ActionError::input(
            format!(
                "lambda.describe is read-only and cannot apply a change to {}",
                change.target
            ),
            "this is a bug in firebreak; please report it",
        ))
    }
}
