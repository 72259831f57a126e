//! Turning SDK errors into something a responder can act on.
//!
//! `Display` of an `SdkError` says only "service error"; this module reads
//! the error code, the HTTP status and the source chain, decides the kind
//! (and so whether a retry can help) in one place, and writes the fix.

use aws_smithy_runtime_api::http::Response as HttpResponse;
use std::error::Error as StdError;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;

use super::guard::DryRunRefused;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsErrorKind {
    NotFound,
    AccessDenied,
    Throttled,
    NoCredentials,
    EndpointUnreachable,
    Timeout,
    Conflict,
    InvalidRequest,
    DryRunRefused,
    ServiceUnavailable,
    Other,
}

impl AwsErrorKind {
    /// Only these are worth another attempt after a pause.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            AwsErrorKind::Throttled | AwsErrorKind::Timeout | AwsErrorKind::ServiceUnavailable
        )
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} on {target} failed: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub target: String,
    pub kind: AwsErrorKind,
    pub code: Option<String>,
    pub message: String,
    pub hint: String,
}

impl AwsError {
    pub fn new(
        operation: &'static str,
        target: impl Into<String>,
        kind: AwsErrorKind,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            target: target.into(),
            kind,
            code: None,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

fn chain_has<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

fn kind_of_code(code: &str, status: Option<u16>) -> AwsErrorKind {
    match code {
        "ResourceNotFoundException"
        | "NoSuchEntity"
        | "NoSuchKey"
        | "NoSuchBucket"
        | "NotFound" => AwsErrorKind::NotFound,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "SignatureDoesNotMatch" => AwsErrorKind::AccessDenied,
        "TooManyRequestsException"
        | "ThrottlingException"
        | "Throttling"
        | "RequestLimitExceeded"
        | "SlowDown" => AwsErrorKind::Throttled,
        "ResourceConflictException"
        | "ResourceInUseException"
        | "ConcurrentModification"
        | "PreconditionFailed"
        | "ConditionalRequestConflict" => AwsErrorKind::Conflict,
        "InvalidParameterValueException"
        | "ValidationException"
        | "InvalidRequestContentException"
        | "LimitExceeded"
        | "LimitExceededException" => AwsErrorKind::InvalidRequest,
        "ServiceException" | "ServiceUnavailable" | "InternalFailure" => {
            AwsErrorKind::ServiceUnavailable
        }
        _ => match status {
            Some(429) => AwsErrorKind::Throttled,
            Some(403) => AwsErrorKind::AccessDenied,
            Some(404) => AwsErrorKind::NotFound,
            Some(s) if s >= 500 => AwsErrorKind::ServiceUnavailable,
            _ => AwsErrorKind::Other,
        },
    }
}

fn hint_for(kind: AwsErrorKind, operation: &str, iam_action: &str) -> String {
    match kind {
        AwsErrorKind::NotFound => "check the name or ARN, the region (--region) and the account the credentials belong to".into(),
        AwsErrorKind::AccessDenied => format!(
            "the caller lacks permission for {iam_action} (or its credentials are invalid); grant it to the responder role (see docs/actions.md) or use --profile with a role that has it"
        ),
        AwsErrorKind::Throttled => "AWS is throttling this account; firebreak already backed off and retried; re-run the same command to resume, nothing is repeated".into(),
        AwsErrorKind::NoCredentials => "no AWS credentials were found: set AWS_PROFILE or pass --profile, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (for LocalStack any 12-digit key id works, e.g. `test`)".into(),
        AwsErrorKind::EndpointUnreachable => "the endpoint did not answer: check --endpoint-url / AWS_ENDPOINT_URL and the network; for LocalStack run `localstack/start.sh`".into(),
        AwsErrorKind::Timeout => "the call timed out; re-run the same command to resume, nothing is repeated".into(),
        AwsErrorKind::Conflict => "the resource is being changed by something else right now; wait a moment and re-run".into(),
        AwsErrorKind::InvalidRequest => format!("AWS rejected the {operation} request; check the playbook values for this step"),
        AwsErrorKind::DryRunRefused => "this is a bug in firebreak: plan mode attempted a write; please report it".into(),
        AwsErrorKind::ServiceUnavailable => "AWS answered with a server error; re-run the same command to resume".into(),
        AwsErrorKind::Other => "see the message above".into(),
    }
}

/// Classifies an SDK error of any service (every service's `SdkError` has
/// the same shape; the Lambda crate's re-exports are used for the traits).
pub fn classify<E>(
    operation: &'static str,
    iam_action: &str,
    target: impl Into<String>,
    err: SdkError<E, HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let target = target.into();
    let (kind, code, message) = match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let status = Some(se.raw().status().as_u16());
            let code = e.code().map(str::to_string);
            let kind = code
                .as_deref()
                .map_or_else(|| kind_of_code("", status), |c| kind_of_code(c, status));
            let msg = e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| chain_text(&err));
            let msg = match &code {
                Some(c) => format!("{c}: {msg}"),
                None => msg,
            };
            (kind, code, msg)
        }
        SdkError::TimeoutError(_) => (AwsErrorKind::Timeout, None, "the request timed out".into()),
        SdkError::DispatchFailure(d) => {
            let text = chain_text(&err);
            if d.is_timeout() {
                (AwsErrorKind::Timeout, None, text)
            } else if is_credentials_problem(&text) {
                (
                    AwsErrorKind::NoCredentials,
                    None,
                    "no usable AWS credentials".into(),
                )
            } else if d.is_io() {
                (
                    AwsErrorKind::EndpointUnreachable,
                    None,
                    format!("could not connect: {text}"),
                )
            } else {
                (AwsErrorKind::Other, None, text)
            }
        }
        SdkError::ConstructionFailure(_) => {
            if let Some(r) = chain_has::<DryRunRefused>(&err) {
                (AwsErrorKind::DryRunRefused, None, r.to_string())
            } else {
                let text = chain_text(&err);
                if is_credentials_problem(&text) {
                    (
                        AwsErrorKind::NoCredentials,
                        None,
                        "no usable AWS credentials".into(),
                    )
                } else {
                    (AwsErrorKind::Other, None, text)
                }
            }
        }
        _ => {
            let text = chain_text(&err);
            if is_credentials_problem(&text) {
                (
                    AwsErrorKind::NoCredentials,
                    None,
                    "no usable AWS credentials".into(),
                )
            } else {
                (AwsErrorKind::Other, None, text)
            }
        }
    };
    AwsError {
        operation,
        target,
        kind,
        code,
        hint: hint_for(kind, operation, iam_action),
        message,
    }
}

