//! An execution role, named by name or ARN, and everything about it that
//! quarantine changes and recovery restores.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::policy;
use crate::action::spec::part_chars;
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;
use crate::aws::{Aws, AwsErrorKind, Caller};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRef {
    pub name: String,
    pub arn: String,
}

/// IAM's rule for role and user names: 1-64 of letters, digits, `+=,.@_-`.
pub fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(name_char)
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// Param check for a role name or ARN, at validation and again once a
/// reference is resolved: `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`
/// (a path may hold any printable ASCII but a space, as IAM allows), or a
/// name. The account is compared with the caller's when the plan is made.
pub fn check_literal(v: &Value) -> Result<(), String> {
    let Some(s) = v.as_str() else {
        return Ok(()); // the type check reports it
    };
    let ok = match s.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            match parts.as_slice() {
                [partition, "iam", "", account, resource] => {
                    let path_and_name = resource.strip_prefix("role/").unwrap_or_default();
                    let (path, name) = path_and_name
                        .rsplit_once('/')
                        .unwrap_or(("", path_and_name));
                    !partition.is_empty()
                        && account.len() == 12
                        && account.chars().all(|c| c.is_ascii_digit())
                        && path.len() <= 510
                        && path.chars().all(|c| c.is_ascii_graphic())
                        && valid_name(name)
                }
                _ => false,
            }
        }
        None => valid_name(s),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("`{s}` is neither a role name (1-64 letters, digits and `+=,.@_-`) nor a role ARN (arn:aws:iam::123456789012:role/NAME)"))
    }
}

/// Part check for a role (or policy) name or ARN in text around
/// references. Stricter than a whole value: an ARN's path may hold other
/// punctuation, but next to a reference such text is far likelier a
/// mistake or an injection than a path; pass such an ARN whole.
pub fn check_part(part: &str) -> Result<(), String> {
    part_chars(
        part,
        |c| name_char(c) || matches!(c, ':' | '/'),
        "a role or policy name or ARN (letters, digits, `+=,.@_-`, and `:` and `/` between ARN fields)",
    )
}

/// Part check for an IAM user name in text around references.
pub fn check_name_part(part: &str) -> Result<(), String> {
    part_chars(
        part,
        name_char,
        "an IAM user name (letters, digits and `+=,.@_-`)",
    )
}

/// A `role` argument: a role name or ARN, its shape checked when the
/// step's arguments are read; `resolve` compares its account with the
/// caller's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RoleArg(String);

impl TryFrom<String> for RoleArg {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        check_literal(&Value::String(s.clone()))?;
        Ok(RoleArg(s))
    }
}

impl RoleArg {
    pub fn resolve(&self, caller: &Caller) -> Result<RoleRef, ActionError> {
        resolve(&self.0, caller)
    }
}

/// `arn:aws:iam::ACCOUNT:role[/path]/NAME` or a plain name.
pub fn resolve(input: &str, caller: &Caller) -> Result<RoleRef, ActionError> {
    if let Some(rest) = input.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let ok = parts.len() == 5 && parts[1] == "iam" && parts[4].starts_with("role/");
        if !ok {
            return Err(ActionError::input(
                format!("`{input}` is not an IAM role ARN"),
                "pass a role name or arn:aws:iam::ACCOUNT:role/NAME",
            ));
        }
        if parts[3] != caller.account {
            return Err(ActionError::input(
                format!(
                    "role `{input}` is in account {}, but the credentials are for account {}",
                    parts[3], caller.account
                ),
                format!("use credentials for account {} (--profile)", parts[3]),
            ));
        }
        let name = parts[4].rsplit('/').next().unwrap_or_default().to_string();
        return Ok(RoleRef {
            name,
            arn: input.to_string(),
        });
    }
    if input.is_empty()
        || input.len() > 64
        || !input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        return Err(ActionError::input(
            format!("`{input}` is not a valid role name"),
            "pass the role's name or ARN",
        ));
    }
    let partition = caller.arn.split(':').nth(1).unwrap_or("aws");
    Ok(RoleRef {
        name: input.to_string(),
        arn: format!("arn:{partition}:iam::{}:role/{input}", caller.account),
    })
}

/// The role named by a recorded target ARN.
pub fn from_arn(arn: &str) -> RoleRef {
    RoleRef {
        name: arn.rsplit('/').next().unwrap_or(arn).to_string(),
        arn: arn.to_string(),
    }
}

