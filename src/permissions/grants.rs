//! From one IAM action an action declares to the resources it is needed
//! on, given the step's arguments and the scope.
//!
//! The IAM actions come from `ActionSpec::iam_actions` (proven against
//! LocalStack by tests/integration/iam_declared.rs); this file only says
//! *where* each is used. Resources follow the arguments by name, whatever
//! the action: `bucket` is the forensic bucket, `bucket_role` the role
//! assumed to write it, `trail_bucket`/`trail_prefix` a trail's log files,
//! `users` the IAM users, `log_group` the log group, `function` the
//! function. An IAM action this file does not know is allowed on `*`
//! under the Sid `Unscoped`, and a test fails until it is placed.

use super::args::{Arg, StepArgs};
use super::document::Grant;
use crate::action::spec::ActionSpec;

/// The Sid of a grant no rule here scopes.
pub const UNSCOPED: &str = "Unscoped";

pub fn for_action(action: &str, spec: &ActionSpec, a: &StepArgs<'_>) -> Vec<Grant> {
    let scope = a.scope;
    let one = |sid: &'static str, resources: Vec<String>| vec![Grant::new(sid, action, resources)];
    match action {
        // Lambda operations without resource-level permissions.
        "lambda:ListFunctions" | "lambda:ListEventSourceMappings" => {
            one("LambdaList", vec!["*".into()])
        }
        "lambda:GetEventSourceMapping" | "lambda:UpdateEventSourceMapping" => one(
            "LambdaEventSourceMappings",
            scope.arns("lambda", "event-source-mapping:*"),
        ),
        // Layers may be published by any account (public layers).
        "lambda:GetLayerVersion" => one("LambdaLayers", {
            let mut any_account = scope.clone();
            for p in &mut any_account.places {
                p.account = "*".into();
            }
            let mut arns = any_account.arns("lambda", "layer:*:*");
            arns.dedup();
            arns
        }),
        // The attacker's other functions on the role are found while the
        // step runs: any function in scope may be throttled.
        "lambda:GetFunctionConcurrency"
        | "lambda:PutFunctionConcurrency"
        | "lambda:DeleteFunctionConcurrency"
            if spec.name == "lambda.contain_rogue_functions" =>
        {
            one("LambdaRogueFunctions", scope.arns("lambda", "function:*"))
        }
        a_ if a_.starts_with("lambda:") => one("LambdaFunctions", function_arns(a)),

        // The EventBridge rules (default bus) that fire a function.
        "events:ListRuleNamesByTarget"
        | "events:DescribeRule"
        | "events:DisableRule"
        | "events:EnableRule" => one("EventRules", scope.arns("events", "rule/*")),

        "iam:GetRole"
        | "iam:ListAttachedRolePolicies"
        | "iam:ListRolePolicies"
        | "iam:GetRolePolicy"
        | "iam:PutRolePolicy"
        | "iam:DeleteRolePolicy"
        | "iam:DetachRolePolicy"
        | "iam:AttachRolePolicy" => one("IamRoles", scope.global_arns("iam", "role/*")),
        // Account-wide and read-only, with no resource to scope it to:
        // verifying many quarantined roles reads them all at once
        // (`iam::role_index`). Optional: without it each role is read.
        "iam:GetAccountAuthorizationDetails" => one("IamAccountRoles", vec!["*".to_string()]),
        // Customer managed policies, and AWS managed ones.
        "iam:GetPolicy" | "iam:GetPolicyVersion" => one("IamPolicies", {
            let mut arns = scope.global_arns("iam", "policy/*");
            for p in scope.partitions() {
                arns.push(format!("arn:{p}:iam::aws:policy/*"));
            }
            arns
        }),
        "iam:ListAccessKeys" | "iam:UpdateAccessKey" => match a.arg("users") {
            // No users, no call.
            Arg::Values(users) if users.is_empty() => Vec::new(),
            Arg::Values(users) => one(
                "IamUsers",
                users
                    .iter()
                    .flat_map(|u| {
                        // A user with a path has `user/PATH/NAME`.
                        scope
                            .global_arns("iam", &format!("user/{u}"))
                            .into_iter()
                            .chain(scope.global_arns("iam", &format!("user/*/{u}")))
                    })
                    .collect(),
            ),
            Arg::Absent => one("IamUsers", scope.global_arns("iam", "user/*")),
        },

        // Evidence actions assume `bucket_role` only when it is given.
        "sts:AssumeRole" => match a.arg("bucket_role") {
            Arg::Absent => Vec::new(),
            Arg::Values(roles) => one(
                "ForensicBucketRole",
                roles
                    .into_iter()
                    .flat_map(|r| role_arns(r, scope))
                    .collect(),
            ),
        },
        "sts:GetCallerIdentity" => one("Identity", vec!["*".into()]),

        "s3:ListBucket" => {
            let mut g = one("ForensicBucket", buckets(a, "bucket", ""));
            g.extend(one("TrailBucket", buckets(a, "trail_bucket", "")));
            g
        }
        "s3:GetBucketObjectLockConfiguration" => one("ForensicBucket", buckets(a, "bucket", "")),
        "s3:GetObject" => {
            let mut g = one("ForensicObjects", buckets(a, "bucket", "/*"));
            g.extend(one("TrailObjects", trail_objects(a)));
            g
        }
        "s3:PutObject" | "s3:PutObjectRetention" => {
            one("ForensicObjects", buckets(a, "bucket", "/*"))
        }

        "logs:DescribeLogGroups" => one("LogGroupsList", scope.arns("logs", "log-group:*")),
        "logs:FilterLogEvents" => one("LogGroups", log_groups(a)),

        "cloudtrail:LookupEvents" => one("CloudTrailLookup", vec!["*".into()]),

        "secretsmanager:ListSecrets" => one("SecretsList", vec!["*".into()]),
        a_ if a_.starts_with("secretsmanager:") => {
            one("Secrets", scope.arns("secretsmanager", "secret:*"))
        }
        "ssm:DescribeParameters" => one("ParametersList", vec!["*".into()]),
        a_ if a_.starts_with("ssm:") => one("Parameters", scope.arns("ssm", "parameter/*")),

        // KMS is asked by Secrets Manager or SSM on the caller's behalf:
        // only through the service the action itself uses.
        a_ if a_.starts_with("kms:") => {
            let keys = scope.arns("kms", "key/*");
            let via = |service: &str| -> Vec<String> {
                scope
                    .regions()
                    .into_iter()
                    .map(|r| format!("{service}.{r}.amazonaws.com"))
                    .collect()
            };
            let uses = |prefix: &str| spec.iam_actions.iter().any(|x| x.starts_with(prefix));
            let mut g = Vec::new();
            if uses("secretsmanager:") {
                g.push(
                    Grant::new("KmsViaSecretsManager", action, keys.clone()).when(
                        "StringLike",
                        "kms:ViaService",
                        via("secretsmanager"),
                    ),
                );
            }
            if uses("ssm:") {
                g.push(Grant::new("KmsViaSsm", action, keys.clone()).when(
                    "StringLike",
                    "kms:ViaService",
                    via("ssm"),
                ));
            }
            if g.is_empty() {
                g.push(Grant::new(UNSCOPED, action, ["*".to_string()]));
            }
            g
        }
        _ => one(UNSCOPED, vec!["*".into()]),
    }
}

