//! Where a policy applies: the accounts and regions (as ARN parts) and the
//! functions, as IAM patterns. Routes give all three; without them the
//! policy is for any account and region (`--region` narrows the region).

use std::collections::BTreeSet;

use crate::respond::names::partition_of;
use crate::respond::Routes;

/// One account in one region, with the partition the region belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    pub partition: String,
    pub account: String,
    pub region: String,
}

#[derive(Debug, Clone)]
pub struct Scope {
    pub places: Vec<Place>,
    /// Function names as IAM patterns (`*` and `?` only).
    pub functions: Vec<String>,
}

impl Scope {
    /// Any account; `region` or any region; any function.
    pub fn anywhere(region: Option<&str>) -> Self {
        let region = region.unwrap_or("*");
        Self {
            places: vec![Place {
                partition: partition_for(region).into(),
                account: "*".into(),
                region: region.into(),
            }],
            functions: vec!["*".into()],
        }
    }

    /// The routes' allowlist: every allowed account in every allowed
    /// region, the allowed function globs.
    pub fn of_routes(routes: &Routes) -> Self {
        let mut places = Vec::new();
        for account in &routes.allow.accounts {
            for region in &routes.allow.regions {
                places.push(Place {
                    partition: partition_for(region).into(),
                    account: account.clone(),
                    region: region.clone(),
                });
            }
        }
        places.sort();
        places.dedup();
        let functions: BTreeSet<String> = routes
            .allow
            .functions
            .iter()
            .map(|p| iam_pattern(p.as_str()))
            .collect();
        Self {
            places,
            functions: functions.into_iter().collect(),
        }
    }

    /// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` in every place.
    pub fn arns(&self, service: &str, resource: &str) -> Vec<String> {
        self.places
            .iter()
            .map(|p| {
                format!(
                    "arn:{}:{service}:{}:{}:{resource}",
                    p.partition, p.region, p.account
                )
            })
            .collect()
    }

    /// ARNs of a global service (IAM): one per partition and account.
    pub fn global_arns(&self, service: &str, resource: &str) -> Vec<String> {
        let pairs: BTreeSet<(&str, &str)> = self
            .places
            .iter()
            .map(|p| (p.partition.as_str(), p.account.as_str()))
            .collect();
        pairs
            .into_iter()
            .map(|(partition, account)| format!("arn:{partition}:{service}::{account}:{resource}"))
            .collect()
    }

    /// ARNs without account or region (S3 buckets): one per partition.
    pub fn bare_arns(&self, service: &str, resource: &str) -> Vec<String> {
        self.partitions()
            .into_iter()
            .map(|p| format!("arn:{p}:{service}:::{resource}"))
            .collect()
    }

    pub fn partitions(&self) -> BTreeSet<&str> {
        self.places.iter().map(|p| p.partition.as_str()).collect()
    }

    pub fn regions(&self) -> BTreeSet<&str> {
        self.places.iter().map(|p| p.region.as_str()).collect()
    }
}

/// The partition of a region; `aws` when the region is not known.
fn partition_for(region: &str) -> &'static str {
    if region == "*" {
        "aws"
    } else {
        partition_of(region)
    }
}

/// A glob (`*`, `?`, `[...]`) as an IAM pattern, which knows only `*` and
/// `?`: a bracket class becomes `?` (any one character), so the pattern
/// matches at least what the glob does.
pub fn iam_pattern(glob: &str) -> String {
    let mut out = String::new();
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        if c == '[' {
            // Skip to the closing bracket (a `]` right after `[` or `[!` is
            // part of the class, as in the glob crate).
            let mut first = true;
            for d in chars.by_ref() {
                if d == ']' && !first {
                    break;
                }
                first = d == '!' && first;
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_iam_patterns_that_match_at_least_as_much() {
        assert_eq!(iam_pattern("orders-*"), "orders-*");
        assert_eq!(iam_pattern("payments-api"), "payments-api");
        assert_eq!(iam_pattern("svc-[abc]-?"), "svc-?-?");
        assert_eq!(iam_pattern("svc-[!x]"), "svc-?");
        assert_eq!(iam_pattern("svc-[]]x"), "svc-?x");
    }

    #[test]
    fn arns_in_every_place() {
        let s = Scope {
            places: vec![
                Place {
                    partition: "aws".into(),
                    account: "111122223333".into(),
                    region: "us-east-1".into(),
                },
                Place {
                    partition: "aws".into(),
                    account: "111122223333".into(),
                    region: "eu-west-1".into(),
                },
            ],
            functions: vec!["*".into()],
        };
        assert_eq!(
            s.arns("sqs", "q"),
            [
                "arn:aws:sqs:us-east-1:111122223333:q",
                "arn:aws:sqs:eu-west-1:111122223333:q"
            ]
        );
        assert_eq!(
            s.global_arns("iam", "role/*"),
            ["arn:aws:iam::111122223333:role/*"]
        );
        assert_eq!(s.bare_arns("s3", "b"), ["arn:aws:s3:::b"]);
        let anywhere = Scope::anywhere(None);
        assert_eq!(
            anywhere.arns("lambda", "function:*"),
            ["arn:aws:lambda:*:*:function:*"]
        );
        assert_eq!(
            Scope::anywhere(Some("cn-north-1")).arns("lambda", "function:*"),
            ["arn:aws-cn:lambda:cn-north-1:*:function:*"]
        );
    }
}