fn gone(mut e: crate::aws::AwsError, what: &str) -> ActionError {
    if e.kind == AwsErrorKind::NotFound {
        e.message = format!("{what} does not exist ({})", e.message);
    }
    ActionError::from(e)
}

/// GetRole: the canonical ARN, and a refusal for service-linked roles,
/// which IAM does not let anyone but the owning service modify.
pub async fn get(aws: &Aws, role: &RoleRef) -> Result<RoleRef, ActionError> {
    let out = aws
        .iam
        .get_role()
        .role_name(&role.name)
        .send()
        .await
        .map_err(|e| {
            gone(
                classify("GetRole", "iam:GetRole", &role.arn, e),
                &format!("role `{}`", role.name),
            )
        })?;
    let r = out.role();
    checked(
        role,
        r.map(|r| r.path()).unwrap_or("/"),
        r.map(|r| r.arn()).unwrap_or(&role.arn),
    )
}

/// The canonical reference of a role read at `path` and `arn`; a
/// service-linked role is refused.
fn checked(role: &RoleRef, path: &str, arn: &str) -> Result<RoleRef, ActionError> {
    if path.starts_with("/aws-service-role/") {
        return Err(ActionError::input(
            format!("role `{}` is service-linked and cannot be modified", role.name),
            "contain the function itself instead (reserved concurrency 0), or the service that owns the role",
        ));
    }
    Ok(RoleRef {
        name: role.name.clone(),
        arn: if arn.is_empty() {
            role.arn.clone()
        } else {
            arn.to_string()
        },
    })
}

pub async fn attached(aws: &Aws, role: &RoleRef) -> Result<Vec<String>, ActionError> {
    let mut out = Vec::new();
    let mut pages = aws
        .iam
        .list_attached_role_policies()
        .role_name(&role.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            gone(
                classify(
                    "ListAttachedRolePolicies",
                    "iam:ListAttachedRolePolicies",
                    &role.arn,
                    e,
                ),
                &format!("role `{}`", role.name),
            )
        })?;
        out.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
    }
    out.sort();
    Ok(out)
}

/// Every inline policy with its document (decoded), by name.
pub async fn inline(aws: &Aws, role: &RoleRef) -> Result<BTreeMap<String, Value>, ActionError> {
    let mut names = Vec::new();
    let mut pages = aws
        .iam
        .list_role_policies()
        .role_name(&role.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            gone(
                classify("ListRolePolicies", "iam:ListRolePolicies", &role.arn, e),
                &format!("role `{}`", role.name),
            )
        })?;
        names.extend(page.policy_names().iter().cloned());
    }
    // Side by side: each is a round trip the role's deny waits for.
    let docs =
        futures::future::try_join_all(names.iter().map(|n| inline_document(aws, role, n))).await?;
    Ok(names
        .into_iter()
        .zip(docs)
        .filter_map(|(name, doc)| doc.map(|d| (name, d)))
        .collect())
}

/// One inline policy's document; `None` when it does not exist.
pub async fn inline_document(
    aws: &Aws,
    role: &RoleRef,
    name: &str,
) -> Result<Option<Value>, ActionError> {
    match aws
        .iam
        .get_role_policy()
        .role_name(&role.name)
        .policy_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(Some(policy::decode(out.policy_document()))),
        Err(e) => {
            let e = classify("GetRolePolicy", "iam:GetRolePolicy", &role.arn, e);
            if e.kind == AwsErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e.into())
            }
        }
    }
}

/// The default version's document of a managed policy.
pub async fn managed_document(aws: &Aws, policy_arn: &str) -> Result<Value, ActionError> {
    let p = aws
        .iam
        .get_policy()
        .policy_arn(policy_arn)
        .send()
        .await
        .map_err(|e| classify("GetPolicy", "iam:GetPolicy", policy_arn, e))?;
    let version = p
        .policy()
        .and_then(|p| p.default_version_id())
        .unwrap_or("v1")
        .to_string();
    let v = aws
        .iam
        .get_policy_version()
        .policy_arn(policy_arn)
        .version_id(version)
        .send()
        .await
        .map_err(|e| classify("GetPolicyVersion", "iam:GetPolicyVersion", policy_arn, e))?;
    Ok(v.policy_version()
        .and_then(|v| v.document())
        .map(policy::decode)
        .unwrap_or(Value::Null))
}

