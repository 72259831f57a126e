//! API families and their quotas: which token bucket a request draws from,
//! and how fast that bucket refills.
//!
//! The defaults are AWS's published per-account, per-region quotas where
//! there is one (design contract 9), and deliberately low guesses where
//! there is not: a bucket that is too slow costs seconds, one that is too
//! fast costs throttling that every other caller in the account shares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A group of operations that AWS counts against one quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Every Lambda control-plane operation not listed below: 15/s shared.
    Lambda,
    /// GetFunction has its own 100/s quota.
    LambdaGetFunction,
    /// GetPolicy has its own 15/s quota.
    LambdaGetPolicy,
    /// Every IAM operation, reads and writes: one budget for the account,
    /// served by priority (a quarantine's deny before any read), so that
    /// when only writes are left (a quarantine's second pass) they have
    /// all of it rather than a half set aside for reads.
    Iam,
    Sts,
    /// FilterLogEvents: 5/s in the smallest regions (up to 25/s elsewhere).
    LogsFilter,
    /// Other CloudWatch Logs operations (DescribeLogGroups: 10/s).
    Logs,
    /// LookupEvents: 2/s.
    CloudtrailLookup,
    Cloudtrail,
    S3,
    /// Secrets Manager: reads are thousands a second, PutSecretValue and
    /// RotateSecret 50/s; paced as one bucket at the write rate.
    SecretsManager,
    /// SSM Parameter Store reads (GetParameter 40/s; history and
    /// DescribeParameters lower).
    Ssm,
    /// PutParameter: 3/s at the default throughput.
    SsmPut,
    /// A service firebreak does not know yet.
    Other,
}

impl Family {
    pub const ALL: [Family; 14] = [
        Family::Lambda,
        Family::LambdaGetFunction,
        Family::LambdaGetPolicy,
        Family::Iam,
        Family::Sts,
        Family::LogsFilter,
        Family::Logs,
        Family::CloudtrailLookup,
        Family::Cloudtrail,
        Family::S3,
        Family::SecretsManager,
        Family::Ssm,
        Family::SsmPut,
        Family::Other,
    ];

    /// The family of an operation, or `None` when it is not paced at all.
    ///
    /// Invoke is data plane: its quota is the function's concurrency, not a
    /// request rate, and its 429 at concurrency 0 is the answer containment
    /// verification *wants*; pacing or backing it off would only delay that.
    pub fn of(service: &str, operation: &str) -> Option<Family> {
        let family = match (service_prefix(service).as_str(), operation) {
            ("lambda", "Invoke" | "InvokeAsync" | "InvokeWithResponseStream") => return None,
            ("lambda", "GetFunction") => Family::LambdaGetFunction,
            ("lambda", "GetPolicy") => Family::LambdaGetPolicy,
            ("lambda", _) => Family::Lambda,
            ("iam", _) => Family::Iam,
            ("sts", _) => Family::Sts,
            ("logs", "FilterLogEvents") => Family::LogsFilter,
            ("logs", _) => Family::Logs,
            ("cloudtrail", "LookupEvents") => Family::CloudtrailLookup,
            ("cloudtrail", _) => Family::Cloudtrail,
            ("s3", _) => Family::S3,
            ("secretsmanager", _) => Family::SecretsManager,
            ("ssm", "PutParameter") => Family::SsmPut,
            ("ssm", _) => Family::Ssm,
            _ => Family::Other,
        };
        Some(family)
    }

    /// The key in a quotas file.
    pub fn key(self) -> &'static str {
        match self {
            Family::Lambda => "lambda",
            Family::LambdaGetFunction => "lambda_get_function",
            Family::LambdaGetPolicy => "lambda_get_policy",
            Family::Iam => "iam",
            Family::Sts => "sts",
            Family::LogsFilter => "logs_filter",
            Family::Logs => "logs",
            Family::CloudtrailLookup => "cloudtrail_lookup",
            Family::Cloudtrail => "cloudtrail",
            Family::S3 => "s3",
            Family::SecretsManager => "secretsmanager",
            Family::Ssm => "ssm",
            Family::SsmPut => "ssm_put",
            Family::Other => "other",
        }
    }

    /// IAM is a global service: one quota per account, whatever region the
    /// client was built for.
    pub fn is_global(self) -> bool {
        matches!(self, Family::Iam)
    }

    pub fn default_quota(self) -> Quota {
        let (rate, burst) = match self {
            // Two thirds of a second's worth at once: one function's whole
            // run (about ten control-plane calls) is never held back, and a
            // third of AWS's bucket is left as margin (a full second's
            // worth drew a throttled answer or two per run through the
            // AWS-like proxy).
            Family::Lambda => (15.0, 10),
            Family::LambdaGetFunction => (100.0, 10),
            Family::LambdaGetPolicy => (15.0, 10),
            // IAM publishes no request rate; it throttles globally for the
            // account. 20/s for everything stays below it while a many-role
            // quarantine (about 8 IAM calls a role) keeps moving.
            Family::Iam => (20.0, 10),
            Family::Sts => (50.0, 10),
            // A shared quota that other readers also spend: evenly spaced,
            // no burst.
            Family::LogsFilter => (5.0, 1),
            Family::Logs => (10.0, 5),
            Family::CloudtrailLookup => (2.0, 1),
            Family::Cloudtrail => (5.0, 2),
            // Thousands per second per prefix: only a guard against runaway
            // loops, never a limit evidence collection reaches.
            Family::S3 => (200.0, 50),
            Family::SecretsManager => (50.0, 10),
            Family::Ssm => (10.0, 5),
            Family::SsmPut => (3.0, 1),
            Family::Other => (10.0, 5),
        };
        Quota { rate, burst }
    }
}

