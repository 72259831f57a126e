//! Reads one function's state into a `Baseline`. Only reads (every call is
//! on the dry-run guard's read list), through the run's paced clients.

use std::collections::BTreeMap;

use aws_sdk_lambda::types::FunctionConfiguration;
use serde_json::Value;

use super::key::EnvKey;
use super::model::{self, Baseline, Configuration, Mapping, Role, Rule, UrlConfig, Version};
use super::BaselineError;
use crate::action::iam::{policy, role as iam_role};
use crate::aws::error::classify;
use crate::aws::{Aws, AwsErrorKind};

/// What to capture beyond the function itself.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// IAM users whose access key ids are recorded (deploy users).
    pub deploy_users: Vec<String>,
}

fn hashes(key: &EnvKey, c: &FunctionConfiguration) -> BTreeMap<String, String> {
    c.environment()
        .and_then(|e| e.variables())
        .map(|vars| vars.iter().map(|(k, v)| (k.clone(), key.hash(v))).collect())
        .unwrap_or_default()
}

fn layers(c: &FunctionConfiguration) -> Vec<String> {
    c.layers()
        .iter()
        .filter_map(|l| l.arn().map(str::to_string))
        .collect()
}

/// A published version's code and configuration, environment values
/// hashed with `key`.
pub fn version_of(key: &EnvKey, c: &FunctionConfiguration) -> Version {
    Version {
        code_sha256: c.code_sha256().unwrap_or_default().to_string(),
        layers: layers(c),
        environment: hashes(key, c),
    }
}

/// The qualifier label of a mapping's or policy's function ARN, when it is
/// this function's (`None` for another function: `demo-2` is not `demo`).
pub fn qualifier_of(function_arn: &str, arn: &str) -> Option<String> {
    let rest = arn.strip_prefix(function_arn)?;
    if rest.is_empty() {
        return Some(model::LATEST.to_string());
    }
    let q = rest.strip_prefix(':')?;
    (!q.is_empty() && !q.contains(':')).then(|| q.to_string())
}

/// The `Qualifier` parameter for a label (`None` for `$LATEST`).
pub fn param(q: &str) -> Option<String> {
    (q != model::LATEST).then(|| q.to_string())
}

/// Captures `function` (a name) as it is now.
pub async fn capture(
    aws: &Aws,
    account: &str,
    function: &str,
    key: &EnvKey,
    scope: &Scope,
) -> Result<Baseline, BaselineError> {
    let got = aws
        .lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .map_err(|e| {
            let mut e = classify("GetFunction", "lambda:GetFunction", function, e);
            if e.kind == AwsErrorKind::NotFound {
                e.message = format!("function `{function}` does not exist in {}", aws.region);
                e.hint = "check the name and --region".into();
            }
            e
        })?;
    let c = got
        .configuration()
        .cloned()
        .unwrap_or_else(|| FunctionConfiguration::builder().build());
    let arn = c.function_arn().unwrap_or_default().to_string();
    let name = c.function_name().unwrap_or(function).to_string();
    let configuration = Configuration {
        runtime: c.runtime().map(|r| r.as_str().to_string()),
        handler: c.handler().map(str::to_string),
        role: c.role().unwrap_or_default().to_string(),
        timeout: c.timeout(),
        memory_size: c.memory_size(),
        description: c.description().unwrap_or_default().to_string(),
        layers: layers(&c),
        environment: hashes(key, &c),
        code_sha256: c.code_sha256().unwrap_or_default().to_string(),
    };
    let tags: BTreeMap<String, String> = got
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();

    let mut versions = BTreeMap::new();
    let mut pages = aws
        .lambda
        .list_versions_by_function()
        .function_name(&name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                "ListVersionsByFunction",
                "lambda:ListVersionsByFunction",
                &arn,
                e,
            )
        })?;
        for v in page.versions() {
            let Some(number) = v.version().filter(|n| *n != model::LATEST) else {
                continue;
            };
            versions.insert(number.to_string(), version_of(key, v));
        }
    }

    let mut aliases = BTreeMap::new();
    let mut pages = aws
        .lambda
        .list_aliases()
        .function_name(&name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListAliases", "lambda:ListAliases", &arn, e))?;
        for a in page.aliases() {
            if let (Some(n), Some(v)) = (a.name(), a.function_version()) {
                aliases.insert(n.to_string(), v.to_string());
            }
        }
    }

    let mut qualifiers = vec![model::LATEST.to_string()];
    qualifiers.extend(aliases.keys().cloned());
    let mut policies = BTreeMap::new();
    for q in qualifiers.iter().chain(versions.keys()) {
        let statements = statements(aws, &name, &arn, q).await?;
        if !statements.is_empty() {
            policies.insert(q.clone(), statements);
        }
    }

    let mut urls = BTreeMap::new();
    for q in &qualifiers {
        if let Some(u) = url(aws, &name, &arn, q).await? {
            urls.insert(q.clone(), u);
        }
    }

    let mappings = mappings(aws, &arn).await?;
    let role = role(aws, &configuration.role).await?;

    let mut deploy_users = BTreeMap::new();
    for user in &scope.deploy_users {
        deploy_users.insert(user.clone(), access_keys(aws, user).await?);
    }

    let role_functions = functions_on_role(aws, &configuration.role).await?;
    let mut targets: Vec<String> = role_functions.iter().map(|(_, a)| a.clone()).collect();
    if !targets.contains(&arn) {
        targets.push(arn.clone());
    }
    let rules = rules_targeting(aws, &targets).await?;

    Ok(Baseline {
        format: model::FORMAT,
        taken_at: crate::time::now_rfc3339(),
        account: account.to_string(),
        region: aws.region.clone(),
        function: name,
        function_arn: arn,
        env_key_id: key.id(),
        configuration,
        versions,
        aliases,
        policies,
        urls,
        mappings,
        tags,
        role,
        deploy_users,
        role_functions: role_functions.into_iter().map(|(n, _)| n).collect(),
        rules,
        packages: BTreeMap::new(),
    })
}

