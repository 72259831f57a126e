//! The dry-run guard and call recorder: one interceptor attached to every
//! client that `aws::Aws` builds, so no code path holds an unguarded client.
//!
//! The guard is an *allowlist* of read operations: an API we have never
//! heard of is treated as mutating and refused in dry-run. It runs in
//! `modify_before_serialization` because that is the first hook where a
//! client-level interceptor can see the operation name, and an error there
//! means nothing is serialized or sent.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

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
            "GetPolicy",
            "GetPolicyVersion",
            "GetRole",
            "GetRolePolicy",
            "GetUser",
            "ListAccessKeys",
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

/// One request as the recorder saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub mutating: bool,
    /// Refused by the guard: never serialized, never sent.
    pub refused: bool,
}

/// Counts every request per client set; tests and benchmarks read it.
#[derive(Debug, Default)]
pub struct CallRecorder {
    calls: Mutex<Vec<Call>>,
}

impl CallRecorder {
    fn push(&self, call: Call) {
        // A poisoned lock only means another thread panicked mid-push; the
        // list itself is still usable.
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.push(call);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests that actually went out.
    pub fn sent(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| !c.refused).collect()
    }

    pub fn mutating_sent(&self) -> Vec<Call> {
        self.sent().into_iter().filter(|c| c.mutating).collect()
    }

    pub fn refused(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.refused).collect()
    }
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
            self.recorder.push(Call {
                service: service.clone(),
                operation: op.clone(),
                mutating: true,
                refused: true,
            });
            return Err(Box::new(DryRunRefused {
                service,
                operation: op,
            }));
        }
        Ok(())
    }

    // Counted just before transmission (once per attempt), so the count is of
    // requests that really left the process.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = operation(cfg);
        let mutating = !is_read_operation(&service, &op);
        self.recorder.push(Call {
            service,
            operation: op,
            mutating,
            refused: false,
        });
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
        assert!(
            !is_read_operation("logs", "FilterLogEvents"),
            "a service not listed is all mutation"
        );
    }
}