/// Every function in the region whose execution role is `role` (the blast
/// radius of changing the role), from the run's function list: read once
/// per run, not once per target.
pub async fn functions_using(
    cx: &StepContext<'_>,
    role: &RoleRef,
) -> Result<Vec<String>, ActionError> {
    Ok(cx.run.functions(cx.aws).await?.using_role(&role.arn))
}

/// `functions_using`, or `None` while the run goes on without the
/// region's listing (`RunContext::functions_unless_deferred`).
pub async fn functions_using_unless_deferred(
    cx: &StepContext<'_>,
    role: &RoleRef,
) -> Result<Option<Vec<String>>, ActionError> {
    let listed = cx.run.functions_unless_deferred(cx.aws).await?;
    Ok(listed.map(|l| l.using_role(&role.arn)))
}

/// The role as the run's account-wide read holds it (planning's or
/// verification's), when it is in it (`role_index`).
async fn indexed(cx: &StepContext<'_>, role: &RoleRef) -> Option<super::role_index::IndexedRole> {
    super::role_index::for_step(cx)
        .await?
        .get(&role.name)
        .cloned()
}

/// `get`, `attached` and `inline` shared with the other planning reads of
/// this run (the quarantine and the evidence snapshot both read the role);
/// fresh when the context says so.
pub async fn get_planned(cx: &StepContext<'_>, role: &RoleRef) -> Result<RoleRef, ActionError> {
    if let Some(r) = indexed(cx, role).await {
        return checked(role, &r.path, &r.arn);
    }
    cx.shared_read(read_key("GetRole", role), get(cx.aws, role))
        .await
}

pub async fn attached_planned(
    cx: &StepContext<'_>,
    role: &RoleRef,
) -> Result<Vec<String>, ActionError> {
    if let Some(r) = indexed(cx, role).await {
        return Ok(r.attached);
    }
    cx.shared_read(
        read_key("ListAttachedRolePolicies", role),
        attached(cx.aws, role),
    )
    .await
}

pub async fn inline_planned(
    cx: &StepContext<'_>,
    role: &RoleRef,
) -> Result<BTreeMap<String, Value>, ActionError> {
    if let Some(r) = indexed(cx, role).await {
        return Ok(r.inline);
    }
    cx.shared_read(
        read_key("ListRolePolicies+GetRolePolicy", role),
        inline(cx.aws, role),
    )
    .await
}

/// The key of a role's shared read: its account and name, which name the
/// role whatever path its ARN was written with (a playbook may pass the
/// name, a function's configuration gives the ARN with its path), so the
/// reads of one role made from either are made once.
fn read_key(operation: &str, role: &RoleRef) -> String {
    let account = role.arn.split(':').nth(4).unwrap_or_default();
    format!("{operation} {account}:{}", role.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A role passed by name and the same role read from a function's
    /// configuration (its ARN with a path) share their planning reads;
    /// another account's role of the same name does not.
    #[test]
    fn a_roles_reads_are_keyed_by_account_and_name_whatever_its_path() {
        let caller = Caller {
            account: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:user/responder".into(),
        };
        let by_name = resolve("orders", &caller).expect("a name");
        let with_path = from_arn("arn:aws:iam::111122223333:role/service-role/team/orders");
        let elsewhere = from_arn("arn:aws:iam::444455556666:role/orders");
        assert_eq!(
            read_key("GetRole", &by_name),
            read_key("GetRole", &with_path)
        );
        assert_eq!(read_key("GetRole", &by_name), "GetRole 111122223333:orders");
        assert_ne!(
            read_key("GetRole", &by_name),
            read_key("GetRole", &elsewhere)
        );
    }

    #[test]
    fn role_values_are_names_or_role_arns() {
        for ok in [
            "lambda-exec",
            "a+b=c,d.e@f_g-h",
            "arn:aws:iam::123456789012:role/lambda-exec",
            "arn:aws:iam::123456789012:role/service-role/team/lambda-exec",
            "arn:aws-cn:iam::123456789012:role/x",
        ] {
            assert!(check_literal(&json!(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "admin role",
            "$(rm -rf /)",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::1234:role/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/a path/x",
        ] {
            assert!(check_literal(&json!(bad)).is_err(), "{bad:?}");
        }
        assert!(check_part("arn:aws:iam::").is_ok());
        assert!(check_part(":role/service-role/").is_ok());
        assert!(check_part(" --no-deny").is_err());
        assert!(check_name_part("ops-").is_ok());
        assert!(check_name_part("ops/").is_err());
    }
}