/// The IAM-style prefix of an SDK service name ("CloudWatch Logs" → "logs").
pub fn service_prefix(service: &str) -> String {
    match service.to_ascii_lowercase().as_str() {
        "cloudwatch logs" => "logs".to_string(),
        other => other.replace(' ', ""),
    }
}

/// One bucket's refill rate (requests per second) and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub rate: f64,
    /// Requests that may leave at once after an idle spell.
    pub burst: u32,
}

/// The quota of every family for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Quotas {
    by_family: BTreeMap<Family, Quota>,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            by_family: Family::ALL
                .iter()
                .map(|f| (*f, f.default_quota()))
                .collect(),
        }
    }
}

impl Quotas {
    pub fn get(&self, family: Family) -> Quota {
        self.by_family
            .get(&family)
            .copied()
            .unwrap_or_else(|| family.default_quota())
    }

    pub fn set(&mut self, family: Family, quota: Quota) {
        self.by_family.insert(family, quota);
    }

    /// Reads a quotas file: the defaults with the file's entries on top.
    pub fn load(path: &Path) -> Result<Self, QuotaError> {
        let text = std::fs::read_to_string(path).map_err(|source| QuotaError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses quotas text (the path is only for messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, QuotaError> {
        let file: QuotaFile = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            QuotaError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: bare_message(&e.to_string()),
            }
        })?;
        let mut quotas = Quotas::default();
        for (family, entry) in file.quotas.entries() {
            let Some(entry) = entry else { continue };
            let rate = entry.rate.value;
            if !(rate.is_finite() && rate > 0.0 && rate <= 10_000.0) {
                return Err(invalid(
                    path,
                    &entry.rate,
                    format!(
                        "{}.rate must be a number of requests per second above 0 (and at most 10000), not {rate}",
                        family.key()
                    ),
                ));
            }
            let burst = match &entry.burst {
                Some(b) if b.value == 0 || b.value > 1_000 => {
                    return Err(invalid(
                        path,
                        b,
                        format!(
                            "{}.burst must be between 1 and 1000, not {}",
                            family.key(),
                            b.value
                        ),
                    ))
                }
                Some(b) => b.value,
                None => family.default_quota().burst,
            };
            quotas.set(family, Quota { rate, burst });
        }
        Ok(quotas)
    }
}

fn invalid<T>(path: &Path, at: &Spanned<T>, message: String) -> QuotaError {
    QuotaError::Invalid {
        path: path.to_path_buf(),
        line: at.referenced.line(),
        column: at.referenced.column(),
        message,
    }
}

