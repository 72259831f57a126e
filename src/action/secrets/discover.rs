//! `secrets.discover`: the Secrets Manager secrets and SSM parameters a
//! function can read, and plaintext secrets in its environment (by name).
//!
//! Sources: environment variables whose value names a secret or parameter
//! (the value is read only to resolve the reference: it is never stored,
//! output or audited), `GetSecretValue` / `GetParameter*` statements of the
//! role's policies (wildcards expanded against what exists), and the
//! playbook's own lists.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{value::SecretValue, wildcard_match, SecretArgs};
use crate::action::iam::role;
use crate::action::lambda::function;
use crate::action::spec::{ActionSpec, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::aws::AwsErrorKind;
use crate::plan::Change;

pub struct Discover;

static SPEC: ActionSpec = ActionSpec {
    name: "secrets.discover",
    summary: "Find the Secrets Manager secrets and SSM parameters the function can read, and plaintext secrets in its environment (read-only).",
    mutating: false,
    stops_harm: false,
    params: &[
        ParamDef::new("function", ValueType::String, "the function's name or ARN")
            .check(function::check_literal)
            .parts(function::check_part),
        ParamDef::new("secrets", ValueType::List, "more secret names or ARNs to include")
            .optional(),
        ParamDef::new("parameters", ValueType::List, "more SSM parameter names to include")
            .optional(),
    ],
    outputs: &[
        OutputDef::new("secrets", ValueType::List, "ARNs of the secrets the function can read (as given, when one does not exist)"),
        OutputDef::new("parameters", ValueType::List, "names of the SSM parameters the function can read"),
        OutputDef::new("plaintext_findings", ValueType::List, "names of environment variables that look like a plaintext secret (never their values)"),
    ],
    iam_actions: &[
        "lambda:GetFunction",
        "iam:ListAttachedRolePolicies",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
        "secretsmanager:ListSecrets",
        "ssm:DescribeParameters",
    ],
};

/// What exists in the account: secrets (name → ARN) and parameter names.
struct Inventory {
    secrets: BTreeMap<String, String>,
    parameters: Vec<String>,
}

async fn inventory(cx: &StepContext<'_>) -> Result<Inventory, ActionError> {
    let mut secrets = BTreeMap::new();
    let mut pages = cx.aws.secretsmanager.list_secrets().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| classify("ListSecrets", "secretsmanager:ListSecrets", "secrets", e))?;
        for s in page.secret_list() {
            if let (Some(n), Some(a)) = (s.name(), s.arn()) {
                secrets.insert(n.to_string(), a.to_string());
            }
        }
    }
    let mut parameters = Vec::new();
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
        parameters.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name().map(str::to_string)),
        );
    }
    parameters.sort();
    Ok(Inventory {
        secrets,
        parameters,
    })
}

/// The ARN a parameter has in policies (`parameter/a/b` for `/a/b` and `a`).
fn parameter_arn(cx: &StepContext<'_>, name: &str) -> String {
    let partition = cx.caller.arn.split(':').nth(1).unwrap_or("aws");
    format!(
        "arn:{partition}:ssm:{}:{}:parameter/{}",
        cx.aws.region,
        cx.caller.account,
        name.trim_start_matches('/')
    )
}

/// A secret named by ARN (with or without Secrets Manager's 6-character
/// suffix) or by name.
fn find_secret<'a>(inv: &'a Inventory, reference: &str) -> Option<&'a String> {
    inv.secrets.get(reference).or_else(|| {
        inv.secrets.values().find(|arn| {
            *arn == reference
                || arn
                    .strip_prefix(reference)
                    .is_some_and(|s| s.len() == 7 && s.starts_with('-'))
        })
    })
}

/// Where the function's readable secrets come from, per resource.
#[derive(Default)]
struct Found {
    secrets: BTreeMap<String, Vec<String>>,
    parameters: BTreeMap<String, Vec<String>>,
}

impl Found {
    fn secret(&mut self, arn: &str, from: String) {
        self.secrets.entry(arn.to_string()).or_default().push(from);
    }
    fn parameter(&mut self, name: &str, from: String) {
        self.parameters
            .entry(name.to_string())
            .or_default()
            .push(from);
    }
}

fn env_reference(inv: &Inventory, found: &mut Found, var: &str, value: &SecretValue) -> bool {
    let v = value.expose().trim();
    let from = format!("environment variable {var}");
    if let Some(arn) = find_secret(inv, v) {
        found.secret(arn, from);
        return true;
    }
    // An ARN of a secret that does not exist: kept, so rotation reports it.
    if v.starts_with("arn:") && v.split(':').nth(2) == Some("secretsmanager") {
        found.secret(v, from);
        return true;
    }
    let as_param = match v.split_once(":parameter") {
        Some((head, rest)) if head.starts_with("arn:") => rest.to_string(),
        _ => v.to_string(),
    };
    if let Some(p) = inv
        .parameters
        .iter()
        .find(|p| **p == as_param || p.trim_start_matches('/') == as_param.trim_start_matches('/'))
    {
        found.parameter(p, from);
        return true;
    }
    false
}

