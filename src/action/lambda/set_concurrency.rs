//! `lambda.set_concurrency`: reserve N concurrent executions (0 stops every
//! new invocation). The prior value (a number, or none) is recorded in the
//! journal by the executor before the call, so `restore_concurrency` and
//! `recover` can put it back exactly.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{concurrency, function};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Check, Observation, Planned, StepContext};
use crate::plan::Change;

pub struct SetConcurrency;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.set_concurrency",
    summary: "Set the function's reserved concurrency; 0 stops every new invocation.",
    mutating: true,
    stops_harm: true,
    harm_order: HarmOrder::Function,
    own_state: true,
    params: &[
        ParamDef::new("function", ValueType::String, "the function's name or ARN")
            .check(function::check_literal)
            .parts(function::check_part),
        ParamDef::new(
            "value",
            ValueType::Integer,
            "reserved concurrent executions; 0 throttles the function",
        )
        .range(0, 1_000_000),
    ],
    outputs: &[
        OutputDef::new("function_arn", ValueType::String, "the function's ARN"),
        OutputDef::new(
            "previous",
            ValueType::Integer,
            "the reserved concurrency before this step (absent when none was set)",
        )
        .nullable(),
    ],
    // DeleteFunctionConcurrency: `recover` undoes this step with this
    // action, and a function that had no reserved concurrency gets the
    // setting deleted, not set.
    iam_actions: &[
        "lambda:GetFunction",
        "lambda:GetFunctionConcurrency",
        "lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionConcurrency",
        "lambda:InvokeFunction",
    ],
};

#[derive(Debug, Deserialize)]
struct SetConcurrencyArgs {
    function: function::FunctionArg,
    /// 0..=1_000_000 by the spec, so it fits Lambda's i32.
    value: i32,
}

fn args(cx: &StepContext<'_>) -> Result<SetConcurrencyArgs, ActionError> {
    cx.args_as(&SPEC)
}

fn target(cx: &StepContext<'_>) -> Result<function::FunctionRef, ActionError> {
    args(cx)?.function.resolve(cx)
}

#[async_trait]
impl Action for SetConcurrency {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        concurrency::observe(cx, &SPEC, &target(cx)?).await
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let desired = json!(args(cx)?.value);
        let current = concurrency::current(cx, &SPEC, observed)?;
        let mut outputs = Map::new();
        outputs.insert("function_arn".into(), json!(observed.target));
        outputs.insert("previous".into(), current.clone());
        let changes = if current == desired {
            vec![]
        } else {
            let reason = if desired == json!(0) {
                "contain: reserved concurrency 0 refuses every new invocation".to_string()
            } else {
                format!("limit the function to {desired} concurrent executions")
            };
            vec![Change::new(
                &observed.target,
                concurrency::ATTRIBUTE,
                current,
                desired,
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

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        _attribute: &str,
    ) -> Result<Value, ActionError> {
        Ok(json!(
            concurrency::read(cx.aws, &function::from_arn(target)?).await?
        ))
    }

    async fn verify(
        &self,
        cx: &StepContext<'_>,
        _observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let args = args(cx)?;
        let f = args.function.resolve(cx)?;
        concurrency::verify(cx.aws, &f, Some(i64::from(args.value))).await
    }
}

/// The prior value this incident recorded for a function, if it changed it:
/// the `before` of the earliest intent of `lambda.set_concurrency` on that
/// function that did not fail.
pub fn recorded_prior(history: &crate::state::History, arn: &str) -> Option<Value> {
    use crate::state::JournalEvent;
    history
        .iter()
        .filter(|r| {
            r.event == JournalEvent::Intent
                && r.action == SPEC.name
                && r.change.target == arn
                && r.change.attribute == concurrency::ATTRIBUTE
        })
        .find(|intent| {
            !history.iter().any(|o| {
                o.seq > intent.seq
                    && o.event == JournalEvent::Failed
                    && o.step == intent.step
                    && o.change.same_intent(&intent.change)
            })
        })
        .map(|r| r.change.before.clone())
}
