//! The generated-value path (`generate: true`), for a secret whose stored
//! value is itself the credential: a new value goes in as the incident's
//! version, which becomes AWSCURRENT; the old one stays AWSPREVIOUS for the
//! investigation. For a JSON secret only the named keys change.

use crate::action::secrets::value::{self, Generator};
use crate::action::secrets::{SecretArgs, BLOCKED_PREFIX};
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;

use super::assess::current_value;

/// Puts a new value, derived from the current one, as version `token`.
/// Both values live only in `SecretValue`s, wiped when dropped.
pub async fn put(
    cx: &StepContext<'_>,
    args: &SecretArgs,
    arn: &str,
    token: &str,
) -> Result<(), ActionError> {
    let current = current_value(cx, arn).await.map_err(|why| {
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
        .secret_id(arn)
        .client_request_token(token)
        .secret_string(new.expose())
        .send()
        .await
        .map_err(|e| classify("PutSecretValue", "secretsmanager:PutSecretValue", arn, e))?;
    Ok(())
}