/// The statements of one qualifier's resource policy, by Sid.
pub async fn statements(
    aws: &Aws,
    name: &str,
    arn: &str,
    q: &str,
) -> Result<BTreeMap<String, Value>, BaselineError> {
    match aws
        .lambda
        .get_policy()
        .function_name(name)
        .set_qualifier(param(q))
        .send()
        .await
    {
        Ok(p) => {
            let doc: Value = p
                .policy()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or(Value::Null);
            let list = match &doc["Statement"] {
                Value::Array(a) => a.clone(),
                Value::Object(_) => vec![doc["Statement"].clone()],
                _ => Vec::new(),
            };
            Ok(list
                .into_iter()
                .enumerate()
                .map(|(i, st)| {
                    let sid = st["Sid"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("#{i}"));
                    (sid, st)
                })
                .collect())
        }
        Err(e) => {
            let e = classify("GetPolicy", "lambda:GetPolicy", format!("{arn}:{q}"), e);
            if e.kind == AwsErrorKind::NotFound {
                Ok(BTreeMap::new())
            } else {
                Err(e.into())
            }
        }
    }
}

/// One qualifier's function URL (`None`: there is none).
pub async fn url(
    aws: &Aws,
    name: &str,
    arn: &str,
    q: &str,
) -> Result<Option<UrlConfig>, BaselineError> {
    match aws
        .lambda
        .get_function_url_config()
        .function_name(name)
        .set_qualifier(param(q))
        .send()
        .await
    {
        Ok(u) => Ok(Some(UrlConfig {
            auth_type: u.auth_type().as_str().to_string(),
            cors: u
                .cors()
                .map(|c| {
                    serde_json::json!({
                        "AllowCredentials": c.allow_credentials(),
                        "AllowHeaders": c.allow_headers(),
                        "AllowMethods": c.allow_methods(),
                        "AllowOrigins": c.allow_origins(),
                        "ExposeHeaders": c.expose_headers(),
                        "MaxAge": c.max_age(),
                    })
                })
                .unwrap_or(Value::Null),
        })),
        Err(e) => {
            let e = classify(
                "GetFunctionUrlConfig",
                "lambda:GetFunctionUrlConfig",
                format!("{arn}:{q}"),
                e,
            );
            if e.kind == AwsErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e.into())
            }
        }
    }
}

