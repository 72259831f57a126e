//! `firebreak permissions`: the least-privilege IAM policy for running
//! playbooks, by hand or as a responder under routes.
//!
//! What is allowed comes from what each step's action declares
//! (`ActionSpec::iam_actions`, each list proven against LocalStack by
//! tests/integration/iam_declared.rs) plus what the responder itself calls
//! (the re-read of alarms and findings, the queue, notices, assumed roles,
//! the shared state). Where it is allowed comes from the scope: with
//! routes, the allowed accounts, regions and function globs, the params
//! each route fixes (the forensic bucket, the users) and the phases it
//! runs (never `recover`); without them, any account and region.

mod args;
mod document;
mod grants;
mod scope;

use std::path::Path;

use serde_json::{Map, Value};

pub use document::{
    check_document, Condition, Grant, Policy, Statement, MAX_INLINE_ROLE_POLICY, MAX_MANAGED_POLICY,
};
pub use grants::UNSCOPED;
pub use scope::{iam_pattern, Place, Scope};

use crate::playbook::{Phase, Playbook};
use crate::respond::routes::EventSource;
use crate::respond::Routes;
use crate::state::S3Location;

/// A playbook covered whole: every phase, with the params given (any
/// other param may take any value).
pub struct Whole<'a> {
    pub playbook: &'a Playbook,
    pub params: Map<String, Value>,
}

/// What the policy is for.
#[derive(Default)]
pub struct Request<'a> {
    /// Playbooks run by hand (`plan`, `run`, `recover`). A playbook that a
    /// route names is covered as the routes run it instead.
    pub playbooks: Vec<Whole<'a>>,
    /// The responder's routes: their playbooks, their scope and what the
    /// responder itself calls.
    pub routes: Option<&'a Routes>,
    /// Shared incident state (`--state s3://BUCKET/PREFIX`).
    pub state: Option<&'a S3Location>,
    /// The queue `watch` or the Lambda responder consumes: an ARN, or a
    /// name taken to be in each allowed account and region.
    pub queue: Option<&'a str>,
    /// The region, when no routes name the allowed ones.
    pub region: Option<&'a str>,
}

/// The policy `req` needs.
pub fn policy(req: &Request<'_>) -> Policy {
    let scope = match req.routes {
        Some(r) => Scope::of_routes(r),
        None => Scope::anywhere(req.region),
    };
    // Every command asks STS who it is first. AWS answers that even under
    // an explicit deny; it is listed so that the policy says so.
    let mut grants = vec![Grant::new(
        "Identity",
        "sts:GetCallerIdentity",
        ["*".to_string()],
    )];
    for w in &req.playbooks {
        if req.routes.is_some_and(|r| routed(r, w.playbook)) {
            continue;
        }
        grants.extend(playbook_grants(w.playbook, &Phase::ALL, &w.params, &scope));
    }
    if let Some(routes) = req.routes {
        for route in &routes.routes {
            grants.extend(playbook_grants(
                &route.playbook,
                &route.phases,
                &route.params,
                &scope,
            ));
        }
        grants.extend(responder_grants(routes, &scope));
    }
    if req.routes.is_some() || req.queue.is_some() {
        grants.extend(queue_grants(req.queue, &scope));
    }
    if let Some(state) = req.state {
        grants.extend(state_grants(state, &scope));
    }
    Policy::from_grants(grants, ORDER)
}

/// The order statements are printed in: the responder's own calls, then
/// containment (Lambda, IAM), then evidence, then secrets.
const ORDER: &[&str] = &[
    "Identity",
    "ReadAlarms",
    "ReadGuardDutyDetectors",
    "ReadGuardDutyFindings",
    "ReadSecurityHubFindings",
    "ConsumeQueue",
    "NotifyTopics",
    "AssumeTargetRoles",
    "StateBucket",
    "StateObjects",
    "LambdaFunctions",
    "LambdaList",
    "LambdaEventSourceMappings",
    "LambdaLayers",
    "IamRoles",
    "IamPolicies",
    "IamUsers",
    "ForensicBucket",
    "ForensicObjects",
    "ForensicBucketRole",
    "LogGroupsList",
    "LogGroups",
    "CloudTrailLookup",
    "TrailBucket",
    "TrailObjects",
    "SecretsList",
    "Secrets",
    "KmsViaSecretsManager",
    "ParametersList",
    "Parameters",
    "KmsViaSsm",
];

