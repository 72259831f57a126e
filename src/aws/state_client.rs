//! The S3 client of a shared incident-state store (`--state s3://…`).
//!
//! Built here like every client (same region, profile, endpoint and
//! credentials chain as the run's), but on purpose without the dry-run
//! guard and outside the call path:
//! - the state store is firebreak's own record of what it did, not a
//!   resource the playbook acts on: `plan` takes the incident's lease and
//!   writes its trail in S3 exactly as it does in a local directory;
//! - its requests are not the run's AWS work: they are not paced in the
//!   target account's quotas nor counted in the report's `api_calls`.
//!
//! SDK retries are off: the store retries in one place of its own
//! (`state::s3::objects`), because a conditional PUT whose answer was lost
//! must be told apart from one another writer won, which the SDK's blind
//! retry would report as a 412 of our own making.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

use super::{AwsError, AwsErrorKind, AwsSettings};

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(15))
        .operation_timeout(Duration::from_secs(20))
        .build()
}

pub async fn state_s3_client(settings: &AwsSettings) -> Result<aws_sdk_s3::Client, AwsError> {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts());
    if let Some(r) = &settings.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(p) = &settings.profile {
        loader = loader.profile_name(p);
    }
    if let Some(e) = &settings.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    let sdk = loader.load().await;
    state_s3_client_from(&sdk)
}

/// The same client from an SDK configuration built elsewhere (tests give
/// each LocalStack account its own credentials): retries off, the store's
/// timeouts, path-style addressing whenever an endpoint is set.
pub fn state_s3_client_from(sdk: &aws_types::SdkConfig) -> Result<aws_sdk_s3::Client, AwsError> {
    if sdk.region().is_none() {
        return Err(AwsError::new(
            "configure",
            "region",
            AwsErrorKind::InvalidRequest,
            "no AWS region is configured for the state bucket",
            "pass --region (e.g. --region us-east-1), or set AWS_REGION, or set a region in the profile",
        ));
    }
    Ok(aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts())
            // Path-style whenever an endpoint is given (LocalStack, an S3
            // compatible store): virtual-host names need DNS we cannot assume.
            .force_path_style(sdk.endpoint_url().is_some())
            .build(),
    ))
}
