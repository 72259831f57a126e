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

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use serde_json::{json, Map, Value};

use super::value::{self, Generator, SecretValue};
use super::{rotation_token, SecretArgs, BLOCKED_PREFIX, GENERATE_PARAMS};
use crate::action::spec::{ActionSpec, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Check, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};
use crate::plan::Change;

pub struct Rotate;

static SPEC: ActionSpec = ActionSpec {
    name: "secrets.rotate",
    summary: "Rotate Secrets Manager secrets: by their rotation Lambda, or (generate: true) with a generated value; never restored by recover.",
    mutating: true,
    stops_harm: true,
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

fn current_of(d: &DescribeSecretOutput) -> Option<String> {
    d.version_ids_to_stages()?
        .iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id.clone())
}

fn stages_of<'a>(d: &'a DescribeSecretOutput, id: &str) -> &'a [String] {
    d.version_ids_to_stages()
        .and_then(|m| m.get(id))
        .map_or(&[], Vec::as_slice)
}

async fn describe(cx: &StepContext<'_>, secret: &str) -> Result<DescribeSecretOutput, AwsError> {
    cx.aws
        .secretsmanager
        .describe_secret()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| classify("DescribeSecret", "secretsmanager:DescribeSecret", secret, e))
}

/// Reads the current value (to rewrite JSON keys, and to prove the key is
/// usable before anything is planned).
async fn current_value(cx: &StepContext<'_>, arn: &str) -> Result<SecretValue, Value> {
    let out = cx
        .aws
        .secretsmanager
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await;
    match out {
        Ok(o) => match o.secret_string() {
            Some(s) => Ok(SecretValue::new(s.to_string())),
            None => Err(json!("it holds binary data: rotate it at the source")),
        },
        Err(e) => {
            let e = classify("GetSecretValue", "secretsmanager:GetSecretValue", arn, e);
            let why = match e.code.as_deref() {
                Some(c)
                    if c.contains("Decryption")
                        || c.contains("KMS")
                        || e.kind == AwsErrorKind::AccessDenied =>
                {
                    format!("its value cannot be read or its KMS key cannot be used by this caller ({})", e.message)
                }
                _ => format!("its value cannot be read ({})", e.message),
            };
            Err(json!(why))
        }
    }
}

/// One secret as rotation sees it; no value, ever.
async fn assess(cx: &StepContext<'_>, secret: &str, generate: bool) -> Result<Value, ActionError> {
    let blocked = |detail: String| {
        json!({"arn": secret, "status": "blocked", "current": null,
            "token": rotation_token(cx.incident_id, secret), "detail": detail})
    };
    let d = match describe(cx, secret).await {
        Ok(d) => d,
        Err(e) if e.kind == AwsErrorKind::NotFound => {
            return Ok(blocked(
                "it does not exist (a stale reference, or deleted)".into(),
            ))
        }
        // A pause may help (the step's retries re-observe): not this
        // secret's fault, so the step fails as a whole.
        Err(e) if e.kind.retryable() => return Err(e.into()),
        // Refused for this secret only (a resource policy's deny, a bad
        // name): it is reported, the others are still rotated.
        Err(e) => return Ok(blocked(format!("it cannot be described ({})", e.message))),
    };
    let arn = d.arn().unwrap_or(secret).to_string();
    let token = rotation_token(cx.incident_id, &arn);
    let current = current_of(&d);
    let lambda = d
        .rotation_lambda_arn()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let ours = stages_of(&d, &token);
    let pending_other = d
        .version_ids_to_stages()
        .into_iter()
        .flatten()
        .any(|(id, st)| {
            *id != token
                && st.iter().any(|s| s == "AWSPENDING")
                && !st.iter().any(|s| s == "AWSCURRENT")
        });
    let (status, detail): (&str, Value) = if d.deleted_date().is_some() {
        (
            "blocked",
            json!("it is scheduled for deletion (restore it first if it is still in use)"),
        )
    } else if ours.iter().any(|s| s == "AWSCURRENT") {
        ("rotated", Value::Null)
    } else if !ours.is_empty() && ours.iter().any(|s| s == "AWSPENDING") && lambda.is_some() {
        ("waiting", json!(lambda))
    } else if !ours.is_empty() {
        (
            "rotated",
            json!("rotated for this incident; AWSCURRENT has moved since"),
        )
    } else if lambda.is_none() && !generate {
        // Nothing here would rotate it anyway, in progress or not.
        ("at_source", Value::Null)
    } else if pending_other {
        ("blocked", json!("a rotation is already in progress (an AWSPENDING version exists that is not this incident's): let it finish, or cancel it (CancelRotateSecret) and run again"))
    } else if let Some(l) = &lambda {
        ("rotate", json!(l))
    } else {
        match current_value(cx, &arn).await {
            Ok(_) => ("generate", Value::Null),
            Err(why) => ("blocked", why),
        }
    };
    Ok(
        json!({"arn": arn, "name": d.name(), "current": current, "token": token, "status": status, "detail": detail}),
    )
}

