//! The one place AWS clients are built.
//!
//! Region, profile, endpoint, timeouts, retries, the dry-run guard and the
//! call path (pacing, throttling, counts) are attached here and nowhere
//! else, so no code path can hold an unguarded or unpaced client.

mod assume;
pub mod call_path;
pub mod error;
pub mod guard;
mod state_client;
pub mod trust_store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use serde::{Deserialize, Serialize};

pub use call_path::{CallCounts, CallPath, OpCount, Quotas};
pub use error::{AwsError, AwsErrorKind};
pub use guard::{CallRecorder, DryRunRefused, Guard};
pub use state_client::{state_s3_client, state_s3_client_from};

/// How to reach AWS, from the global flags.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// Refuse every mutating operation at the SDK layer.
    pub dry_run: bool,
    /// A YAML file overriding the call path's quotas (`--quotas`).
    pub quotas: Option<PathBuf>,
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
    /// Without SDK retries: LookupEvents is paced and throttles are
    /// backed off on the call path; what outlasts that is asked again by
    /// `action::cloudtrail::lookup`, not also by the SDK.
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// The event path: alarms and findings re-read before acting, the
    /// queue `watch` consumes, the topic a route notifies.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub guardduty: aws_sdk_guardduty::Client,
    pub securityhub: aws_sdk_securityhub::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    /// EventBridge: the rules that target a function (baselines, recovery
    /// to a baseline, indicators; containment disables, never deletes).
    pub events: aws_sdk_eventbridge::Client,
    pub region: String,
    pub endpoint_url: Option<String>,
    pub dry_run: bool,
    pub calls: Arc<CallRecorder>,
    /// Pacing and counts for every request of this run (see `call_path`).
    pub call_path: Arc<CallPath>,
}

/// The SDK's timeouts for a run's clients. A request waits for its quota
/// inside the call path's connector, which the SDK times as part of the
/// attempt: with hundreds of targets a read can rightly queue for minutes
/// behind the changes that go first, and an attempt or operation timeout
/// would fail it. So the SDK times only connecting; the connector times
/// each send from the moment it leaves the queue
/// (`call_path::connector::SEND_TIMEOUT`), and a response body that stops
/// is the stalled-stream protection's (download) to catch.
pub(crate) fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .build()
}

/// Download protection only. Upload protection starts its clock before
/// the connector is called and, seeing no bytes sent while the request
/// waits for its quota, fails it after a 5 s grace period (observed: IAM
/// reads of a 1,000-function run failed "minimum throughput was specified
/// at 1 B/s, but throughput of 0 B/s was observed"). An upload that stops
/// is caught by the connector's send timeout instead.
pub(crate) fn stalled_stream_protection() -> StalledStreamProtectionConfig {
    StalledStreamProtectionConfig::enabled()
        .upload_enabled(false)
        .build()
}

impl Aws {
    pub async fn connect(settings: &AwsSettings) -> Result<Self, AwsError> {
        // Read before anything is sent: a bad file is the user's to fix.
        let quotas = match &settings.quotas {
            Some(path) => Quotas::load(path).map_err(|e| {
                AwsError::new(
                    "configure",
                    "quotas file",
                    AwsErrorKind::InvalidRequest,
                    e.to_string(),
                    e.hint(),
                )
            })?,
            None => Quotas::default(),
        };
        let path = CallPath::new(quotas, Arc::default());
        // The SDK's own default client, built explicitly so that it can sit
        // behind the call path: every client from this config, and every
        // credential provider, sends through it.
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(path.http_client(https))
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .timeout_config(sdk_timeouts())
            .stalled_stream_protection(stalled_stream_protection());
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
        Ok(Self::with_call_path(&sdk, region, settings, path))
    }

    /// Builds the clients from an SDK config (tests pass their own), with
    /// the default quotas. Requests are paced only if `sdk`'s HTTP client
    /// is the call path's; they are counted either way.
    pub fn from_sdk_config(
        sdk: &aws_types::SdkConfig,
        region: String,
        settings: &AwsSettings,
    ) -> Self {
        let path = CallPath::new(Quotas::default(), Arc::default());
        Self::with_call_path(sdk, region, settings, path)
    }

