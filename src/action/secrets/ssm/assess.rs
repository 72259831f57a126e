//! How rotation sees one parameter: its current version, whether this
//! incident already wrote one (the rotation token in a version's
//! description), and why it cannot be rotated if it cannot. SSM has no
//! request token, so the history is the only record of a rotation that
//! landed just before a crash.

use aws_sdk_ssm::types::ParameterType;
use serde_json::{json, Value};

use crate::action::secrets::rotation_token;
use crate::action::secrets::value::SecretValue;
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};

const MARKER: &str = "firebreak rotation ";

/// A parameter's name from its ARN (`parameter/a/b` is `/a/b`,
/// `parameter/a` is `a`: hierarchical names start with `/`).
pub fn name_of(target: &str) -> String {
    match target.split_once(":parameter/") {
        Some((_, rest)) if rest.contains('/') => format!("/{rest}"),
        Some((_, rest)) => rest.to_string(),
        None => target.to_string(),
    }
}

pub fn marker(token: &str) -> String {
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

pub async fn assess(
    cx: &StepContext<'_>,
    name: &str,
    generate: bool,
) -> Result<Value, ActionError> {
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

pub async fn decrypted(cx: &StepContext<'_>, name: &str) -> Result<SecretValue, AwsError> {
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
