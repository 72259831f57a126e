//! The Lambda responder's configuration: environment variables only (the
//! function's configuration in the template), read once per cold start.

use std::path::PathBuf;
use std::time::Duration;

use crate::aws::AwsSettings;
use crate::state::S3Location;

/// The routes file, inside the package (relative to `LAMBDA_TASK_ROOT`).
pub const ROUTES: &str = "FIREBREAK_ROUTES";
/// Where incident state lives: `s3://BUCKET/PREFIX`.
pub const STATE: &str = "FIREBREAK_STATE";
/// Seconds a lease on an incident lasts without renewal (default 60).
pub const STATE_LEASE: &str = "FIREBREAK_STATE_LEASE";
/// A quotas file inside the package (`--quotas`).
pub const QUOTAS: &str = "FIREBREAK_QUOTAS";

#[derive(Debug, Clone)]
pub struct Config {
    pub routes: PathBuf,
    pub state: S3Location,
    pub lease: Duration,
    pub settings: AwsSettings,
}

/// A variable missing or wrong; says which, what it should be, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem} (hint: {hint})")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
    pub hint: String,
}

fn err(variable: &'static str, problem: impl Into<String>, hint: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
        hint: hint.into(),
    }
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// From `get` (a variable's value, if set): the environment, or a map
    /// in tests.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let routes = set(ROUTES).ok_or_else(|| {
            err(
                ROUTES,
                "not set",
                "set it to the routes file's path inside the deployment package, e.g. routes/routes.yaml (deploy/firebreak.yaml sets it from the RoutesFile parameter)",
            )
        })?;
        let mut routes = PathBuf::from(routes);
        if routes.is_relative() {
            if let Some(root) = set("LAMBDA_TASK_ROOT") {
                routes = PathBuf::from(root).join(routes);
            }
        }
        let state = set(STATE).ok_or_else(|| {
            err(
                STATE,
                "not set",
                "a Lambda responder keeps incident state in S3, shared by every instance: set it to s3://BUCKET/PREFIX (a local directory would be lost with the instance, and with it the journal and the lock)",
            )
        })?;
        let state = S3Location::parse(&state)
            .map_err(|e| err(STATE, e.to_string(), e.hint().to_string()))?;
        let lease = match set(STATE_LEASE) {
            None => Duration::from_secs(60),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n @ 1..=3600) => Duration::from_secs(n),
                _ => {
                    return Err(err(
                        STATE_LEASE,
                        format!("`{v}` is not a number of seconds from 1 to 3600"),
                        "leave it unset for 60 s, or give whole seconds",
                    ))
                }
            },
        };
        let settings = AwsSettings {
            // The region comes from the event (and AWS_REGION, which Lambda
            // sets, for the state client); the endpoint only for LocalStack.
            region: None,
            profile: None,
            endpoint_url: set("AWS_ENDPOINT_URL"),
            dry_run: false,
            quotas: set(QUOTAS).map(PathBuf::from),
        };
        Ok(Self {
            routes,
            state,
            lease,
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_the_routes_inside_the_package_and_the_state_in_s3() {
        let c = config(&[
            (ROUTES, "routes/prod.yaml"),
            ("LAMBDA_TASK_ROOT", "/var/task"),
            (STATE, "s3://ir-state/firebreak"),
            (STATE_LEASE, "120"),
        ])
        .expect("config");
        assert_eq!(c.routes, PathBuf::from("/var/task/routes/prod.yaml"));
        assert_eq!(c.state.bucket, "ir-state");
        assert_eq!(c.state.prefix, "firebreak");
        assert_eq!(c.lease, Duration::from_secs(120));
        assert_eq!(c.settings.endpoint_url, None);
    }

    #[test]
    fn says_what_is_missing_or_wrong() {
        let e = config(&[(STATE, "s3://ir-state/p")]).unwrap_err();
        assert_eq!(e.variable, ROUTES);
        let e = config(&[(ROUTES, "r.yaml")]).unwrap_err();
        assert_eq!(e.variable, STATE);
        assert!(e.to_string().contains("s3://BUCKET/PREFIX"), "{e}");
        let e = config(&[(ROUTES, "r.yaml"), (STATE, "/tmp/state")]).unwrap_err();
        assert_eq!(e.variable, STATE);
        let e = config(&[
            (ROUTES, "r.yaml"),
            (STATE, "s3://ir-state"),
            (STATE_LEASE, "0"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, STATE_LEASE);
    }
}
