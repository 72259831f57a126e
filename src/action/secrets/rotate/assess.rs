//! How rotation sees one secret, read afresh before every plan and every
//! call: its current version, whether this incident already rotated it,
//! whether it has a rotation Lambda, and why it cannot be rotated if it
//! cannot. Only version ids and reasons leave this module; the one value
//! it reads (`current_value`) stays a `SecretValue`.

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use serde_json::{json, Value};

use crate::action::secrets::value::SecretValue;
use crate::action::secrets::{rotation_token, BLOCKED_PREFIX};
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};

pub fn current_of(d: &DescribeSecretOutput) -> Option<String> {
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

pub async fn describe(
    cx: &StepContext<'_>,
    secret: &str,
) -> Result<DescribeSecretOutput, AwsError> {
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
pub async fn current_value(cx: &StepContext<'_>, arn: &str) -> Result<SecretValue, Value> {
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

/// One secret as rotation sees it; no value, ever. Its `status`:
/// `rotated` (this incident's version exists), `waiting` (this incident's
/// rotation Lambda run is still at work), `rotate` (start its Lambda),
/// `generate` (put a generated value), `at_source` (nothing here can
/// rotate it) or `blocked` (with the reason in `detail`).
pub async fn assess(
    cx: &StepContext<'_>,
    secret: &str,
    generate: bool,
) -> Result<Value, ActionError> {
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

pub fn reason(s: &Value) -> String {
    match s["status"].as_str() {
        Some("rotate") => format!("contain: assume it stolen; its rotation Lambda {} makes a new AWSCURRENT", s["detail"].as_str().unwrap_or("?")),
        Some("waiting") => "contain: a rotation started for this incident; waiting for its Lambda to finish".into(),
        Some("generate") => "contain: assume it stolen; a generated value becomes AWSCURRENT, the old one stays AWSPREVIOUS for the investigation".into(),
        _ => format!("{BLOCKED_PREFIX}{}", s["detail"].as_str().unwrap_or("unknown")),
    }
}
