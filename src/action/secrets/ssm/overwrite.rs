//! Writing the generated version: PutParameter (Overwrite) with the
//! parameter's own KMS key, tier and description, the incident's rotation
//! marker appended to the description in the same call. SSM has no request
//! token: that marker, in the history, is how a re-run or a resume knows
//! the write landed.

use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};

use super::assess::{decrypted, marker};
use crate::action::secrets::value::{self, Generator};
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;

/// Puts a value generated from the current one (only `keys` of a JSON
/// value change) as `name`'s next version, marked with `token`.
pub async fn put(
    cx: &StepContext<'_>,
    name: &str,
    token: &str,
    keys: &[String],
) -> Result<(), ActionError> {
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
                .values(name)
                .build()
                .map_err(|e| ActionError::input(e.to_string(), "report it"))?,
        )
        .send()
        .await
        .map_err(|e| classify("DescribeParameters", "ssm:DescribeParameters", name, e))?;
    let meta = described.parameters().first();
    let old_desc = meta.and_then(|m| m.description()).unwrap_or_default();
    let kept = old_desc
        .split(" [firebreak rotation ")
        .next()
        .unwrap_or_default();
    let mut description = format!("{kept} [{} for incident {}]", marker(token), cx.incident_id);
    if description.len() > 1024 {
        description = format!("[{} for incident {}]", marker(token), cx.incident_id);
    }
    let current = decrypted(cx, name).await?;
    let new = value::replace(&current, keys, &Generator::from_args(cx.args))?;
    drop(current);
    let mut put = cx
        .aws
        .ssm
        .put_parameter()
        .name(name)
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
        .map_err(|e| classify("PutParameter", "ssm:PutParameter", name, e))?;
    Ok(())
}
