//! What exists in the account and region: every secret (name → ARN) and
//! every SSM parameter (name → whether it is SecureString). Policy
//! wildcards and environment references are resolved against it, so that
//! discovery names real resources, each once, by its ARN.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::ParameterType;

use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;

pub struct Inventory {
    /// Secret name → ARN. ListSecrets leaves out secrets scheduled for
    /// deletion: one referenced by ARN is kept as given (see `environment`).
    pub secrets: BTreeMap<String, String>,
    /// Parameter name → SecureString or not.
    pub parameters: BTreeMap<String, bool>,
}

impl Inventory {
    pub async fn read(cx: &StepContext<'_>) -> Result<Self, ActionError> {
        let mut secrets = BTreeMap::new();
        let mut pages = cx.aws.secretsmanager.list_secrets().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| classify("ListSecrets", "secretsmanager:ListSecrets", "secrets", e))?;
            for s in page.secret_list() {
                if let (Some(n), Some(a)) = (s.name(), s.arn()) {
                    secrets.insert(n.to_string(), a.to_string());
                }
            }
        }
        let mut parameters = BTreeMap::new();
        let mut pages = cx.aws.ssm.describe_parameters().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                classify(
                    "DescribeParameters",
                    "ssm:DescribeParameters",
                    "parameters",
                    e,
                )
            })?;
            for p in page.parameters() {
                if let Some(name) = p.name() {
                    let secure = p.r#type() == Some(&ParameterType::SecureString);
                    parameters.insert(name.to_string(), secure);
                }
            }
        }
        Ok(Self {
            secrets,
            parameters,
        })
    }

    /// A secret named by ARN (with or without Secrets Manager's 6-character
    /// suffix) or by name.
    pub fn secret(&self, reference: &str) -> Option<&String> {
        self.secrets.get(reference).or_else(|| {
            self.secrets.values().find(|arn| {
                *arn == reference
                    || arn
                        .strip_prefix(reference)
                        .is_some_and(|s| s.len() == 7 && s.starts_with('-'))
            })
        })
    }

    /// A parameter named by name or ARN, leading `/` or not: its name as
    /// SSM spells it, and whether it is SecureString.
    pub fn parameter(&self, reference: &str) -> Option<(&String, bool)> {
        let name = match reference.split_once(":parameter") {
            Some((head, rest)) if head.starts_with("arn:") => rest,
            _ => reference,
        };
        self.parameters
            .iter()
            .find(|(p, _)| {
                p.as_str() == name || p.trim_start_matches('/') == name.trim_start_matches('/')
            })
            .map(|(p, secure)| (p, *secure))
    }
}

/// The ARN a parameter (or a path) has in policies: `parameter/a/b` for
/// `/a/b` and `a/b`, `parameter/` for the root path `/`.
pub fn parameter_arn(cx: &StepContext<'_>, name: &str) -> String {
    let partition = cx.caller.arn.split(':').nth(1).unwrap_or("aws");
    format!(
        "arn:{partition}:ssm:{}:{}:parameter/{}",
        cx.aws.region,
        cx.caller.account,
        name.trim_start_matches('/')
    )
}

/// The paths GetParametersByPath could return `name` from (recursively):
/// each ancestor of a hierarchical name, and the root.
pub fn parent_paths(name: &str) -> Vec<String> {
    let trimmed = name.trim_start_matches('/');
    let mut out = vec!["/".to_string()];
    let mut path = String::new();
    let parts: Vec<&str> = trimmed.split('/').collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        path.push('/');
        path.push_str(part);
        out.push(path.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        Inventory {
            secrets: [(
                "app/db".to_string(),
                "arn:aws:secretsmanager:us-east-1:1:secret:app/db-AbCdEf".to_string(),
            )]
            .into_iter()
            .collect(),
            parameters: [("/app/pw".to_string(), true), ("stage".to_string(), false)]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn secrets_are_found_by_name_arn_or_arn_without_suffix() {
        let inv = inventory();
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:app/db-AbCdEf";
        assert_eq!(inv.secret("app/db").map(String::as_str), Some(arn));
        assert_eq!(inv.secret(arn).map(String::as_str), Some(arn));
        assert_eq!(
            inv.secret("arn:aws:secretsmanager:us-east-1:1:secret:app/db")
                .map(String::as_str),
            Some(arn)
        );
        assert_eq!(inv.secret("app/d"), None);
    }

    #[test]
    fn parameters_are_found_by_name_or_arn() {
        let inv = inventory();
        assert_eq!(
            inv.parameter("/app/pw"),
            Some((&"/app/pw".to_string(), true))
        );
        assert_eq!(
            inv.parameter("app/pw"),
            Some((&"/app/pw".to_string(), true))
        );
        assert_eq!(
            inv.parameter("arn:aws:ssm:us-east-1:1:parameter/app/pw"),
            Some((&"/app/pw".to_string(), true))
        );
        assert_eq!(inv.parameter("stage"), Some((&"stage".to_string(), false)));
        assert_eq!(inv.parameter("/app"), None);
    }

    #[test]
    fn parent_paths_go_up_to_the_root() {
        assert_eq!(parent_paths("/app/cfg/key"), vec!["/", "/app", "/app/cfg"]);
        assert_eq!(parent_paths("token"), vec!["/"]);
    }
}
