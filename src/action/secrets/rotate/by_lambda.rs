//! The rotation-Lambda path: Secrets Manager runs the secret's own
//! rotation Lambda (`RotateSecret`), which changes the credential where it
//! is checked and then makes the new version AWSCURRENT; firebreak waits
//! for that. The Lambda may fail or take long: running out of time leaves
//! the secret in doubt, never "failed", because it may still finish.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::assess::{current_of, describe};
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};

/// Starts the rotation, with the incident's token as the new version's id
/// (a second start with the same token is not a second rotation).
pub async fn start(cx: &StepContext<'_>, arn: &str, token: &str) -> Result<(), ActionError> {
    cx.aws
        .secretsmanager
        .rotate_secret()
        .secret_id(arn)
        .client_request_token(token)
        .rotate_immediately(true)
        .send()
        .await
        .map_err(|e| {
            rotate_error(classify(
                "RotateSecret",
                "secretsmanager:RotateSecret",
                arn,
                e,
            ))
        })?;
    Ok(())
}

/// Waits until `token` is `AWSCURRENT`. Running out of time is "outcome
/// unknown": the rotation may still finish, and the next run re-observes.
pub async fn wait_current(cx: &StepContext<'_>, arn: &str, token: &str) -> Result<(), ActionError> {
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
