//! Acting in another account: STS AssumeRole with the run's credentials,
//! then clients with the same endpoint, timeouts, retries, dry-run guard
//! and call path, paced in the role's account. The temporary credentials
//! live in the clients only; never shown.

use aws_sdk_s3::config::Credentials;

use super::call_path::Stamp;
use super::error::{self, classify};
use super::{Aws, AwsError, AwsErrorKind};

/// A client like `$client`, with the assumed credentials and stamp.
macro_rules! rebuild {
    ($krate:ident, $client:expr, $a:expr) => {{
        let mut b = $client
            .config()
            .to_builder()
            .credentials_provider($a.creds.clone());
        if let Some(stamp) = &$a.stamp {
            b = b.interceptor(stamp.clone());
        }
        $krate::Client::from_conf(b.build())
    }};
}

struct Assumed {
    creds: Credentials,
    stamp: Option<Stamp>,
}

impl Aws {
    async fn assume(&self, role_arn: &str, session: &str, why: &str) -> Result<Assumed, AwsError> {
        let out = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session)
            .duration_seconds(3600)
            .send()
            .await
            .map_err(|e| {
                let mut err = classify("AssumeRole", "sts:AssumeRole", role_arn, e);
                if err.kind == AwsErrorKind::AccessDenied {
                    err.hint = format!("{why} {role_arn} must trust this caller (its trust policy names this account or role) and this caller needs sts:AssumeRole on it");
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
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "firebreak-assumed-role",
        );
        // The role's account is in its ARN (arn:aws:iam::ACCOUNT:role/..):
        // its requests are paced in that account's buckets, not the run's.
        let account = role_arn.split(':').nth(4).filter(|a| !a.is_empty());
        let stamp = account.map(|a| self.call_path.stamp_for_account(a));
        Ok(Assumed { creds, stamp })
    }

    /// An S3 client acting as `role_arn` (a forensic bucket in a separate
    /// account). Returns the client and the identity it acts as
    /// (GetCallerIdentity with the new credentials), which plans and
    /// manifests name.
    pub async fn s3_assuming(
        &self,
        role_arn: &str,
        session: &str,
    ) -> Result<(aws_sdk_s3::Client, String), AwsError> {
        let a = self
            .assume(role_arn, session, "the forensic account's role")
            .await?;
        let sts = rebuild!(aws_sdk_sts, self.sts, a);
        let me = sts.get_caller_identity().send().await.map_err(|e| {
            error::classify("GetCallerIdentity", "sts:GetCallerIdentity", role_arn, e)
        })?;
        let writer = me.arn().unwrap_or(role_arn).to_string();
        Ok((rebuild!(aws_sdk_s3, self.s3, a), writer))
    }

    /// Every client acting as `role_arn`: a responder working an event in
    /// another account (a route's `assume_role`).
    pub async fn assuming(&self, role_arn: &str, session: &str) -> Result<Aws, AwsError> {
        let a = self
            .assume(role_arn, session, "the target account's response role")
            .await?;
        Ok(Aws {
            lambda: rebuild!(aws_sdk_lambda, self.lambda, a),
            lambda_probe: rebuild!(aws_sdk_lambda, self.lambda_probe, a),
            sts: rebuild!(aws_sdk_sts, self.sts, a),
            iam: rebuild!(aws_sdk_iam, self.iam, a),
            s3: rebuild!(aws_sdk_s3, self.s3, a),
            logs: rebuild!(aws_sdk_cloudwatchlogs, self.logs, a),
            cloudtrail: rebuild!(aws_sdk_cloudtrail, self.cloudtrail, a),
            secretsmanager: rebuild!(aws_sdk_secretsmanager, self.secretsmanager, a),
            ssm: rebuild!(aws_sdk_ssm, self.ssm, a),
            cloudwatch: rebuild!(aws_sdk_cloudwatch, self.cloudwatch, a),
            guardduty: rebuild!(aws_sdk_guardduty, self.guardduty, a),
            securityhub: rebuild!(aws_sdk_securityhub, self.securityhub, a),
            sqs: rebuild!(aws_sdk_sqs, self.sqs, a),
            sns: rebuild!(aws_sdk_sns, self.sns, a),
            ..self.clone()
        })
    }
}
