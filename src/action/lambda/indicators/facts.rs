//! What the indicators are judged from: one read of the function, its
//! qualifiers, its doors, its role, the functions sharing the role, the
//! rules that fire them and the named users' keys. Read-only: every call
//! here is on the dry-run guard's read list.

use std::collections::BTreeMap;

use aws_sdk_eventbridge::types::RuleState;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::action::iam::role;
use crate::action::lambda::function::FunctionRef;
use crate::action::lambda::public_access::reading;
use crate::action::lambda::qualifiers::{self, Qualifier};
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};

/// One version of the function (`$LATEST` included).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub version: String,
    pub arn: String,
    pub code_sha256: String,
    pub last_modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    pub arn: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub uuid: String,
    pub arn: String,
    pub source_arn: Option<String>,
    pub enabled: bool,
}

/// Another function using the same execution role.
#[derive(Debug, Clone, PartialEq)]
pub struct Sharer {
    pub name: String,
    pub arn: String,
    pub last_modified: Option<DateTime<Utc>>,
    pub code_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub arn: String,
    pub enabled: bool,
    pub schedule: Option<String>,
    pub pattern: Option<String>,
    /// The function it invokes.
    pub target: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub user: String,
    pub user_arn: String,
    pub id: String,
    pub active: bool,
    pub created: Option<DateTime<Utc>>,
}

/// Everything the heuristics look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub account: String,
    pub function_arn: String,
    pub role_arn: Option<String>,
    pub layers: Vec<String>,
    /// Variable names only (values can hold secrets).
    pub env_names: Vec<String>,
    /// `*_ENDPOINT` variables and where they point: the address is itself
    /// an indicator, and the only value ever shown.
    pub endpoints: BTreeMap<String, String>,
    pub versions: Vec<Version>,
    pub aliases: Vec<Alias>,
    /// (qualifier label, statement).
    pub statements: Vec<(String, Value)>,
    /// (qualifier label, URL configuration as `reading::url_value`).
    pub urls: Vec<(String, Value)>,
    pub mappings: Vec<Mapping>,
    pub sharers: Vec<Sharer>,
    pub rules: Vec<Rule>,
    /// Inline policy name → document.
    pub inline_policies: BTreeMap<String, Value>,
    pub keys: Vec<Key>,
}

/// Lambda's `LastModified` (`2026-11-23T08:00:00.000+0000`).
pub fn parse_lambda_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn smithy_time(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    let t = t?;
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Versions (with their code) and aliases, from the one qualifier
/// listing every Lambda action shares.
async fn versions_and_aliases(
    cx: &StepContext<'_>,
    f: &FunctionRef,
) -> Result<(Vec<Version>, Vec<Alias>), ActionError> {
    let q = qualifiers::list(cx, f).await?;
    let versions = q
        .listed
        .into_iter()
        .map(|v| Version {
            version: v.version,
            arn: v.arn,
            code_sha256: v.code_sha256,
            last_modified: v.last_modified.as_deref().and_then(parse_lambda_time),
        })
        .collect();
    let aliases = q
        .aliases
        .into_iter()
        .map(|(name, version)| Alias {
            arn: format!("{}:{name}", f.arn),
            name,
            version,
        })
        .collect();
    Ok((versions, aliases))
}

/// Every mapping whose function is this one (qualified or not), from the
/// region's listing, read once in the run while planning: a mapping on an
/// alias or version is listed under that qualifier's ARN, which a
/// `FunctionName` filter does not match, so the whole region is read, and
/// each target reading it again was N times the pages for N targets.
async fn mappings(cx: &StepContext<'_>, f: &FunctionRef) -> Result<Vec<Mapping>, ActionError> {
    let all = cx
        .shared_read(
            "ListEventSourceMappings (the region)".into(),
            // An `Arc`: each target's read takes the listing, not a copy.
            async { region_mappings(cx).await.map(std::sync::Arc::new) },
        )
        .await?;
    Ok(all
        .iter()
        .filter(|(function, _)| Qualifier::of_arn(f, function).is_some())
        .map(|(_, m)| m.clone())
        .collect())
}

/// Every mapping of the region, with the (possibly qualified) ARN of the
/// function it feeds.
async fn region_mappings(cx: &StepContext<'_>) -> Result<Vec<(String, Mapping)>, ActionError> {
    let mut out = Vec::new();
    let mut pages = cx
        .aws
        .lambda
        .list_event_source_mappings()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                "ListEventSourceMappings",
                "lambda:ListEventSourceMappings",
                "the region's event source mappings",
                e,
            )
        })?;
        for m in page.event_source_mappings() {
            let uuid = m.uuid().unwrap_or_default().to_string();
            out.push((
                m.function_arn().unwrap_or_default().to_string(),
                Mapping {
                    arn: m
                        .event_source_mapping_arn()
                        .map(str::to_string)
                        .unwrap_or_else(|| uuid.clone()),
                    uuid,
                    source_arn: m.event_source_arn().map(str::to_string),
                    enabled: !matches!(m.state(), Some("Disabled" | "Disabling")),
                },
            ));
        }
    }
    Ok(out)
}