fn as_list(v: &Value) -> Vec<&str> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => vec![s.as_str()],
        _ => vec![],
    }
}

/// Resources an Allow statement grants any of `actions` on.
fn granted<'a>(doc: &'a Value, actions: &[&str]) -> Vec<&'a str> {
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        Value::Null => vec![],
        other => vec![other],
    };
    let mut out = Vec::new();
    for st in statements.into_iter().filter(|s| s["Effect"] == "Allow") {
        let grants = as_list(&st["Action"]).iter().any(|pattern| {
            actions
                .iter()
                .any(|a| wildcard_match(&pattern.to_ascii_lowercase(), &a.to_ascii_lowercase()))
        });
        if grants {
            out.extend(as_list(&st["Resource"]));
        }
    }
    out
}

fn from_policies(
    cx: &StepContext<'_>,
    inv: &Inventory,
    found: &mut Found,
    docs: &[(String, Value)],
) {
    for (policy, doc) in docs {
        let from = format!("policy {policy}");
        for pattern in granted(doc, &["secretsmanager:GetSecretValue"]) {
            for arn in inv
                .secrets
                .values()
                .filter(|arn| wildcard_match(pattern, arn))
            {
                found.secret(arn, from.clone());
            }
        }
        for pattern in granted(doc, &["ssm:GetParameter", "ssm:GetParameters"]) {
            for p in inv
                .parameters
                .iter()
                .filter(|p| wildcard_match(pattern, &parameter_arn(cx, p)))
            {
                found.parameter(p, from.clone());
            }
        }
        // GetParametersByPath on `parameter/app` reads everything under /app/.
        for pattern in granted(doc, &["ssm:GetParametersByPath"]) {
            for p in inv.parameters.iter() {
                let arn = parameter_arn(cx, p);
                let under = format!("{}/*", pattern.trim_end_matches('/'));
                if wildcard_match(pattern, &arn) || wildcard_match(&under, &arn) {
                    found.parameter(p, from.clone());
                }
            }
        }
    }
}