/// The account's event source mappings onto this function, any qualifier.
pub async fn mappings(aws: &Aws, arn: &str) -> Result<BTreeMap<String, Mapping>, BaselineError> {
    let mut out = BTreeMap::new();
    let mut pages = aws
        .lambda
        .list_event_source_mappings()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                "ListEventSourceMappings",
                "lambda:ListEventSourceMappings",
                arn,
                e,
            )
        })?;
        // A mapping being deleted is going away (LocalStack lists it for a
        // while after DeleteEventSourceMapping, as AWS does).
        for m in page
            .event_source_mappings()
            .iter()
            .filter(|m| m.state() != Some("Deleting"))
        {
            let q = m.function_arn().and_then(|a| qualifier_of(arn, a));
            if let (Some(q), Some(uuid), Some(source)) = (q, m.uuid(), m.event_source_arn()) {
                out.insert(
                    Mapping::key(source, &q),
                    Mapping {
                        uuid: uuid.to_string(),
                        source_arn: source.to_string(),
                        qualifier: q,
                        enabled: !matches!(m.state(), Some("Disabled" | "Disabling")),
                        batch_size: m.batch_size(),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// The execution role with its trust and policies (`None` when it does not
/// exist: a deleted role is drift, not an error).
pub async fn role(aws: &Aws, arn: &str) -> Result<Option<Role>, BaselineError> {
    let r = iam_role::from_arn(arn);
    let got = match aws.iam.get_role().role_name(&r.name).send().await {
        Ok(g) => g,
        Err(e) => {
            let e = classify("GetRole", "iam:GetRole", arn, e);
            return if e.kind == AwsErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e.into())
            };
        }
    };
    let trust = got
        .role()
        .and_then(|r| r.assume_role_policy_document())
        .map(policy::decode)
        .unwrap_or(Value::Null);
    let mut attached = iam_role::attached(aws, &r).await?;
    attached.sort();
    let inline = iam_role::inline(aws, &r).await?;
    Ok(Some(Role {
        name: r.name,
        arn: arn.to_string(),
        trust,
        inline,
        attached,
    }))
}

/// A user's access key ids, sorted (an unknown user has none).
pub async fn access_keys(aws: &Aws, user: &str) -> Result<Vec<String>, BaselineError> {
    let mut ids = Vec::new();
    let mut pages = aws
        .iam
        .list_access_keys()
        .user_name(user)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => ids.extend(
                page.access_key_metadata()
                    .iter()
                    .filter_map(|k| k.access_key_id().map(str::to_string)),
            ),
            Err(e) => {
                let e = classify("ListAccessKeys", "iam:ListAccessKeys", user, e);
                if e.kind == AwsErrorKind::NotFound {
                    break;
                }
                return Err(e.into());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

/// (name, ARN) of every function of the region on `role`, sorted.
pub async fn functions_on_role(
    aws: &Aws,
    role: &str,
) -> Result<Vec<(String, String)>, BaselineError> {
    let mut out = Vec::new();
    let mut pages = aws.lambda.list_functions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListFunctions", "lambda:ListFunctions", role, e))?;
        for f in page.functions() {
            if f.role() == Some(role) {
                if let (Some(n), Some(a)) = (f.function_name(), f.function_arn()) {
                    out.push((n.to_string(), a.to_string()));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every EventBridge rule (default bus) with a target among `targets`.
pub async fn rules_targeting(
    aws: &Aws,
    targets: &[String],
) -> Result<BTreeMap<String, Rule>, BaselineError> {
    let mut names = std::collections::BTreeSet::new();
    for t in targets {
        let mut token = None;
        loop {
            let page = aws
                .events
                .list_rule_names_by_target()
                .target_arn(t)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    classify(
                        "ListRuleNamesByTarget",
                        "events:ListRuleNamesByTarget",
                        t,
                        e,
                    )
                })?;
            names.extend(page.rule_names().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    let mut out = BTreeMap::new();
    for n in names {
        let d = match aws.events.describe_rule().name(&n).send().await {
            Ok(d) => d,
            Err(e) => {
                let e = classify("DescribeRule", "events:DescribeRule", &n, e);
                if e.kind == AwsErrorKind::NotFound {
                    continue;
                }
                return Err(e.into());
            }
        };
        let t = aws
            .events
            .list_targets_by_rule()
            .rule(&n)
            .send()
            .await
            .map_err(|e| classify("ListTargetsByRule", "events:ListTargetsByRule", &n, e))?;
        out.insert(
            n.clone(),
            Rule {
                arn: d.arn().unwrap_or_default().to_string(),
                schedule: d.schedule_expression().map(str::to_string),
                event_pattern: d.event_pattern().map(str::to_string),
                enabled: d.state().map(|s| s.as_str()) != Some("DISABLED"),
                targets: t
                    .targets()
                    .iter()
                    .map(|x| (x.id().to_string(), x.arn().to_string()))
                    .collect(),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_of_arns() {
        let f = "arn:aws:lambda:us-east-1:1:function:demo";
        assert_eq!(qualifier_of(f, f).as_deref(), Some("$LATEST"));
        assert_eq!(
            qualifier_of(f, &format!("{f}:live")).as_deref(),
            Some("live")
        );
        assert_eq!(qualifier_of(f, &format!("{f}-2")), None);
        assert_eq!(qualifier_of(f, &format!("{f}:a:b")), None);
        assert_eq!(param("$LATEST"), None);
        assert_eq!(param("3").as_deref(), Some("3"));
    }
}