/// The EventBridge rules (default bus) that invoke `function_arn`.
pub async fn rules_for(cx: &StepContext<'_>, function_arn: &str) -> Result<Vec<Rule>, ActionError> {
    let ev = &cx.aws.events;
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ev
            .list_rule_names_by_target()
            .target_arn(function_arn)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                classify(
                    "ListRuleNamesByTarget",
                    "events:ListRuleNamesByTarget",
                    function_arn,
                    e,
                )
            })?;
        names.extend(out.rule_names().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    let mut out = Vec::new();
    for name in names {
        out.push(describe_rule(cx, &name, function_arn).await?);
    }
    Ok(out)
}

pub async fn describe_rule(
    cx: &StepContext<'_>,
    name: &str,
    target: &str,
) -> Result<Rule, ActionError> {
    let r = cx
        .aws
        .events
        .describe_rule()
        .name(name)
        .send()
        .await
        .map_err(|e| classify("DescribeRule", "events:DescribeRule", name, e))?;
    Ok(Rule {
        name: name.to_string(),
        arn: r.arn().unwrap_or(name).to_string(),
        enabled: r.state() == Some(&RuleState::Enabled),
        schedule: r.schedule_expression().map(str::to_string),
        pattern: r.event_pattern().map(str::to_string),
        target: target.to_string(),
    })
}

async fn keys(cx: &StepContext<'_>, user: &str) -> Result<Vec<Key>, ActionError> {
    let partition = cx.caller.arn.split(':').nth(1).unwrap_or("aws");
    let user_arn = format!("arn:{partition}:iam::{}:user/{user}", cx.caller.account);
    let mut out = Vec::new();
    let mut pages = cx
        .aws
        .iam
        .list_access_keys()
        .user_name(user)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let mut e = classify("ListAccessKeys", "iam:ListAccessKeys", user, e);
            if e.kind == AwsErrorKind::NotFound {
                e.message = format!("IAM user `{user}` does not exist ({})", e.message);
                e.hint = "check the `users` parameter: it names IAM users of this account".into();
            }
            ActionError::from(e)
        })?;
        for k in page.access_key_metadata() {
            out.push(Key {
                user: user.to_string(),
                user_arn: user_arn.clone(),
                id: k.access_key_id().unwrap_or_default().to_string(),
                active: k.status().map(|s| s.as_str()) == Some("Active"),
                created: smithy_time(k.create_date()),
            });
        }
    }
    Ok(out)
}