    fn with_call_path(
        sdk: &aws_types::SdkConfig,
        region: String,
        settings: &AwsSettings,
        path: Arc<CallPath>,
    ) -> Self {
        let calls = path.recorder.clone();
        let guard = Guard {
            dry_run: settings.dry_run,
            recorder: calls.clone(),
        };
        let stamp = path.stamp();
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
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
                .interceptor(stamp.clone())
                .build(),
        );
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let cloudtrail = aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(sdk)
                .retry_config(RetryConfig::disabled())
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(settings.endpoint_url.is_some() || sdk.endpoint_url().is_some())
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let secretsmanager = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let cloudwatch = aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let guardduty = aws_sdk_guardduty::Client::from_conf(
            aws_sdk_guardduty::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let securityhub = aws_sdk_securityhub::Client::from_conf(
            aws_sdk_securityhub::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(sdk)
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
                .build(),
        );
        let events = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(sdk)
                .interceptor(guard)
                .interceptor(stamp)
                .build(),
        );
        Self {
            cloudwatch,
            guardduty,
            securityhub,
            sqs,
            sns,
            events,
            lambda,
            lambda_probe,
            sts,
            iam,
            s3,
            logs,
            cloudtrail,
            secretsmanager,
            ssm,
            region,
            endpoint_url: settings.endpoint_url.clone(),
            dry_run: settings.dry_run,
            calls,
            call_path: path,
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
        // Likewise for secrets: `with_secretsmanager` and `with_ssm` replace them.
        let secretsmanager = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::new()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(Region::new(region.to_string()))
                .interceptor(guard.clone())
                .build(),
        );
        let ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::new()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(Region::new(region.to_string()))
                .interceptor(guard.clone())
                .build(),
        );
        macro_rules! unconfigured {
            ($krate:ident) => {
                $krate::Client::from_conf(
                    $krate::config::Builder::new()
                        .behavior_version(aws_config::BehaviorVersion::latest())
                        .region(Region::new(region.to_string()))
                        .interceptor(guard.clone())
                        .build(),
                )
            };
        }
        Self {
            cloudwatch: unconfigured!(aws_sdk_cloudwatch),
            guardduty: unconfigured!(aws_sdk_guardduty),
            securityhub: unconfigured!(aws_sdk_securityhub),
            sqs: unconfigured!(aws_sdk_sqs),
            sns: unconfigured!(aws_sdk_sns),
            events: unconfigured!(aws_sdk_eventbridge),
            lambda,
            lambda_probe,
            sts,
            iam,
            s3,
            logs,
            cloudtrail,
            secretsmanager,
            ssm,
            region: region.to_string(),
            endpoint_url: None,
            dry_run: guard.dry_run,
            calls: guard.recorder.clone(),
            // Recorded responses replace the HTTP layer: nothing to pace,
            // but the guard still counts into this path's recorder.
            call_path: CallPath::new(Quotas::default(), guard.recorder.clone()),
        }
    }

    /// Replaces the CloudWatch Logs client (tests with recorded responses;
    /// the caller attaches the guard).
    pub fn with_logs(mut self, logs: aws_sdk_cloudwatchlogs::Client) -> Self {
        self.logs = logs;
        self
    }

    /// Replaces the Secrets Manager client (tests with recorded responses;
    /// the caller attaches the guard).
    pub fn with_secretsmanager(mut self, client: aws_sdk_secretsmanager::Client) -> Self {
        self.secretsmanager = client;
        self
    }

    /// Replaces the event-path clients (tests with recorded responses;
    /// the caller attaches the guard).
    pub fn with_cloudwatch(mut self, client: aws_sdk_cloudwatch::Client) -> Self {
        self.cloudwatch = client;
        self
    }

    pub fn with_guardduty(mut self, client: aws_sdk_guardduty::Client) -> Self {
        self.guardduty = client;
        self
    }

    pub fn with_securityhub(mut self, client: aws_sdk_securityhub::Client) -> Self {
        self.securityhub = client;
        self
    }

    /// Replaces the EventBridge client (tests with recorded responses; the
    /// caller attaches the guard).
    pub fn with_events(mut self, client: aws_sdk_eventbridge::Client) -> Self {
        self.events = client;
        self
    }

    /// Replaces the CloudTrail client (tests with recorded responses; the
    /// caller attaches the guard).
    pub fn with_cloudtrail(mut self, client: aws_sdk_cloudtrail::Client) -> Self {
        self.cloudtrail = client;
        self
    }

    /// Replaces the SSM client (tests with recorded responses; the caller
    /// attaches the guard).
    pub fn with_ssm(mut self, client: aws_sdk_ssm::Client) -> Self {
        self.ssm = client;
        self
    }

    /// Replaces the S3 client (tests that pair recorded log pages with a
    /// real bucket; the caller attaches the guard).
    pub fn with_s3(mut self, s3: aws_sdk_s3::Client) -> Self {
        self.s3 = s3;
        self
    }

    /// The counts of every request so far (the report's `api_calls`).
    pub fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }

    /// STS GetCallerIdentity: proves the credentials work before anything
    /// else happens, names the caller for the audit trail, and sets the
    /// account the call path paces the run's requests in.
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
            (Some(account), Some(arn)) => {
                // From here on the run's requests are paced in this
                // account's buckets.
                self.call_path.set_account(account);
                Ok(Caller {
                    account: account.to_string(),
                    arn: arn.to_string(),
                })
            }
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
