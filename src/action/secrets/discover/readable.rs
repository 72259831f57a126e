//! Expanding the role's policies over what exists: every secret and
//! parameter of the inventory is checked against the policies (wildcards,
//! `NotAction`, `NotResource`, unconditional denies), so a grant like
//! `secret:app/*` or `NotAction: iam:*` becomes the list of real ARNs it
//! covers.

use super::found::Found;
use super::inventory::{parameter_arn, parent_paths, Inventory};
use super::policy::Policies;
use crate::action::StepContext;

const GET_SECRET_VALUE: &str = "secretsmanager:GetSecretValue";
/// Each reads one named parameter (or a list of them).
const GET_PARAMETER: [&str; 2] = ["ssm:GetParameter", "ssm:GetParameters"];
/// Reads everything under a path, recursively; IAM checks the path's ARN.
const GET_BY_PATH: &str = "ssm:GetParametersByPath";

/// Adds to `found` what `policies` let the role read.
pub fn add(cx: &StepContext<'_>, inv: &Inventory, policies: &Policies, found: &mut Found) {
    for arn in inv.secrets.values() {
        for p in policies.allowing(GET_SECRET_VALUE, arn) {
            found.secret(arn, format!("policy {p}"));
        }
    }
    for (name, secure) in &inv.parameters {
        let arn = parameter_arn(cx, name);
        let mut by: Vec<String> = GET_PARAMETER
            .iter()
            .flat_map(|action| policies.allowing(action, &arn))
            .map(|p| format!("policy {p}"))
            .collect();
        for path in parent_paths(name) {
            for p in policies.allowing(GET_BY_PATH, &parameter_arn(cx, &path)) {
                by.push(format!("policy {p} (GetParametersByPath {path})"));
            }
        }
        for from in by {
            if *secure {
                found.parameter(name, from);
            } else {
                found.plain_parameter(name, from);
            }
        }
    }
}