/// Reads every fact. `users` are IAM user names whose keys to look at.
pub async fn read(
    cx: &StepContext<'_>,
    f: &FunctionRef,
    users: &[String],
) -> Result<Facts, ActionError> {
    // GetFunction, shared with describe and the throttle while planning:
    // its own quota (100/s), not the control plane's 15.
    let got = crate::action::lambda::concurrency::get_planned(cx, f).await?;
    let Some(conf) = got.configuration() else {
        return Err(AwsError::new(
            "GetFunction",
            &f.arn,
            AwsErrorKind::Other,
            "GetFunction answered without the function's configuration",
            "check the endpoint: it does not behave like AWS Lambda",
        )
        .into());
    };
    let mut facts = Facts {
        account: cx.caller.account.clone(),
        function_arn: f.arn.clone(),
        role_arn: conf.role().map(str::to_string),
        layers: conf
            .layers()
            .iter()
            .filter_map(|l| l.arn().map(str::to_string))
            .collect(),
        ..Facts::default()
    };
    if let Some(vars) = conf.environment().and_then(|e| e.variables()) {
        let mut names: Vec<String> = vars.keys().cloned().collect();
        names.sort();
        for n in &names {
            if n.ends_with("_ENDPOINT") || n.ends_with("_ENDPOINT_URL") {
                if let Some(v) = vars.get(n) {
                    facts.endpoints.insert(n.clone(), v.clone());
                }
            }
        }
        facts.env_names = names;
    }
    (facts.versions, facts.aliases) = versions_and_aliases(cx, f).await?;
    // The same reading `lambda.remove_public_access` makes: every
    // qualifier's statements and URL.
    let r = reading::read(cx, f).await;
    let state = r.into_state()?;
    for (q, sts) in state.statements {
        for st in sts {
            facts.statements.push((q.clone(), st));
        }
    }
    facts.urls = state.function_urls.into_iter().collect();
    facts.mappings = mappings(cx, f).await?;
    if let Some(role_arn) = &facts.role_arn {
        let inventory = cx.run.functions(cx.aws).await?;
        for s in inventory
            .functions
            .iter()
            .filter(|s| s.role.as_deref() == Some(role_arn.as_str()) && s.arn != f.arn)
        {
            facts.sharers.push(Sharer {
                name: s.name.clone(),
                arn: s.arn.clone(),
                last_modified: s.last_modified.as_deref().and_then(parse_lambda_time),
                code_sha256: s.code_sha256.clone(),
            });
        }
        let r = role::from_arn(role_arn);
        match role::inline_planned(cx, &r).await {
            Ok(p) => facts.inline_policies = p,
            // A role in another account (or already gone) has nothing to
            // judge here; the quarantine step reports it.
            Err(crate::action::ActionError::Aws(e)) if e.kind == AwsErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // Side by side, each function's rules read once in the run: with N
    // functions on one role every target has N - 1 sharers, and reading
    // each target's own way was N² calls at EventBridge's pace.
    let rules = futures::future::try_join_all(
        facts
            .sharers
            .iter()
            .map(|s| cx.shared_read(format!("rules {}", s.arn), rules_for(cx, &s.arn))),
    )
    .await?;
    facts.rules.extend(rules.into_iter().flatten());
    for u in users {
        facts.keys.extend(keys(cx, u).await?);
    }
    Ok(facts)
}

/// The facts as a document for the evidence bucket (variable names only;
/// endpoints are indicators).
pub fn to_json(f: &Facts) -> Value {
    json!({
        "function_arn": f.function_arn,
        "role_arn": f.role_arn,
        "layers": f.layers,
        "environment_variable_names": f.env_names,
        "endpoints": f.endpoints,
        "versions": f.versions.iter().map(|v| json!({"version": v.version, "arn": v.arn, "code_sha256": v.code_sha256, "last_modified": v.last_modified.map(|t| t.to_rfc3339())})).collect::<Vec<_>>(),
        "aliases": f.aliases.iter().map(|a| json!({"name": a.name, "arn": a.arn, "version": a.version})).collect::<Vec<_>>(),
        "mappings": f.mappings.iter().map(|m| json!({"uuid": m.uuid, "source_arn": m.source_arn, "enabled": m.enabled})).collect::<Vec<_>>(),
        "functions_sharing_the_role": f.sharers.iter().map(|s| json!({"arn": s.arn, "last_modified": s.last_modified.map(|t| t.to_rfc3339())})).collect::<Vec<_>>(),
        "rules": f.rules.iter().map(|r| json!({"name": r.name, "arn": r.arn, "enabled": r.enabled, "target": r.target})).collect::<Vec<_>>(),
        "inline_policies": f.inline_policies.keys().collect::<Vec<_>>(),
        "access_keys": f.keys.iter().map(|k| json!({"user": k.user, "id": k.id, "active": k.active, "created": k.created.map(|t| t.to_rfc3339())})).collect::<Vec<_>>(),
    })
}
