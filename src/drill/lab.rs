//! The drill's own clients, for setup, attack, checks and cleanup: plain
//! SDK clients in the run's account, outside firebreak's dry-run guard.
//! They can only be built for a local endpoint (`local_endpoint`), so a
//! drill cannot touch a real account by construction.

use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::{Credentials, Region};

use super::DrillError;

/// The endpoint, if it is local (loopback or `localhost` /
/// `localhost.localstack.cloud`); otherwise why not.
pub fn local_endpoint(endpoint: Option<&str>) -> Result<String, DrillError> {
    let Some(e) = endpoint else {
        return Err(DrillError::NotLocal {
            given: "no endpoint is set (AWS_ENDPOINT_URL / --endpoint-url), so this would reach real AWS".into(),
        });
    };
    let rest = e
        .strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"))
        .unwrap_or("");
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let local = host == "localhost"
        || host == "localhost.localstack.cloud"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if local {
        Ok(e.trim_end_matches('/').to_string())
    } else {
        Err(DrillError::NotLocal {
            given: format!("the endpoint is `{e}`, which is not local"),
        })
    }
}

#[derive(Clone)]
pub struct Lab {
    pub sdk: aws_types::SdkConfig,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
}

impl Lab {
    /// Clients acting as `account` on the local `endpoint`.
    pub async fn connect(endpoint: &str, region: &str, account: &str) -> Result<Self, DrillError> {
        let endpoint = local_endpoint(Some(endpoint))?;
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&endpoint)
            .credentials_provider(Credentials::new(
                account,
                "test",
                None,
                None,
                "firebreak-drill",
            ))
            .load()
            .await;
        Ok(Self {
            lambda: aws_sdk_lambda::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(true)
                    .build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            sdk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::local_endpoint;

    #[test]
    fn only_local_endpoints_are_accepted() {
        for ok in [
            "http://127.0.0.1:4566",
            "http://localhost:4566/",
            "http://[::1]:4566",
            "https://localhost.localstack.cloud:4566",
        ] {
            assert!(local_endpoint(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "https://lambda.us-east-1.amazonaws.com",
            "http://10.0.0.5:4566",
            "http://127.0.0.1.evil.com:4566",
            "ftp://localhost",
        ] {
            let e = local_endpoint(Some(bad)).expect_err(bad);
            assert!(e.to_string().contains("LocalStack"), "{e}");
        }
        assert!(local_endpoint(None).is_err());
    }
}