/// An error and its sources in words, outermost first. Unlike the SDK's
/// `DisplayErrorContext`, which ends with the error's `Debug` dump, this
/// is fit for a responder's terminal.
pub fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        // Wrappers often repeat their source's message; say it once.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn is_credentials_problem(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("credentials")
        && (t.contains("no ")
            || t.contains("not loaded")
            || t.contains("failed to load")
            || t.contains("provider"))
}

/// Whether an error is the dry-run guard refusing a write.
pub fn is_dry_run_refusal(err: &(dyn StdError + 'static)) -> bool {
    chain_has::<DryRunRefused>(err).is_some()
}

#[cfg(test)]
mod tests {

    #[test]
    fn chain_text_has_no_debug_dump() {
        #[derive(Debug, thiserror::Error)]
        #[error("connection closed before message completed")]
        struct Inner;
        #[derive(Debug, thiserror::Error)]
        #[error("dispatch failure")]
        struct Outer(#[source] Inner);
        let text = chain_text(&Outer(Inner));
        assert_eq!(
            text,
            "dispatch failure: connection closed before message completed"
        );
        assert!(!text.contains("Outer") && !text.contains('{'));
    }

    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(
            kind_of_code("TooManyRequestsException", Some(429)),
            AwsErrorKind::Throttled
        );
        assert_eq!(
            kind_of_code("AccessDeniedException", Some(403)),
            AwsErrorKind::AccessDenied
        );
        assert_eq!(
            kind_of_code("Weird", Some(503)),
            AwsErrorKind::ServiceUnavailable
        );
        assert!(AwsErrorKind::Throttled.retryable());
        assert!(!AwsErrorKind::AccessDenied.retryable());
    }
}
