//! `lambda.restore_concurrency`: put back the reserved concurrency this
//! incident's journal recorded before `set_concurrency` changed it: the
//! number, or no setting at all when there was none.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{concurrency, function, set_concurrency};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Check, Observation, Planned, StepContext};
use crate::plan::Change;

pub struct RestoreConcurrency;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.restore_concurrency",
    summary: "Restore the reserved concurrency recorded before this incident changed it.",
    mutating: true,
    stops_harm: false,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &[ParamDef::new("function", ValueType::String, "the function's name or ARN").check(function::check_literal).parts(function::check_part)],
    outputs: &[
        OutputDef::new("function_arn", ValueType::String, "the function's ARN"),
        OutputDef::new("restored", ValueType::Integer, "the reserved concurrency restored (absent when the setting is removed or nothing was recorded)").nullable(),
    ],
    iam_actions: &[
        "lambda:GetFunction",
        "lambda:GetFunctionConcurrency",
        "lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionConcurrency",
        "lambda:InvokeFunction",
    ],
};

fn target(cx: &StepContext<'_>) -> Result<function::FunctionRef, ActionError> {
    cx.args_as::<function::FunctionArgs>(&SPEC)?
        .function
        .resolve(cx)
}

#[async_trait]
impl Action for RestoreConcurrency {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        concurrency::observe(cx, &SPEC, &target(cx)?).await
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let mut outputs = Map::new();
        outputs.insert("function_arn".into(), json!(observed.target));
        let Some(prior) = set_concurrency::recorded_prior(cx.history, &observed.target) else {
            outputs.insert("restored".into(), Value::Null);
            return Ok(Planned {
                changes: vec![],
                outputs,
                note: Some(format!(
                    "this incident never changed the reserved concurrency of {}: nothing to restore",
                    observed.target
                )),
            });
        };
        outputs.insert("restored".into(), prior.clone());
        let current = concurrency::current(cx, &SPEC, observed)?;
        let changes = if current == prior {
            vec![]
        } else {
            let reason = match &prior {
                Value::Null => {
                    "recover: the function had no reserved concurrency before the incident"
                        .to_string()
                }
                n => format!(
                    "recover: the function had reserved concurrency {n} before the incident"
                ),
            };
            vec![Change::new(
                &observed.target,
                concurrency::ATTRIBUTE,
                current,
                prior,
                reason,
            )]
        };
        Ok(Planned {
            changes,
            outputs,
            note: None,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        concurrency::write(cx.aws, &function::from_arn(&change.target)?, change).await
    }

    async fn verify(
        &self,
        cx: &StepContext<'_>,
        observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        match set_concurrency::recorded_prior(cx.history, &observed.target) {
            Some(prior) => concurrency::verify(cx.aws, &target(cx)?, prior.as_i64()).await,
            None => Ok(vec![]),
        }
    }
}