/// Whether a route runs this playbook (the same file).
fn routed(routes: &Routes, playbook: &Playbook) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mine = canonical(&playbook.source.path);
    routes
        .routes
        .iter()
        .any(|r| canonical(&r.playbook.source.path) == mine)
}

/// What the steps of `phases` need, with `known` params.
fn playbook_grants(
    playbook: &Playbook,
    phases: &[Phase],
    known: &Map<String, Value>,
    scope: &Scope,
) -> Vec<Grant> {
    let mut out = Vec::new();
    for step in playbook.steps_in(phases) {
        let a = args::StepArgs { step, known, scope };
        if a.skipped() {
            continue;
        }
        let spec = step.action.spec();
        for action in spec.iam_actions {
            out.extend(grants::for_action(action, spec, &a));
        }
    }
    out
}

/// What the responder calls beyond the playbooks: the re-read of the
/// events' source of truth, notices, and the roles it assumes.
fn responder_grants(routes: &Routes, scope: &Scope) -> Vec<Grant> {
    let mut out = Vec::new();
    for route in &routes.routes {
        match route.matches.source {
            EventSource::CloudWatchAlarm => {
                let alarm = route
                    .matches
                    .alarm
                    .as_ref()
                    .map_or_else(|| "*".to_string(), |p| iam_pattern(p.as_str()));
                out.push(Grant::new(
                    "ReadAlarms",
                    "cloudwatch:DescribeAlarms",
                    scope.arns("cloudwatch", &format!("alarm:{alarm}")),
                ));
            }
            EventSource::GuardDuty => {
                out.push(Grant::new(
                    "ReadGuardDutyDetectors",
                    "guardduty:ListDetectors",
                    ["*".to_string()],
                ));
                out.push(Grant::new(
                    "ReadGuardDutyFindings",
                    "guardduty:GetFindings",
                    scope.arns("guardduty", "detector/*"),
                ));
            }
            EventSource::SecurityHub => out.push(Grant::new(
                "ReadSecurityHubFindings",
                "securityhub:GetFindings",
                scope.arns("securityhub", "hub/default"),
            )),
        }
        if let Some(topic) = &route.notify {
            out.push(Grant::new("NotifyTopics", "sns:Publish", [topic.clone()]));
        }
        if !route.assume_role.is_empty() {
            out.push(Grant::new(
                "AssumeTargetRoles",
                "sts:AssumeRole",
                route.assume_role.values().cloned(),
            ));
        }
    }
    out
}

/// Consuming the queue: `watch` long-polls, extends and deletes; the
/// Lambda event source mapping receives and deletes with the function's
/// role.
fn queue_grants(queue: Option<&str>, scope: &Scope) -> Vec<Grant> {
    let arns = match queue {
        Some(arn) if arn.starts_with("arn:") => vec![arn.to_string()],
        Some(name) => scope.arns("sqs", name),
        None => scope.arns("sqs", "*"),
    };
    [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    ]
    .into_iter()
    .map(|a| Grant::new("ConsumeQueue", a, arns.clone()))
    .collect()
}

/// The shared state under `s3://BUCKET/PREFIX` (docs/architecture.md):
/// read and create objects under the prefix, list only the prefix. No
/// delete: records are never removed and a lock is released by overwrite.
fn state_grants(state: &S3Location, scope: &Scope) -> Vec<Grant> {
    let objects = if state.prefix.is_empty() {
        format!("{}/*", state.bucket)
    } else {
        format!("{}/{}/*", state.bucket, state.prefix)
    };
    let mut out: Vec<Grant> = ["s3:GetObject", "s3:PutObject"]
        .into_iter()
        .map(|a| Grant::new("StateObjects", a, scope.bare_arns("s3", &objects)))
        .collect();
    let list = Grant::new(
        "StateBucket",
        "s3:ListBucket",
        scope.bare_arns("s3", &state.bucket),
    );
    out.push(if state.prefix.is_empty() {
        list
    } else {
        list.when(
            "StringLike",
            "s3:prefix",
            vec![format!("{}/*", state.prefix)],
        )
    });
    out
}

#[cfg(test)]
mod tests;
