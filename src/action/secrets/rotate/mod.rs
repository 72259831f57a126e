//! `secrets.rotate`: a new `AWSCURRENT` for each Secrets Manager secret.
//!
//! With a rotation Lambda: `RotateSecret` (immediately), then wait for the
//! new version to become `AWSCURRENT`. Without one, a new stored value does
//! not change the credential it stands for (a database password, a
//! third-party API key), so the plan says "rotate at the source" and
//! changes nothing, unless `generate: true` says the value *is* the
//! credential: then a generated value is put as `AWSCURRENT` and the old
//! stays `AWSPREVIOUS` for the investigation.
//!
//! One change per secret (`AWSCURRENT`: old version id → the incident's
//! token), whose `after` is the new version id itself: re-observation after
//! a crash tells whether the call landed. A secret that cannot be rotated
//! (missing, scheduled for deletion, rotation in progress, unreadable key)
//! gets a change whose apply fails with the reason; those changes are
//! ordered last so every other secret is rotated first.
//!
//! Modules: `assess` reads one secret and decides what can be done;
//! `by_lambda` starts its rotation Lambda and waits for it; `generated`
//! puts a generated value.

mod assess;
mod by_lambda;
mod generated;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{rotation_token, SecretArgs, GENERATE_PARAMS};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Check, Observation, Planned, StepContext};
use crate::plan::Change;
use assess::{assess, current_of, describe, reason};

pub struct Rotate;

static SPEC: ActionSpec = ActionSpec {
    name: "secrets.rotate",
    summary: "Rotate Secrets Manager secrets: by their rotation Lambda, or (generate: true) with a generated value; never restored by recover.",
    mutating: true,
    stops_harm: true,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &[
        ParamDef::new("secrets", ValueType::List, "secret ARNs or names (e.g. `${steps.discover.secrets}`)"),
        GENERATE_PARAMS[0],
        GENERATE_PARAMS[1],
        GENERATE_PARAMS[2],
        GENERATE_PARAMS[3],
        ParamDef::new("wait_seconds", ValueType::Integer, "how long to wait for a rotation Lambda to make the new version AWSCURRENT (default 120)")
            .optional()
            .range(1, 280),
    ],
    outputs: &[
        OutputDef::new("rotated", ValueType::List, "ARNs of the secrets this step rotates"),
        OutputDef::new("rotate_at_source", ValueType::List, "ARNs of the secrets without a rotation Lambda, left to rotate at the source"),
    ],
    iam_actions: &[
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:RotateSecret",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ],
};

pub const ATTRIBUTE: &str = "AWSCURRENT";

#[async_trait]
impl Action for Rotate {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let args: SecretArgs = cx.args_as(&SPEC)?;
        let mut secrets = Vec::new();
        for s in &args.secrets {
            secrets.push(assess(cx, s, args.generate).await?);
        }
        Ok(Observation {
            target: format!("{} secret(s)", secrets.len()),
            state: json!({"secrets": secrets}),
        })
    }

    fn plan(&self, _cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let all = observed.state["secrets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut changes = Vec::new();
        let mut blocked = Vec::new();
        let (mut rotated, mut at_source, mut moved) = (Vec::new(), Vec::new(), Vec::new());
        for s in &all {
            let arn = s["arn"].as_str().unwrap_or_default();
            let change = Change::new(
                arn,
                ATTRIBUTE,
                s["current"].clone(),
                s["token"].clone(),
                reason(s),
            );
            match s["status"].as_str() {
                Some("rotate" | "waiting" | "generate") => {
                    rotated.push(arn.to_string());
                    changes.push(change);
                }
                Some("at_source") => at_source.push(arn.to_string()),
                Some("rotated") if s["detail"].is_string() => moved.push(arn.to_string()),
                Some("rotated") => {}
                _ => blocked.push(change),
            }
        }
        // Secrets that cannot be rotated go last: their failure must not
        // keep any other secret from being rotated.
        changes.extend(blocked);
        let mut notes = Vec::new();
        if !at_source.is_empty() {
            notes.push(format!("open item: rotate at the source (no rotation Lambda; a new stored value would not change the credential it stands for): {}; pass generate: true only where the value itself is the credential", at_source.join(", ")));
        }
        if !moved.is_empty() {
            notes.push(format!(
                "rotated for this incident, AWSCURRENT changed since by someone else: {}",
                moved.join(", ")
            ));
        }
        let mut outputs = Map::new();
        outputs.insert("rotated".into(), json!(rotated));
        outputs.insert("rotate_at_source".into(), json!(at_source));
        Ok(Planned {
            changes,
            outputs,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        let token = rotation_token(cx.incident_id, &change.target);
        if change.attribute != ATTRIBUTE || change.after != json!(token) {
            return Err(ActionError::input(
                format!("firebreak never puts back an old value of {}: it must be assumed stolen", change.target),
                "applications must pick up the new value; the old one stays AWSPREVIOUS for the investigation",
            ));
        }
        let args: SecretArgs = cx.args_as(&SPEC)?;
        let generate = args.generate;
        let s = assess(cx, &change.target, generate).await?;
        let arn = s["arn"].as_str().unwrap_or(&change.target).to_string();
        match s["status"].as_str() {
            Some("rotated") => return Ok(()),
            Some("rotate") => by_lambda::start(cx, &arn, &token).await?,
            Some("waiting") => {}
            Some("generate") => return generated::put(cx, &args, &arn, &token).await,
            _ => {
                return Err(ActionError::input(
                    format!("secret {arn} was not rotated: {}", reason(&s)),
                    "fix it and run again: the secrets that could be rotated were",
                ))
            }
        }
        by_lambda::wait_current(cx, &arn, &token).await
    }

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        _attribute: &str,
    ) -> Result<Value, ActionError> {
        let d = describe(cx, target).await?;
        Ok(json!(current_of(&d)))
    }

    fn never_restored(&self) -> Option<&'static str> {
        Some("rotated for this incident: applications must pick up the new value (restart or redeploy what caches it); the old value stays AWSPREVIOUS for the investigation and, assumed stolen, is never restored")
    }

    /// Each change is one secret: a rotation Lambda that times out on one
    /// says nothing about the next.
    fn independent_changes(&self) -> bool {
        true
    }

    /// The step's target is the whole list: each secret is its own resource.
    fn covers(&self, observed: &Observation, resource: &str) -> bool {
        observed.state["secrets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["arn"] == resource)
    }

    async fn verify(
        &self,
        cx: &StepContext<'_>,
        observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let mut checks = Vec::new();
        for s in observed.state["secrets"].as_array().into_iter().flatten() {
            if !matches!(
                s["status"].as_str(),
                Some("rotate" | "waiting" | "generate")
            ) {
                continue;
            }
            let arn = s["arn"].as_str().unwrap_or_default();
            let now = describe(cx, arn).await.ok().and_then(|d| current_of(&d));
            let passed = now.as_ref() == s["token"].as_str().map(str::to_string).as_ref();
            checks.push(Check {
                name: "secret rotated".into(),
                target: arn.to_string(),
                passed,
                detail: if passed {
                    "AWSCURRENT is the new version".into()
                } else {
                    format!(
                        "AWSCURRENT is {}",
                        now.unwrap_or_else(|| "unreadable".into())
                    )
                },
            });
        }
        Ok(checks)
    }
}