/// serde-saphyr puts the position before ("line N column M: ") or after
/// (" at line N, column M") its message; we print our own `file:line:col`.
fn bare_message(text: &str) -> String {
    let first = text.lines().next().unwrap_or(text);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first.find(" column ") {
        Some(i) if first.starts_with("line ") => {
            first[i + 8..].split_once(": ").map_or(first, |(_, m)| m)
        }
        _ => first,
    };
    match first.find(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

pub const QUOTAS_HINT: &str = "a quotas file looks like `quotas: {lambda: {rate: 15, burst: 5}}`; families: lambda, lambda_get_function, lambda_get_policy, iam (reads and writes), sts, logs_filter, logs, cloudtrail_lookup, cloudtrail, s3, secretsmanager, ssm, ssm_put, other; rate is requests per second, burst (optional) how many may leave at once";

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("cannot read the quotas file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
}

impl QuotaError {
    pub fn path(&self) -> &Path {
        match self {
            QuotaError::Read { path, .. } | QuotaError::Invalid { path, .. } => path,
        }
    }

    pub fn hint(&self) -> &'static str {
        match self {
            QuotaError::Read { .. } => "check the path given to --quotas or FIREBREAK_QUOTAS",
            QuotaError::Invalid { .. } => QUOTAS_HINT,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaFile {
    quotas: FamilyEntries,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyEntries {
    lambda: Option<Entry>,
    lambda_get_function: Option<Entry>,
    lambda_get_policy: Option<Entry>,
    iam: Option<Entry>,
    sts: Option<Entry>,
    logs_filter: Option<Entry>,
    logs: Option<Entry>,
    cloudtrail_lookup: Option<Entry>,
    cloudtrail: Option<Entry>,
    s3: Option<Entry>,
    secretsmanager: Option<Entry>,
    ssm: Option<Entry>,
    ssm_put: Option<Entry>,
    other: Option<Entry>,
}

impl FamilyEntries {
    fn entries(self) -> [(Family, Option<Entry>); 14] {
        [
            (Family::Lambda, self.lambda),
            (Family::LambdaGetFunction, self.lambda_get_function),
            (Family::LambdaGetPolicy, self.lambda_get_policy),
            (Family::Iam, self.iam),
            (Family::Sts, self.sts),
            (Family::LogsFilter, self.logs_filter),
            (Family::Logs, self.logs),
            (Family::CloudtrailLookup, self.cloudtrail_lookup),
            (Family::Cloudtrail, self.cloudtrail),
            (Family::S3, self.s3),
            (Family::SecretsManager, self.secretsmanager),
            (Family::Ssm, self.ssm),
            (Family::SsmPut, self.ssm_put),
            (Family::Other, self.other),
        ]
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    rate: Spanned<f64>,
    burst: Option<Spanned<u32>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Quotas, QuotaError> {
        Quotas::parse(Path::new("quotas.yaml"), text)
    }

    #[test]
    fn operations_fall_into_their_families() {
        assert_eq!(
            Family::of("Lambda", "GetFunction"),
            Some(Family::LambdaGetFunction)
        );
        assert_eq!(
            Family::of("Lambda", "GetPolicy"),
            Some(Family::LambdaGetPolicy)
        );
        assert_eq!(
            Family::of("Lambda", "PutFunctionConcurrency"),
            Some(Family::Lambda)
        );
        assert_eq!(Family::of("Lambda", "Invoke"), None);
        assert_eq!(Family::of("IAM", "GetPolicy"), Some(Family::Iam));
        // One budget: the account's, writes included.
        assert_eq!(Family::of("IAM", "PutRolePolicy"), Some(Family::Iam));
        assert_eq!(
            Family::of("CloudWatch Logs", "FilterLogEvents"),
            Some(Family::LogsFilter)
        );
        assert_eq!(
            Family::of("CloudTrail", "LookupEvents"),
            Some(Family::CloudtrailLookup)
        );
        assert_eq!(Family::of("S3", "PutObject"), Some(Family::S3));
        assert_eq!(
            Family::of("Secrets Manager", "RotateSecret"),
            Some(Family::SecretsManager)
        );
        assert_eq!(Family::of("SSM", "PutParameter"), Some(Family::SsmPut));
        assert_eq!(Family::of("SSM", "GetParameter"), Some(Family::Ssm));
        assert_eq!(Family::of("Kinesis", "PutRecord"), Some(Family::Other));
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let q = parse("quotas:\n  lambda: {rate: 10, burst: 2}\n  logs_filter: {rate: 25}\n")
            .expect("valid");
        assert_eq!(
            q.get(Family::Lambda),
            Quota {
                rate: 10.0,
                burst: 2
            }
        );
        assert_eq!(
            q.get(Family::LogsFilter),
            Quota {
                rate: 25.0,
                burst: 1
            }
        );
        assert_eq!(
            q.get(Family::CloudtrailLookup),
            Quota {
                rate: 2.0,
                burst: 1
            }
        );
    }

    #[test]
    fn a_bad_file_names_its_line_and_column() {
        let err = parse("quotas:\n  lambda: {rate: 15}\n  lamda: {rate: 3}\n").expect_err("typo");
        let text = err.to_string();
        assert!(text.starts_with("quotas.yaml:3:3: "), "{text}");
        assert!(text.contains("lamda"), "{text}");
        assert!(err.hint().contains("lambda_get_function"));

        let err = parse("quotas:\n  iam:\n    rate: 0\n").expect_err("zero");
        assert!(
            err.to_string().starts_with("quotas.yaml:3:11: iam.rate"),
            "{err}"
        );

        let err = parse("quotas:\n  s3: {rate: 5, burst: 0}\n").expect_err("burst");
        assert!(
            err.to_string().starts_with("quotas.yaml:2:24: s3.burst"),
            "{err}"
        );

        let err = parse("quotas:\n  sts: {rate: 5, brust: 2}\n").expect_err("field");
        assert!(err.to_string().starts_with("quotas.yaml:2:"), "{err}");
        assert!(err.to_string().contains("brust"), "{err}");
    }
}
