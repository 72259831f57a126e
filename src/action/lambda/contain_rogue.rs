//! `lambda.contain_rogue_functions`: what identify found beyond the
//! compromised function itself. Every other function on its execution role
//! that identify marks as the attacker's (created or changed inside the
//! incident window, or attributed by CloudTrail to someone outside
//! `deployers`) is throttled (reserved concurrency 0), and every
//! EventBridge rule that fires one is disabled: kept, with its targets,
//! for evidence, never deleted. Each change names the indicator it acts on.
//!
//! Recover restores exactly what was there (the concurrency, the rule's
//! state), and holds both back as risky: they re-enable the attacker's
//! function.

use async_trait::async_trait;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::concurrency;
use super::function;
use super::indicators::{self, facts, IndicatorArgs, Kind, PARAMS};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ValueType};
use crate::action::{state_of, Action, ActionError, Check, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::plan::Change;

pub struct ContainRogueFunctions;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.contain_rogue_functions",
    summary: "Throttle the other functions on the role that identify marks as the attacker's and disable (never delete) the EventBridge rules that fire them.",
    mutating: true,
    stops_harm: true,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &PARAMS,
    outputs: &[
        OutputDef::new("throttled", ValueType::List, "ARNs of the functions this step throttles"),
        OutputDef::new("disabled_rules", ValueType::List, "ARNs of the rules this step disables"),
    ],
    iam_actions: super::indicators::indicator_iam_actions!(
        "lambda:GetFunctionConcurrency",
        "lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionConcurrency",
        "events:DisableRule",
        "events:EnableRule",
    ),

};

