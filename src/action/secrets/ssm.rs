//! `ssm.rotate_parameter`: a new version of each SecureString parameter.
//!
//! SSM has no rotation Lambda, so without `generate: true` every parameter
//! is an open item ("rotate at the source"). With it, PutParameter
//! (Overwrite) writes a generated value; the old one stays in the
//! parameter's history for the investigation. SSM has no request token:
//! the new version's description carries the incident's rotation token,
//! written in the same call, so a re-run or a crash after the call finds
//! it in the history and rotates nothing more.

use async_trait::async_trait;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};
use serde_json::{json, Map, Value};

use super::value::{self, Generator, SecretValue};
use super::{rotation_token, SecretArgs, BLOCKED_PREFIX, GENERATE_PARAMS};
use crate::action::spec::{ActionSpec, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};
use crate::plan::Change;

pub struct RotateParameter;

static SPEC: ActionSpec = ActionSpec {
    name: "ssm.rotate_parameter",
    summary: "Put a generated value as a new version of SSM SecureString parameters (generate: true); otherwise list them to rotate at the source.",
    mutating: true,
    stops_harm: true,
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
const MARKER: &str = "firebreak rotation ";

/// A parameter's name from its ARN (`parameter/a/b` is `/a/b`,
/// `parameter/a` is `a`: hierarchical names start with `/`).
fn name_of(target: &str) -> String {
    match target.split_once(":parameter/") {
        Some((_, rest)) if rest.contains('/') => format!("/{rest}"),
        Some((_, rest)) => rest.to_string(),
        None => target.to_string(),
    }
}

fn marker(token: &str) -> String {
    format!("{MARKER}{token}")
}

/// Whether a version of `name` carries `token` (this incident rotated it),
/// and whether that version is the latest.
async fn rotated_version(
    cx: &StepContext<'_>,
    name: &str,
    token: &str,
) -> Result<Option<bool>, ActionError> {
    let mut found = None;
    let mut latest = 0;
    let mut pages = cx
        .aws
        .ssm
        .get_parameter_history()
        .name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| classify("GetParameterHistory", "ssm:GetParameterHistory", name, e))?;
        for h in page.parameters() {
            latest = latest.max(h.version());
            if h.description().is_some_and(|d| d.contains(token)) {
                found = Some(h.version());
            }
        }
    }
    Ok(found.map(|v| v == latest))
}

async fn assess(cx: &StepContext<'_>, name: &str, generate: bool) -> Result<Value, ActionError> {
    let p = match cx.aws.ssm.get_parameter().name(name).send().await {
        Ok(o) => o.parameter().cloned(),
        Err(e) => {
            let e = classify("GetParameter", "ssm:GetParameter", name, e);
            if e.kind == AwsErrorKind::NotFound || e.code.as_deref() == Some("ParameterNotFound") {
                None
            } else if e.kind.retryable() {
                // A pause may help: the step's retries re-observe.
                return Err(e.into());
            } else {
                // Refused for this parameter only: reported, the others go on.
                return Ok(json!({"arn": name, "status": "blocked", "current": null,
                    "token": marker(&rotation_token(cx.incident_id, name)),
                    "detail": format!("it cannot be read ({})", e.message)}));
            }
        }
    };
    let Some(p) = p else {
        return Ok(
            json!({"arn": name, "status": "blocked", "current": null, "token": marker(&rotation_token(cx.incident_id, name)),
            "detail": "it does not exist (a stale reference, or deleted)"}),
        );
    };
    let arn = p.arn().unwrap_or(name).to_string();
    let token = rotation_token(cx.incident_id, &arn);
    let current = json!(format!("v{}", p.version()));
    let base = |status: &str, detail: Value| json!({"arn": arn, "name": p.name(), "current": current, "token": marker(&token), "status": status, "detail": detail});
    if p.r#type() != Some(&ParameterType::SecureString) {
        let t = p.r#type().map_or("unknown", |t| t.as_str());
        return Ok(base("blocked", json!(format!("it is a {t} parameter, not SecureString: firebreak rotates only SecureString values (if it holds a credential, rotate it at the source and make it SecureString)"))));
    }
    Ok(match rotated_version(cx, p.name().unwrap_or(name), &token).await? {
        Some(true) => base("rotated", Value::Null),
        Some(false) => base("rotated", json!("rotated for this incident; a newer version was written since")),
        None if !generate => base("at_source", Value::Null),
        None => match decrypted(cx, p.name().unwrap_or(name)).await {
            Ok(_) => base("generate", Value::Null),
            Err(e) => base("blocked", json!(format!("its value cannot be read or its KMS key cannot be used by this caller ({})", e.message))),
        },
    })
}

async fn decrypted(cx: &StepContext<'_>, name: &str) -> Result<SecretValue, AwsError> {
    let out = cx
        .aws
        .ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| classify("GetParameter", "ssm:GetParameter", name, e))?;
    Ok(SecretValue::new(
        out.parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_string(),
    ))
}

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
        // Keep the parameter's KMS key, tier and description (the marker is
        // appended): an overwrite without them would quietly change them.
        let described = cx
            .aws
            .ssm
            .describe_parameters()
            .parameter_filters(
                ParameterStringFilter::builder()
                    .key("Name")
                    .option("Equals")
                    .values(&name)
                    .build()
                    .map_err(|e| ActionError::input(e.to_string(), "report it"))?,
            )
            .send()
            .await
            .map_err(|e| classify("DescribeParameters", "ssm:DescribeParameters", &name, e))?;
        let meta = described.parameters().first();
        let old_desc = meta.and_then(|m| m.description()).unwrap_or_default();
        let kept = old_desc
            .split(" [firebreak rotation ")
            .next()
            .unwrap_or_default();
        let mut description = format!(
            "{kept} [{} for incident {}]",
            marker(&token),
            cx.incident_id
        );
        if description.len() > 1024 {
            description = format!("[{} for incident {}]", marker(&token), cx.incident_id);
        }
        let current = decrypted(cx, &name).await?;
        let keys = cx.args_as::<SecretArgs>(&SPEC)?.keys();
        let new = value::replace(&current, &keys, &Generator::from_args(cx.args))?;
        drop(current);
        let mut put = cx
            .aws
            .ssm
            .put_parameter()
            .name(&name)
            .value(new.expose())
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .description(description);
        if let Some(k) = meta.and_then(|m| m.key_id()) {
            put = put.key_id(k);
        }
        if let Some(t) = meta.and_then(|m| m.tier()) {
            put = put.tier(t.clone());
        }
        put.send()
            .await
            .map_err(|e| classify("PutParameter", "ssm:PutParameter", &name, e))?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_back_from_arns() {
        assert_eq!(
            name_of("arn:aws:ssm:us-east-1:1:parameter/app/db/pw"),
            "/app/db/pw"
        );
        assert_eq!(name_of("arn:aws:ssm:us-east-1:1:parameter/token"), "token");
        assert_eq!(name_of("token"), "token");
    }
}
