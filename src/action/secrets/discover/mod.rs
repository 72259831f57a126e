//! `secrets.discover`: the Secrets Manager secrets and SSM parameters a
//! function can read, and plaintext secrets in its environment (by name).
//!
//! Sources, each in its own module:
//! - `environment`: variables whose value names a secret or parameter (the
//!   value is read only to resolve the reference: never stored, output or
//!   audited); `plaintext`: the others that look like a secret themselves;
//! - `role_policies` → `policy` → `readable`: the role's policies as they
//!   were before this incident's containment, evaluated like IAM (allows,
//!   unconditional denies, `NotAction`, `NotResource`) over everything
//!   `inventory` lists;
//! - the playbook's own `secrets` and `parameters` lists, kept as given.
//!
//! The set may be larger than what the role can really read (conditions,
//! boundaries, SCPs are not evaluated), never smaller: a secret missed
//! here stays stolen and valid.

mod environment;
mod found;
mod inventory;
mod plaintext;
mod policy;
mod readable;
mod role_policies;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{value::SecretValue, SecretArgs};
use crate::action::lambda::function;
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::aws::AwsErrorKind;
use crate::plan::Change;
use found::Found;
use inventory::Inventory;
use policy::Policies;

pub struct Discover;

static SPEC: ActionSpec = ActionSpec {
    name: "secrets.discover",
    summary: "Find the Secrets Manager secrets and SSM parameters the function can read, and plaintext secrets in its environment (read-only).",
    mutating: false,
    stops_harm: false,
    harm_order: HarmOrder::Access,
    own_state: false,
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
        OutputDef::new("parameters", ValueType::List, "names of the SecureString parameters the function can read (and those the playbook lists)"),
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

fn listed(map: &std::collections::BTreeMap<String, Vec<String>>, key: &str) -> Vec<Value> {
    map.iter()
        .map(|(k, from)| json!({key: k, "from": from}))
        .collect()
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
        let inv = Inventory::read(cx).await?;
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
                if environment::reference(&inv, &mut found, name, value) {
                    continue;
                }
                if let Some(why) = plaintext::reason(name, value.expose()) {
                    findings.push(json!({"variable": name, "why": why}));
                }
            }
        }
        findings.sort_by(|a, b| a["variable"].as_str().cmp(&b["variable"].as_str()));
        let role_arn = config.and_then(|c| c.role()).map(str::to_string);
        if let Some(arn) = &role_arn {
            let docs = role_policies::documents(cx, arn).await?;
            readable::add(cx, &inv, &Policies::new(&docs), &mut found);
        }
        // Named in the playbook: kept as given, whatever they are, so that
        // a stale or wrong reference is reported by the rotation step.
        let listed_args: SecretArgs = cx.args_as(&SPEC)?;
        for s in listed_args.secrets {
            let arn = inv.secret(&s).cloned().unwrap_or(s);
            found.secret(&arn, "playbook".into());
        }
        for p in listed_args.parameters {
            let name = inv.parameter(&p).map_or(p.clone(), |(n, _)| n.clone());
            found.parameter(&name, "playbook".into());
        }
        Ok(Observation {
            target: f.arn,
            state: json!({
                "role_arn": role_arn,
                "secrets": listed(&found.secrets, "arn"),
                "parameters": listed(&found.parameters, "name"),
                "plain_parameters": listed(&found.plain_parameters, "name"),
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
        let names = |v: &[Value]| -> String {
            v.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let secrets = pick("secrets", "arn");
        let parameters = pick("parameters", "name");
        let plain = pick("plain_parameters", "name");
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
        if !plain.is_empty() {
            note.push_str(&format!(
                "; also readable, not SecureString (configuration, not rotated; if one holds a credential, rotate it at the source and make it SecureString): {}",
                names(&plain)
            ));
        }
        if !findings.is_empty() {
            note.push_str(&format!(
                "; open item: environment variables that look like plaintext secrets: {} (assume them stolen: rotate them at the source, then move them to Secrets Manager)",
                names(&findings)
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