const RULE: &str = "rule_state";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rogue {
    reserved_concurrency: Option<i32>,
    why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RuleSeen {
    name: String,
    /// `ENABLED` or `DISABLED`.
    state: String,
    target: String,
    why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RogueState {
    functions: IndexMap<String, Rogue>,
    rules: IndexMap<String, RuleSeen>,
}

fn rule_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

async fn rule_state(cx: &StepContext<'_>, arn: &str) -> Result<Value, ActionError> {
    let r = facts::describe_rule(cx, rule_name(arn), "").await?;
    Ok(json!(if r.enabled { "ENABLED" } else { "DISABLED" }))
}

#[async_trait]
impl Action for ContainRogueFunctions {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let args: IndicatorArgs = cx.args_as(&SPEC)?;
        // Afresh before the changes: only what they change (each
        // function's concurrency, each rule's state).
        let a = indicators::assess_as_planned(cx, &args).await?;
        let mut state = RogueState::default();
        // Every rogue function's concurrency side by side; while planning
        // from the run's shared GetFunction (its own quota): with N
        // functions on one role each target finds the N - 1 others, and a
        // control-plane read of each, one after another, was N² calls at
        // 15/s. Before the changes, GetFunctionConcurrency (GetFunction
        // leaves a 0 out on LocalStack, and the journal must record what
        // recovery puts back), except for a function this run has already
        // throttled (for any target), which is not read again.
        let rogue: Vec<_> = a
            .suspicious()
            .filter(|i| i.kind == Kind::RogueFunction)
            .map(|i| function::from_arn(&i.resource))
            .collect::<Result<_, _>>()?;
        let reserved = futures::future::try_join_all(rogue.iter().map(|f| async move {
            let throttled = Change::new(&f.arn, concurrency::ATTRIBUTE, Value::Null, json!(0), "");
            if cx.fresh && !cx.verifying {
                if cx.run.is_settled(&throttled) {
                    return Ok(Some(0));
                }
                return concurrency::read(cx.aws, f).await;
            }
            concurrency::read_planned(cx, f).await
        }))
        .await?;
        let mut reserved = reserved.into_iter();
        for i in a.suspicious() {
            match i.kind {
                Kind::RogueFunction => {
                    state.functions.insert(
                        i.resource.clone(),
                        Rogue {
                            reserved_concurrency: reserved.next().flatten(),
                            why: format!("{}: {}", i.detail, i.why),
                        },
                    );
                }
                Kind::RogueRule => {
                    let name = i.artifact["rule"].as_str().unwrap_or_default().to_string();
                    let target = i.artifact["target"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let disabled =
                        Change::new(&i.resource, RULE, Value::Null, json!("DISABLED"), "");
                    // Read afresh: the assessment may be the plan's. Shared
                    // while planning; before the changes, not read again
                    // once this run disabled it for another target.
                    let enabled = if cx.fresh && !cx.verifying && cx.run.is_settled(&disabled) {
                        false
                    } else {
                        let key = format!("DescribeRule {name} {target}");
                        cx.shared_read(key, facts::describe_rule(cx, &name, &target))
                            .await?
                            .enabled
                    };
                    state.rules.insert(
                        i.resource.clone(),
                        RuleSeen {
                            name,
                            state: if enabled { "ENABLED" } else { "DISABLED" }.into(),
                            target,
                            why: i.why.clone(),
                        },
                    );
                }
                _ => {}
            }
        }
        Ok(Observation {
            target: a.function_arn,
            state: state_of(&SPEC, &state)?,
        })
    }

    fn covers(&self, observed: &Observation, resource: &str) -> bool {
        observed.target == resource
            || observed.state["functions"].get(resource).is_some()
            || observed.state["rules"].get(resource).is_some()
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let state: RogueState = cx.state_as(&SPEC, observed)?;
        let mut changes = Vec::new();
        let mut throttled = Vec::new();
        let mut disabled = Vec::new();
        for (arn, r) in &state.functions {
            if r.reserved_concurrency != Some(0) {
                throttled.push(arn.clone());
                changes.push(Change::new(
                    arn,
                    concurrency::ATTRIBUTE,
                    json!(r.reserved_concurrency),
                    json!(0),
                    format!("contain: throttle the attacker's function ({})", r.why),
                ));
            }
        }
        for (arn, r) in &state.rules {
            if r.state != "DISABLED" {
                disabled.push(arn.clone());
                changes.push(Change::new(
                    arn,
                    RULE,
                    json!(r.state),
                    json!("DISABLED"),
                    format!(
                        "contain: disable rule {} (kept for evidence, never deleted): it invokes {}; {}",
                        r.name, r.target, r.why
                    ),
                ));
            }
        }
        let mut outputs = Map::new();
        outputs.insert("throttled".into(), json!(throttled));
        outputs.insert("disabled_rules".into(), json!(disabled));
        let note = (state.functions.is_empty())
            .then(|| "identify marks no other function on the role as the attacker's".to_string());
        Ok(Planned {
            changes,
            outputs,
            note,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        if change.attribute == RULE {
            let name = rule_name(&change.target);
            let res = if change.after == "DISABLED" {
                cx.aws
                    .events
                    .disable_rule()
                    .name(name)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify("DisableRule", "events:DisableRule", &change.target, e))
            } else {
                cx.aws
                    .events
                    .enable_rule()
                    .name(name)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify("EnableRule", "events:EnableRule", &change.target, e))
            };
            return res.map_err(ActionError::from);
        }
        let f = function::from_arn(&change.target)?;
        concurrency::write(cx.aws, &f, change).await
    }

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        attribute: &str,
    ) -> Result<Value, ActionError> {
        if attribute == RULE {
            return rule_state(cx, target).await;
        }
        let f = function::from_arn(target)?;
        Ok(json!(concurrency::read(cx.aws, &f).await?))
    }

    async fn restore_risk(
        &self,
        _cx: &StepContext<'_>,
        change: &Change,
    ) -> Result<Option<String>, ActionError> {
        Ok(Some(if change.attribute == RULE {
            format!(
                "re-enables rule {}, which fires a function identify marked as the attacker's",
                change.target
            )
        } else {
            format!(
                "lets {} run again, a function identify marked as the attacker's",
                change.target
            )
        }))
    }

    async fn verify(
        &self,
        cx: &StepContext<'_>,
        observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let state: RogueState = cx.state_as(&SPEC, observed)?;
        let mut checks = Vec::new();
        // Each function and rule read once for the run's verification,
        // after every change, however many targets found it rogue.
        let functions = state
            .functions
            .keys()
            .map(|arn| function::from_arn(arn))
            .collect::<Result<Vec<_>, _>>()?;
        let reads = futures::future::join_all(functions.iter().map(|f| {
            cx.shared_read(
                format!("GetFunctionConcurrency {}", f.arn),
                concurrency::read(cx.aws, f),
            )
        }))
        .await;
        let rules = futures::future::join_all(
            state
                .rules
                .keys()
                .map(|arn| cx.shared_read(format!("rule state {arn}"), rule_state(cx, arn))),
        )
        .await;
        for (arn, read) in state.functions.keys().zip(reads) {
            let (passed, detail) = match read {
                Ok(Some(0)) => (true, "reserved concurrency reads 0".to_string()),
                Ok(v) => (
                    false,
                    format!("reserved concurrency reads {v:?}, expected 0"),
                ),
                Err(e) => (false, format!("could not read it: {e}")),
            };
            checks.push(Check {
                name: "attacker's function throttled".into(),
                target: arn.clone(),
                passed,
                detail,
            });
        }
        for (arn, read) in state.rules.keys().zip(rules) {
            let (passed, detail) = match read {
                Ok(v) if v == "DISABLED" => (true, "the rule reads DISABLED (kept)".to_string()),
                Ok(v) => (false, format!("the rule reads {v}, expected DISABLED")),
                Err(e) => (false, format!("could not read it: {e}")),
            };
            checks.push(Check {
                name: "attacker's rule disabled".into(),
                target: arn.clone(),
                passed,
                detail,
            });
        }
        Ok(checks)
    }
}
