//! The dry-run guard and call counter: one interceptor attached to every
//! client that `aws::Aws` builds, so no code path holds an unguarded client.
//!
//! The guard is an *allowlist* of read operations: an API we have never
//! heard of is treated as mutating and refused in dry-run. It runs in
//! `modify_before_serialization` because that is the first hook where a
//! client-level interceptor can see the operation name, and an error there
//! means nothing is serialized or sent.

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

pub use super::call_path::{Call, CallRecorder};

/// Operations that only read. Everything else is a mutation.
const READ_OPERATIONS: &[(&str, &[&str])] = &[
    (
        "lambda",
        &[
            "GetAccountSettings",
            "GetAlias",
            "GetEventSourceMapping",
            "GetFunction",
            "GetFunctionCodeSigningConfig",
            "GetFunctionConcurrency",
            "GetFunctionConfiguration",
            "GetFunctionEventInvokeConfig",
            "GetFunctionRecursionConfig",
            "GetFunctionUrlConfig",
            "GetLayerVersion",
            "GetLayerVersionByArn",
            "GetPolicy",
            "GetProvisionedConcurrencyConfig",
            "GetRuntimeManagementConfig",
            "ListAliases",
            "ListEventSourceMappings",
            "ListFunctionUrlConfigs",
            "ListFunctions",
            "ListLayerVersions",
            "ListLayers",
            "ListProvisionedConcurrencyConfigs",
            "ListTags",
            "ListVersionsByFunction",
        ],
    ),
    (
        "iam",
        &[
            "GetAccountAuthorizationDetails",
            "GetPolicy",
            "GetPolicyVersion",
            "GetRole",
            "GetRolePolicy",
            "GetUser",
            "ListAccessKeys",
            "ListUserPolicies",
            "ListAttachedRolePolicies",
            "ListRolePolicies",
            "ListRoleTags",
            "ListRoles",
        ],
    ),
    (
        "cloudtrail",
        &[
            "DescribeTrails",
            "GetEventSelectors",
            "GetTrail",
            "GetTrailStatus",
            "ListTrails",
            "LookupEvents",
        ],
    ),
    (
        "s3",
        &[
            "GetBucketVersioning",
            "GetObject",
            "GetObjectAttributes",
            "GetObjectLockConfiguration",
            "GetObjectRetention",
            "HeadBucket",
            "HeadObject",
            "ListObjectVersions",
            "ListObjectsV2",
        ],
    ),
    (
        "cloudwatch logs",
        &[
            "DescribeLogGroups",
            "DescribeLogStreams",
            "FilterLogEvents",
            "GetLogEvents",
        ],
    ),
    // GetSecretValue reads a value (into `SecretValue` only): rotation
    // checks that the key is usable and rewrites JSON keys from it.
    (
        "secrets manager",
        &[
            "DescribeSecret",
            "GetSecretValue",
            "ListSecretVersionIds",
            "ListSecrets",
        ],
    ),
    (
        "ssm",
        &[
            "DescribeParameters",
            "GetParameter",
            "GetParameterHistory",
            "GetParameters",
            "GetParametersByPath",
        ],
    ),
    // The event path's re-read of alarms and findings.
    ("cloudwatch", &["DescribeAlarmHistory", "DescribeAlarms"]),
    ("guardduty", &["GetFindings", "ListDetectors"]),
    ("securityhub", &["GetFindings"]),
    // Baselines and indicators of compromise: the rules that target a function.
    (
        "eventbridge",
        &[
            "DescribeRule",
            "ListRuleNamesByTarget",
            "ListRules",
            "ListTargetsByRule",
        ],
    ),
    // AssumeRole changes nothing in the account; dry-run needs it to read
    // another account.
    ("sts", &["GetCallerIdentity", "AssumeRole"]),
];

/// Whether `operation` of `service` only reads.
pub fn is_read_operation(service: &str, operation: &str) -> bool {
    let service = service.to_ascii_lowercase();
    READ_OPERATIONS
        .iter()
        .any(|(s, ops)| *s == service && ops.contains(&operation))
}

/// The error a guarded client returns for a mutation in dry-run. It reaches
/// callers inside `SdkError::ConstructionFailure`; `aws::error` downcasts it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("dry-run refused {service}:{operation}: plan mode never changes anything")]
pub struct DryRunRefused {
    pub service: String,
    pub operation: String,
}

#[derive(Debug, Clone)]
pub struct Guard {
    pub dry_run: bool,
    pub recorder: Arc<CallRecorder>,
}

fn operation(cfg: &ConfigBag) -> (String, String) {
    match cfg.load::<Metadata>() {
        Some(m) => (m.service().to_ascii_lowercase(), m.name().to_string()),
        None => ("unknown".into(), "unknown".into()),
    }
}

impl Intercept for Guard {
    fn name(&self) -> &'static str {
        "firebreak-dry-run-guard"
    }

    fn modify_before_serialization(
        &self,
        _context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = operation(cfg);
        if self.dry_run && !is_read_operation(&service, &op) {
            self.recorder.record_refused(&service, &op);
            return Err(Box::new(DryRunRefused {
                service,
                operation: op,
            }));
        }
        Ok(())
    }

    // Counted just before transmission (once per attempt), so the count is of
    // requests that really left the process. Here rather than in the
    // connector because recorded-response tests replace the HTTP layer;
    // re-sends the connector makes on its own are counted there.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = operation(cfg);
        let mutating = !is_read_operation(&service, &op);
        self.recorder.record_sent(&service, &op, mutating);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_operations_count_as_mutations() {
        assert!(is_read_operation("Lambda", "GetFunction"));
        assert!(!is_read_operation("lambda", "PutFunctionConcurrency"));
        assert!(!is_read_operation("lambda", "Invoke"));
        assert!(!is_read_operation("lambda", "SomeFutureApi"));
        assert!(is_read_operation("iam", "GetRole"));
        assert!(!is_read_operation("iam", "PutRolePolicy"));
        assert!(is_read_operation("s3", "GetObject"));
        assert!(!is_read_operation("s3", "PutObject"));
        assert!(!is_read_operation("s3", "DeleteObject"));
        assert!(is_read_operation("cloudtrail", "LookupEvents"));
        assert!(!is_read_operation("cloudtrail", "StopLogging"));
        assert!(!is_read_operation("cloudtrail", "DeleteTrail"));
        assert!(is_read_operation("Secrets Manager", "DescribeSecret"));
        assert!(!is_read_operation("Secrets Manager", "PutSecretValue"));
        assert!(!is_read_operation("Secrets Manager", "RotateSecret"));
        assert!(is_read_operation("SSM", "GetParameterHistory"));
        assert!(!is_read_operation("SSM", "PutParameter"));
        assert!(
            !is_read_operation("logs", "FilterLogEvents"),
            "a service not listed is all mutation"
        );
    }
}
