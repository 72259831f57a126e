//! The one place AWS clients are built.
//!
//! Region, profile, endpoint, timeouts, retries, the dry-run guard and the
//! call recorder are attached here and nowhere else, so no code path can hold
//! an unguarded client.

pub mod error;
pub mod guard;
pub mod pace;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use serde::{Deserialize, Serialize};

pub use error::{AwsError, AwsErrorKind};
pub use guard::{CallRecorder, DryRunRefused, Guard};

/// How to reach AWS, from the global flags.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// Refuse every mutating operation at the SDK layer.
    pub dry_run: bool,
}

/// Who is acting: recorded in every audit line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub account: String,
    pub arn: String,
}

/// The clients of one run, all guarded by the same interceptor.
#[derive(Debug, Clone)]
pub struct Aws {
    pub lambda: aws_sdk_lambda::Client,
    /// For verification probes: no retries, short timeouts, so that "Invoke
    /// is throttled" is observed once rather than retried into a success.
    pub lambda_probe: aws_sdk_lambda::Client,
    pub sts: aws_sdk_sts::Client,
    pub iam: aws_sdk_iam::Client,
    /// Path-style addressing when an endpoint is given (LocalStack, S3
    /// compatible stores): virtual-host names need DNS we cannot assume.
    pub s3: aws_sdk_s3::Client,
    /// CloudWatch Logs: read-only here (FilterLogEvents, DescribeLogGroups).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// Without SDK retries: LookupEvents is paced and backed off in one
    /// place (`action::cloudtrail::lookup`), not twice.
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub region: String,
    pub endpoint_url: Option<String>,
    pub dry_run: bool,
    pub calls: Arc<CallRecorder>,
    /// Forensic buckets already opened by this run (see
    /// `action::evidence::open_store`): one HeadBucket, Object Lock lookup
    /// and AssumeRole per bucket, not per written object.
    pub forensic_stores: Arc<crate::evidence::store::StoreCache>,
}