/// Why an environment variable looks like a plaintext secret, if it does.
pub fn plaintext_reason(name: &str, value: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let key_id = v.len() == 20
        && (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v[4..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if key_id {
        return Some("value has the shape of an AWS access key id");
    }
    if [
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "SECRET",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
    ]
    .iter()
    .any(|p| upper.contains(p))
    {
        return Some("name suggests a secret");
    }
    if v.len() >= 20
        && !v.contains(char::is_whitespace)
        && !v.starts_with("arn:")
        && entropy(v) >= 4.0
    {
        return Some("value has high entropy");
    }
    None
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[async_trait]
impl Action for Discover {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let args: function::FunctionArgs = cx.args_as(&SPEC)?;
        let f = args.function.resolve(cx)?;
        let out = cx
            .aws
            .lambda
            .get_function()
            .function_name(&f.name)
            .send()
            .await
            .map_err(|e| {
                let mut e = classify("GetFunction", "lambda:GetFunction", &f.arn, e);
                if e.kind == AwsErrorKind::NotFound {
                    e.message = format!("function `{}` does not exist", f.name);
                }
                ActionError::from(e)
            })?;
        let config = out.configuration();
        let inv = inventory(cx).await?;
        let mut found = Found::default();
        let mut findings = Vec::new();
        // Values are wrapped at once and dropped (wiped) at the end of this
        // block: only variable names leave it.
        {
            let env: Vec<(String, SecretValue)> = config
                .and_then(|c| c.environment())
                .and_then(|e| e.variables())
                .map(|vars| {
                    vars.iter()
                        .map(|(k, v)| (k.clone(), SecretValue::new(v.clone())))
                        .collect()
                })
                .unwrap_or_default();
            for (name, value) in &env {
                if env_reference(&inv, &mut found, name, value) {
                    continue;
                }
                if let Some(why) = plaintext_reason(name, value.expose()) {
                    findings.push(json!({"variable": name, "why": why}));
                }
            }
        }
        findings.sort_by(|a, b| a["variable"].as_str().cmp(&b["variable"].as_str()));
        let role_arn = config.and_then(|c| c.role()).map(str::to_string);
        if let Some(arn) = &role_arn {
            let r = role::from_arn(arn);
            let mut docs = Vec::new();
            for p in role::attached(cx.aws, &r).await? {
                let doc = role::managed_document(cx.aws, &p).await?;
                docs.push((p, doc));
            }
            for (name, doc) in role::inline(cx.aws, &r).await? {
                docs.push((format!("{} (inline)", name), doc));
            }
            // What this incident's quarantine took off the role still
            // counts: the function could read those secrets before it was
            // contained, and a run resumed after the quarantine must not
            // forget them (the journal holds each removed policy's prior
            // state).
            for rec in cx.history.iter().filter(|rec| {
                rec.event == crate::state::JournalEvent::Intent
                    && rec.action == "iam.quarantine_role"
                    && rec.change.target == r.arn
                    && rec.change.after.is_null()
                    && !rec.change.before.is_null()
            }) {
                let attribute = &rec.change.attribute;
                if let Some(policy) = attribute.strip_prefix("attached_policy:") {
                    if !docs.iter().any(|(p, _)| p == policy) {
                        let doc = role::managed_document(cx.aws, policy).await?;
                        docs.push((format!("{policy} (detached by this incident)"), doc));
                    }
                } else if let Some(name) = attribute.strip_prefix("inline_policy:") {
                    docs.push((
                        format!("{name} (inline, deleted by this incident)"),
                        rec.change.before.clone(),
                    ));
                }
            }
            from_policies(cx, &inv, &mut found, &docs);
        }
        let listed: SecretArgs = cx.args_as(&SPEC)?;
        for s in listed.secrets {
            let arn = find_secret(&inv, &s).cloned().unwrap_or(s);
            found.secret(&arn, "playbook".into());
        }
        for p in listed.parameters {
            found.parameter(&p, "playbook".into());
        }
        let secrets: Vec<Value> = found
            .secrets
            .iter()
            .map(|(a, from)| json!({"arn": a, "from": from}))
            .collect();
        let parameters: Vec<Value> = found
            .parameters
            .iter()
            .map(|(n, from)| json!({"name": n, "from": from}))
            .collect();
        Ok(Observation {
            target: f.arn,
            state: json!({
                "role_arn": role_arn,
                "secrets": secrets,
                "parameters": parameters,
                "plaintext_findings": findings,
            }),
        })
    }

    fn plan(&self, _cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let pick = |list: &str, key: &str| -> Vec<Value> {
            observed.state[list]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i[key].clone())
                .collect()
        };
        let secrets = pick("secrets", "arn");
        let parameters = pick("parameters", "name");
        let findings = pick("plaintext_findings", "variable");
        let mut outputs = Map::new();
        outputs.insert("secrets".into(), json!(secrets));
        outputs.insert("parameters".into(), json!(parameters));
        outputs.insert("plaintext_findings".into(), json!(findings));
        let mut note = format!(
            "readable: {} secret(s), {} parameter(s)",
            secrets.len(),
            parameters.len()
        );
        if !findings.is_empty() {
            let names: Vec<&str> = findings.iter().filter_map(Value::as_str).collect();
            note.push_str(&format!(
                "; open item: environment variables that look like plaintext secrets: {} (assume them stolen: rotate them at the source, then move them to Secrets Manager)",
                names.join(", ")
            ));
        }
        Ok(Planned {
            changes: vec![],
            outputs,
            note: Some(note),
        })
    }

    async fn apply(&self, _cx: &StepContext<'_>, _change: &Change) -> Result<(), ActionError> {
        Err(ActionError::input(
            "secrets.discover changes nothing",
            "this is a bug: a read-only action was asked to apply a change",
        ))
    }

    fn undoable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_secrets_are_recognised_by_name_or_shape() {
        assert!(plaintext_reason("DB_PASSWORD", "x").is_some());
        assert!(plaintext_reason("stripe_api_key", "x").is_some());
        assert!(plaintext_reason("KEY_ID", "AKIAIOSFODNN7EXAMPLE").is_some());
        assert!(plaintext_reason("SIGNING", "q8Zr2LmX0vT9kPw4YbN7cHs1").is_some());
        assert!(plaintext_reason("STAGE", "prod").is_none());
        assert!(plaintext_reason("TABLE", "orders-table-production").is_none());
        assert!(plaintext_reason("PASSWORD", "").is_none());
    }

    #[test]
    fn policy_grants_match_action_wildcards() {
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:Get*", "Resource": "arn:s:1"},
            {"Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": ["arn:p:1"]},
            {"Effect": "Deny", "Action": "*", "Resource": "arn:s:2"},
        ]});
        assert_eq!(
            granted(&doc, &["secretsmanager:GetSecretValue"]),
            vec!["arn:s:1"]
        );
        assert_eq!(granted(&doc, &["ssm:GetParameter"]), vec!["arn:p:1"]);
    }
}