fn reason(s: &Value) -> String {
    match s["status"].as_str() {
        Some("rotate") => format!("contain: assume it stolen; its rotation Lambda {} makes a new AWSCURRENT", s["detail"].as_str().unwrap_or("?")),
        Some("waiting") => "contain: a rotation started for this incident; waiting for its Lambda to finish".into(),
        Some("generate") => "contain: assume it stolen; a generated value becomes AWSCURRENT, the old one stays AWSPREVIOUS for the investigation".into(),
        _ => format!("{BLOCKED_PREFIX}{}", s["detail"].as_str().unwrap_or("unknown")),
    }
}

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
            Some("rotate") => {
                cx.aws
                    .secretsmanager
                    .rotate_secret()
                    .secret_id(&arn)
                    .client_request_token(&token)
                    .rotate_immediately(true)
                    .send()
                    .await
                    .map_err(|e| {
                        rotate_error(classify(
                            "RotateSecret",
                            "secretsmanager:RotateSecret",
                            &arn,
                            e,
                        ))
                    })?;
            }
            Some("waiting") => {}
            Some("generate") => {
                let current = current_value(cx, &arn).await.map_err(|why| {
                    ActionError::input(
                        format!("{arn}: {BLOCKED_PREFIX}{}", why.as_str().unwrap_or("")),
                        "see the secret's KMS key policy and this caller's permissions",
                    )
                })?;
                let new = value::replace(&current, &args.keys(), &Generator::from_args(cx.args))?;
                drop(current);
                cx.aws
                    .secretsmanager
                    .put_secret_value()
                    .secret_id(&arn)
                    .client_request_token(&token)
                    .secret_string(new.expose())
                    .send()
                    .await
                    .map_err(|e| {
                        classify("PutSecretValue", "secretsmanager:PutSecretValue", &arn, e)
                    })?;
                return Ok(());
            }
            _ => {
                return Err(ActionError::input(
                    format!("secret {arn} was not rotated: {}", reason(&s)),
                    "fix it and run again: the secrets that could be rotated were",
                ))
            }
        }
        wait_current(cx, &arn, &token).await
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

/// Waits until `token` is `AWSCURRENT`. Running out of time is "outcome
/// unknown": the rotation may still finish, and the next run re-observes.
async fn wait_current(cx: &StepContext<'_>, arn: &str, token: &str) -> Result<(), ActionError> {
    let secs = cx
        .args
        .get("wait_seconds")
        .and_then(Value::as_u64)
        .unwrap_or(120);
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let d = describe(cx, arn).await?;
        if current_of(&d).as_deref() == Some(token) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(AwsError::new(
                "RotateSecret",
                arn,
                AwsErrorKind::Timeout,
                format!("the rotation Lambda did not make version {token} AWSCURRENT within {secs} s (it failed, or is still at work)"),
                "check the rotation Lambda's logs; run again to keep waiting (it is not started twice), or cancel it (CancelRotateSecret) and rotate at the source",
            )
            .into());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// RotateSecret refused: when Secrets Manager could not start the rotation
/// Lambda (its resource policy, a deleted function), say so rather than
/// blame the caller's own permission.
fn rotate_error(mut e: AwsError) -> AwsError {
    if e.message.to_ascii_lowercase().contains("lambda") {
        e.hint = "Secrets Manager could not run the secret's rotation Lambda: check that the function exists, that its resource policy lets secretsmanager.amazonaws.com invoke it, and its logs; the other secrets were rotated".into();
    }
    e
}