impl Aws {
    pub async fn connect(settings: &AwsSettings) -> Result<Self, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(90))
                    .build(),
            );
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
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            AwsError::new(
                "configure",
                "region",
                AwsErrorKind::InvalidRequest,
                "no AWS region is configured",
                "pass --region (e.g. --region us-east-1), or set AWS_REGION, or set a region in the profile",
            )
        })?;
        Ok(Self::from_sdk_config(&sdk, region, settings))
    }

    /// Builds the clients from an SDK config (tests pass their own).
    pub fn from_sdk_config(
        sdk: &aws_types::SdkConfig,
        region: String,
        settings: &AwsSettings,
    ) -> Self {
        let calls = Arc::new(CallRecorder::default());
        let guard = Guard {
            dry_run: settings.dry_run,
            recorder: calls.clone(),
        };
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .build(),
        );
        let lambda_probe = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(sdk)
                .retry_config(RetryConfig::disabled())
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(3))
                        .operation_timeout(Duration::from_secs(15))
                        .build(),
                )
                .interceptor(guard.clone())
                .build(),
        );
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .build(),
        );
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .build(),
        );
        let cloudtrail = aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(sdk)
                .retry_config(RetryConfig::disabled())
                .interceptor(guard.clone())
                .build(),
        );
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(settings.endpoint_url.is_some() || sdk.endpoint_url().is_some())
                .interceptor(guard.clone())
                .build(),
        );
        let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::from(sdk)
                .interceptor(guard)
                .build(),
        );
        Self {
            lambda,
            lambda_probe,
            sts,
            iam,
            s3,
            logs,
            cloudtrail,
            region,
            endpoint_url: settings.endpoint_url.clone(),
            dry_run: settings.dry_run,
            calls,
            forensic_stores: Arc::default(),
        }
    }

    /// Assembles clients built elsewhere (tests with recorded responses).
    /// Callers must attach `guard` to each client themselves.
    pub fn from_clients(
        lambda: aws_sdk_lambda::Client,
        lambda_probe: aws_sdk_lambda::Client,
        sts: aws_sdk_sts::Client,
        iam: aws_sdk_iam::Client,
        region: &str,
        guard: &Guard,
    ) -> Self {
        // No recorded S3 responses yet: an S3 client without credentials
        // fails loudly if a test ever reaches it.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::new()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(Region::new(region.to_string()))
                .interceptor(guard.clone())
                .build(),
        );
        let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::new()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(Region::new(region.to_string()))
                .interceptor(guard.clone())
                .build(),
        );
        // Likewise: tests with recorded CloudTrail responses replace it.
        let cloudtrail = aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::new()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(Region::new(region.to_string()))
                .interceptor(guard.clone())
                .build(),
        );
        Self {
            lambda,
            lambda_probe,
            sts,
            iam,
            s3,
            logs,
            cloudtrail,
            region: region.to_string(),
            endpoint_url: None,
            dry_run: guard.dry_run,
            calls: guard.recorder.clone(),
            forensic_stores: Arc::default(),
        }
    }

    /// An S3 client acting as `role_arn` (a forensic bucket in a separate
    /// account): STS AssumeRole with the run's credentials, then the same
    /// endpoint, timeouts, retries and dry-run guard as `self.s3`. The
    /// temporary credentials live in the client only; never shown.
    /// Returns the client and the identity it acts as (GetCallerIdentity
    /// with the new credentials), which plans and manifests name.
    pub async fn s3_assuming(
        &self,
        role_arn: &str,
        session: &str,
    ) -> Result<(aws_sdk_s3::Client, String), AwsError> {
        let out = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session)
            .duration_seconds(3600)
            .send()
            .await
            .map_err(|e| {
                let mut err = error::classify("AssumeRole", "sts:AssumeRole", role_arn, e);
                if err.kind == AwsErrorKind::AccessDenied {
                    err.hint = format!("the forensic account's role {role_arn} must trust this caller (its trust policy names this account or role) and this caller needs sts:AssumeRole on it");
                }
                err
            })?;
        let c = out.credentials().ok_or_else(|| {
            AwsError::new(
                "AssumeRole",
                role_arn,
                AwsErrorKind::Other,
                "STS answered without credentials",
                "check the endpoint: it does not behave like AWS STS",
            )
        })?;
        let expiry = std::time::SystemTime::try_from(*c.expiration()).ok();
        let creds = aws_sdk_s3::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "firebreak-forensic-role",
        );
        let sts = aws_sdk_sts::Client::from_conf(
            self.sts
                .config()
                .to_builder()
                .credentials_provider(creds.clone())
                .build(),
        );
        let me = sts.get_caller_identity().send().await.map_err(|e| {
            error::classify("GetCallerIdentity", "sts:GetCallerIdentity", role_arn, e)
        })?;
        let writer = me.arn().unwrap_or(role_arn).to_string();
        let s3 = aws_sdk_s3::Client::from_conf(
            self.s3
                .config()
                .to_builder()
                .credentials_provider(creds)
                .build(),
        );
        Ok((s3, writer))
    }

    /// Replaces the CloudWatch Logs client (tests with recorded responses;
    /// the caller attaches the guard).
    pub fn with_logs(mut self, logs: aws_sdk_cloudwatchlogs::Client) -> Self {
        self.logs = logs;
        self
    }

    /// Replaces the S3 client (tests that pair recorded log pages with a
    /// real bucket; the caller attaches the guard).
    pub fn with_s3(mut self, s3: aws_sdk_s3::Client) -> Self {
        self.s3 = s3;
        self.forensic_stores = Arc::default();
        self
    }

    /// STS GetCallerIdentity: proves the credentials work before anything
    /// else happens, and names the caller for the audit trail.
    pub async fn caller(&self) -> Result<Caller, AwsError> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| {
            error::classify(
                "GetCallerIdentity",
                "sts:GetCallerIdentity",
                "caller identity",
                e,
            )
        })?;
        match (out.account(), out.arn()) {
            (Some(account), Some(arn)) => Ok(Caller {
                account: account.to_string(),
                arn: arn.to_string(),
            }),
            _ => Err(AwsError::new(
                "GetCallerIdentity",
                "caller identity",
                AwsErrorKind::Other,
                "STS answered without an account or ARN",
                "check the endpoint: it does not behave like AWS STS",
            )),
        }
    }
}
