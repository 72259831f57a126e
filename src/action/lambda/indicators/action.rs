//! `lambda.indicators`: the identify step that names what the attacker
//! changed (read-only). Its findings are step outputs, shown in the plan
//! and recorded in the audit trail; `evidence.snapshot_indicators` writes
//! them to the forensic bucket.

use async_trait::async_trait;
use serde_json::{json, Map};

use super::{assess, observed, Assessment, IndicatorArgs, PARAMS};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, StepContext};
use crate::plan::Change;

pub struct Indicators;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.indicators",
    summary: "Name the indicators of compromise (read-only): public or foreign statements and URLs, foreign layers, hijacking variables, new code and repointed aliases, admin inline policies, foreign event sources, other functions on the role and their rules, new access keys; who made each change when CloudTrail can tell.",
    mutating: false,
    stops_harm: false,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &PARAMS,
    outputs: &[
        OutputDef::new("function_arn", ValueType::String, "the function's ARN"),
        OutputDef::new("findings", ValueType::List, "one line per indicator: SUSPICIOUS or expected, kind, resource, what, why, who and when"),
        OutputDef::new("suspicious", ValueType::Integer, "how many indicators are suspicious"),
        OutputDef::new("rogue_functions", ValueType::List, "other functions on the role that identify marks as the attacker's (for `iam.quarantine_role`'s `attacker_functions`)"),
        OutputDef::new("window_start", ValueType::String, "the incident window's start (RFC 3339)"),
    ],
    iam_actions: super::indicator_iam_actions!(),
};

/// The outputs and the one-line note of an assessment.
pub fn summarize(a: &Assessment) -> (Map<String, serde_json::Value>, String) {
    let suspicious = a.suspicious().count();
    let mut outputs = Map::new();
    outputs.insert("function_arn".into(), json!(a.function_arn));
    outputs.insert(
        "findings".into(),
        json!(a.indicators.iter().map(|i| i.line()).collect::<Vec<_>>()),
    );
    outputs.insert("suspicious".into(), json!(suspicious));
    outputs.insert("rogue_functions".into(), json!(a.rogue_functions()));
    outputs.insert("window_start".into(), json!(a.since));
    let note = format!(
        "{} indicator(s) of compromise since {}, {suspicious} suspicious; CloudTrail: {}",
        a.indicators.len(),
        a.since,
        a.cloudtrail
    );
    (outputs, note)
}

#[async_trait]
impl Action for Indicators {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn undoable(&self) -> bool {
        false
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let args: IndicatorArgs = cx.args_as(&SPEC)?;
        let a = assess(cx, &args).await?;
        Ok(Observation {
            target: a.function_arn.clone(),
            state: observed(cx, &a),
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let a: Assessment = serde_json::from_value(observed.state["assessment"].clone())
            .map_err(|e| {
                ActionError::input(
                    format!(
                        "step `{}` (lambda.indicators): the observed state cannot be read: {e}",
                        cx.step_id
                    ),
                    "the saved plan or journal was written by another version of firebreak; plan again",
                )
            })?;
        let (outputs, note) = summarize(&a);
        Ok(Planned {
            changes: vec![],
            outputs,
            note: Some(note),
        })
    }

    async fn apply(&self, _cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        Err(ActionError::input(
            format!(
                "lambda.indicators is read-only and cannot apply a change to {}",
                change.target
            ),
            "this is a bug in firebreak; please report it",
        ))
    }
}