/// The step's functions, unqualified and with every qualifier.
fn function_arns(a: &StepArgs<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for f in a.functions() {
        out.extend(a.scope.arns("lambda", &format!("function:{f}")));
        // `NAME*` already matches `NAME:QUALIFIER`; a plain name does not.
        if !f.ends_with('*') {
            out.extend(a.scope.arns("lambda", &format!("function:{f}:*")));
        }
    }
    out
}

/// `arn:PARTITION:s3:::BUCKET{suffix}` for the buckets an argument names.
fn buckets(a: &StepArgs<'_>, arg: &str, suffix: &str) -> Vec<String> {
    match a.arg(arg) {
        Arg::Absent => Vec::new(),
        Arg::Values(names) => names
            .iter()
            .flat_map(|b| a.scope.bare_arns("s3", &format!("{b}{suffix}")))
            .collect(),
    }
}

/// A trail's log files: `[PREFIX/]AWSLogs/...` in its bucket.
fn trail_objects(a: &StepArgs<'_>) -> Vec<String> {
    let prefixes = match a.arg("trail_prefix") {
        Arg::Values(p) if !p.is_empty() => p
            .into_iter()
            .map(|p| {
                let p = p.trim_matches('/');
                if p.is_empty() {
                    "AWSLogs/*".to_string()
                } else {
                    format!("{p}/AWSLogs/*")
                }
            })
            .collect(),
        _ => vec!["AWSLogs/*".to_string()],
    };
    let mut out = Vec::new();
    for p in prefixes {
        out.extend(buckets(a, "trail_bucket", &format!("/{p}")));
    }
    out
}

/// The log groups the step reads: its `log_group`, or the functions'
/// default groups `/aws/lambda/NAME`.
fn log_groups(a: &StepArgs<'_>) -> Vec<String> {
    let groups = match a.arg("log_group") {
        Arg::Values(g) => g,
        Arg::Absent => a
            .functions()
            .into_iter()
            .map(|f| format!("/aws/lambda/{f}"))
            .collect(),
    };
    groups
        .iter()
        .flat_map(|g| a.scope.arns("logs", &format!("log-group:{g}:*")))
        .collect()
}

fn role_arns(role: String, scope: &super::scope::Scope) -> Vec<String> {
    if role.starts_with("arn:") {
        vec![role]
    } else {
        // Not an ARN: only an unknown value (`*`) gets here, since
        // validation requires `bucket_role` to be an ARN. The forensic
        // account is another account: any.
        scope
            .partitions()
            .into_iter()
            .map(|p| format!("arn:{p}:iam::*:role/*"))
            .collect()
    }
}
