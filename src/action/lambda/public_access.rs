//! `lambda.remove_public_access`: delete the function URL and remove every
//! resource-policy statement that lets in anyone, another account, or a
//! service without a `SourceArn`/`SourceAccount` condition. Each removed
//! thing is recorded verbatim (the change's `before`), so `recover` can put
//! it back, and re-opening it is held back as risky.

use async_trait::async_trait;
use aws_sdk_lambda::types::{Cors, FunctionUrlAuthType, InvokeMode};
use serde_json::{json, Map, Value};

use super::function::{self, FunctionRef};
use crate::action::spec::{ActionSpec, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Check, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::aws::AwsErrorKind;
use crate::plan::Change;

pub struct RemovePublicAccess;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.remove_public_access",
    summary: "Delete the function URL and remove public or cross-account resource-policy statements (recorded verbatim).",
    mutating: true,
    stops_harm: true,
    params: &[ParamDef::new("function", ValueType::String, "the function's name or ARN").check(function::check_literal)],
    outputs: &[
        OutputDef::new("function_arn", ValueType::String, "the function's ARN"),
        OutputDef::new("removed_statements", ValueType::List, "Sids of the statements this step removes"),
        OutputDef::new("kept_statements", ValueType::List, "Sids of the statements that stay (not public)"),
    ],
    iam_actions: &[
        "lambda:GetFunctionUrlConfig",
        "lambda:DeleteFunctionUrlConfig",
        "lambda:CreateFunctionUrlConfig",
        "lambda:GetPolicy",
        "lambda:RemovePermission",
        "lambda:AddPermission",
    ],
};

const URL: &str = "function_url";
const STATEMENT: &str = "policy_statement:";

async fn url_config(cx: &StepContext<'_>, f: &FunctionRef) -> Result<Value, ActionError> {
    match cx
        .aws
        .lambda
        .get_function_url_config()
        .function_name(&f.name)
        .send()
        .await
    {
        Ok(c) => {
            let cors = c.cors().map(|c| {
                json!({
                    "AllowCredentials": c.allow_credentials(),
                    "AllowHeaders": c.allow_headers(),
                    "AllowMethods": c.allow_methods(),
                    "AllowOrigins": c.allow_origins(),
                    "ExposeHeaders": c.expose_headers(),
                    "MaxAge": c.max_age(),
                })
            });
            // The address is not part of the configuration: a recreated URL
            // gets a new one, which recovery reports rather than compares.
            Ok(json!({
                "AuthType": c.auth_type().as_str(),
                "InvokeMode": c.invoke_mode().map(|m| m.as_str()),
                "Cors": cors,
            }))
        }
        Err(e) => {
            let e = classify(
                "GetFunctionUrlConfig",
                "lambda:GetFunctionUrlConfig",
                &f.arn,
                e,
            );
            if e.kind == AwsErrorKind::NotFound {
                Ok(Value::Null)
            } else {
                Err(e.into())
            }
        }
    }
}

async fn statements(cx: &StepContext<'_>, f: &FunctionRef) -> Result<Vec<Value>, ActionError> {
    match cx
        .aws
        .lambda
        .get_policy()
        .function_name(&f.name)
        .send()
        .await
    {
        Ok(p) => {
            let doc: Value = p
                .policy()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or(Value::Null);
            Ok(match &doc["Statement"] {
                Value::Array(a) => a.clone(),
                Value::Null => vec![],
                one => vec![one.clone()],
            })
        }
        Err(e) => {
            let e = classify("GetPolicy", "lambda:GetPolicy", &f.arn, e);
            if e.kind == AwsErrorKind::NotFound {
                Ok(vec![])
            } else {
                Err(e.into())
            }
        }
    }
}

/// Looks a condition key up whatever its operator and letter case.
fn condition(st: &Value, key: &str) -> Option<String> {
    st["Condition"].as_object()?.values().find_map(|ops| {
        ops.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    })
}

/// Why a statement opens the function to the outside; `None` when it does not.
pub fn public_reason(st: &Value, account: &str) -> Option<String> {
    let p = &st["Principal"];
    if p == "*" || p["AWS"] == "*" {
        return Some("its principal is `*` (anyone)".into());
    }
    if let Some(aws) = p["AWS"].as_str() {
        let owner = aws
            .strip_prefix("arn:")
            .and_then(|r| r.split(':').nth(3))
            .unwrap_or(aws);
        if owner != account {
            return Some(format!("it lets in another account ({owner})"));
        }
    }
    if let Some(service) = p["Service"].as_str() {
        if condition(st, "AWS:SourceArn").is_none() && condition(st, "AWS:SourceAccount").is_none()
        {
            return Some(format!("it lets {service} invoke on behalf of any account (no SourceArn or SourceAccount condition)"));
        }
    }
    None
}

fn sid(st: &Value) -> String {
    st["Sid"].as_str().unwrap_or("(no sid)").to_string()
}

async fn add_statement(
    cx: &StepContext<'_>,
    f: &FunctionRef,
    st: &Value,
) -> Result<(), ActionError> {
    let principal = match &st["Principal"] {
        Value::String(s) => s.clone(),
        p => p["Service"]
            .as_str()
            .or_else(|| p["AWS"].as_str())
            .map(|a| {
                a.strip_prefix("arn:")
                    .and_then(|r| r.split(':').nth(3))
                    .map(str::to_string)
                    .unwrap_or_else(|| a.to_string())
            })
            .unwrap_or_else(|| "*".into()),
    };
    let action = match &st["Action"] {
        Value::String(a) => a.clone(),
        Value::Array(a) => a
            .first()
            .and_then(Value::as_str)
            .unwrap_or("lambda:InvokeFunction")
            .to_string(),
        _ => "lambda:InvokeFunction".into(),
    };
    let mut req = cx
        .aws
        .lambda
        .add_permission()
        .function_name(&f.name)
        .statement_id(sid(st))
        .action(action)
        .principal(principal)
        .set_source_arn(condition(st, "AWS:SourceArn"))
        .set_source_account(condition(st, "AWS:SourceAccount"))
        .set_principal_org_id(condition(st, "aws:PrincipalOrgID"));
    if let Some(t) = condition(st, "lambda:FunctionUrlAuthType") {
        req = req.function_url_auth_type(FunctionUrlAuthType::from(t.as_str()));
    }
    req.send()
        .await
        .map_err(|e| classify("AddPermission", "lambda:AddPermission", &f.arn, e))?;
    Ok(())
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

#[async_trait]
impl Action for RemovePublicAccess {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let f = function::resolve(cx.str_arg("function")?, cx.caller, &cx.aws.region)?;
        let url = url_config(cx, &f).await?;
        let statements = statements(cx, &f).await?;
        Ok(Observation {
            target: f.arn,
            state: json!({"function_url": url, "statements": statements}),
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let mut changes = Vec::new();
        let url = &observed.state["function_url"];
        if !url.is_null() {
            changes.push(Change::new(
                &observed.target,
                URL,
                url.clone(),
                Value::Null,
                format!(
                    "contain: delete the function URL (AuthType {})",
                    url["AuthType"].as_str().unwrap_or("?")
                ),
            ));
        }
        let (mut removed, mut kept) = (Vec::new(), Vec::new());
        for st in observed.state["statements"]
            .as_array()
            .into_iter()
            .flatten()
        {
            match public_reason(st, &cx.caller.account) {
                Some(why) => {
                    removed.push(sid(st));
                    changes.push(Change::new(
                        &observed.target,
                        format!("{STATEMENT}{}", sid(st)),
                        st.clone(),
                        Value::Null,
                        format!("contain: remove the statement: {why}"),
                    ));
                }
                None => kept.push(sid(st)),
            }
        }
        let mut outputs = Map::new();
        outputs.insert("function_arn".into(), json!(observed.target));
        outputs.insert("removed_statements".into(), json!(removed));
        outputs.insert("kept_statements".into(), json!(kept));
        Ok(Planned {
            changes,
            outputs,
            note: None,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        let f = function::from_arn(&change.target)?;
        let gone_is_done = |r: Result<(), crate::aws::AwsError>| match r {
            Err(e) if e.kind == AwsErrorKind::NotFound => Ok(()),
            other => other.map_err(ActionError::from),
        };
        if change.attribute == URL {
            if change.after.is_null() {
                let r = cx
                    .aws
                    .lambda
                    .delete_function_url_config()
                    .function_name(&f.name)
                    .send()
                    .await;
                return gone_is_done(r.map(|_| ()).map_err(|e| {
                    classify(
                        "DeleteFunctionUrlConfig",
                        "lambda:DeleteFunctionUrlConfig",
                        &f.arn,
                        e,
                    )
                }));
            }
            let c = &change.after;
            let cors = c["Cors"].as_object().map(|o| {
                Cors::builder()
                    .set_allow_credentials(o.get("AllowCredentials").and_then(Value::as_bool))
                    .set_allow_headers(o.get("AllowHeaders").and_then(strings))
                    .set_allow_methods(o.get("AllowMethods").and_then(strings))
                    .set_allow_origins(o.get("AllowOrigins").and_then(strings))
                    .set_expose_headers(o.get("ExposeHeaders").and_then(strings))
                    .set_max_age(
                        o.get("MaxAge")
                            .and_then(Value::as_i64)
                            .and_then(|n| i32::try_from(n).ok()),
                    )
                    .build()
            });
            cx.aws
                .lambda
                .create_function_url_config()
                .function_name(&f.name)
                .auth_type(FunctionUrlAuthType::from(
                    c["AuthType"].as_str().unwrap_or("AWS_IAM"),
                ))
                .set_invoke_mode(c["InvokeMode"].as_str().map(InvokeMode::from))
                .set_cors(cors)
                .send()
                .await
                .map_err(|e| {
                    classify(
                        "CreateFunctionUrlConfig",
                        "lambda:CreateFunctionUrlConfig",
                        &f.arn,
                        e,
                    )
                })?;
            return Ok(());
        }
        if let Some(sid) = change.attribute.strip_prefix(STATEMENT) {
            if change.after.is_null() {
                let r = cx
                    .aws
                    .lambda
                    .remove_permission()
                    .function_name(&f.name)
                    .statement_id(sid)
                    .send()
                    .await;
                return gone_is_done(r.map(|_| ()).map_err(|e| {
                    classify("RemovePermission", "lambda:RemovePermission", &f.arn, e)
                }));
            }
            return add_statement(cx, &f, &change.after).await;
        }
        Err(ActionError::input(
            format!("unknown attribute `{}`", change.attribute),
            "the journal was edited or damaged",
        ))
    }

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        attribute: &str,
    ) -> Result<Value, ActionError> {
        let f = function::from_arn(target)?;
        if attribute == URL {
            return url_config(cx, &f).await;
        }
        if let Some(want) = attribute.strip_prefix(STATEMENT) {
            let all = statements(cx, &f).await?;
            return Ok(all
                .into_iter()
                .find(|s| sid(s) == want)
                .unwrap_or(Value::Null));
        }
        Err(ActionError::input(
            format!("unknown attribute `{attribute}`"),
            "the journal was edited or damaged",
        ))
    }

    async fn restore_risk(
        &self,
        cx: &StepContext<'_>,
        change: &Change,
    ) -> Result<Option<String>, ActionError> {
        if change.after.is_null() {
            return Ok(None);
        }
        if change.attribute == URL {
            return Ok((change.after["AuthType"] == "NONE").then(|| "re-opens public access (a function URL with AuthType NONE; it also gets a new address)".to_string()));
        }
        Ok(public_reason(&change.after, &cx.caller.account)
            .map(|why| format!("re-opens access: {why}")))
    }

    async fn verify(
        &self,
        cx: &StepContext<'_>,
        _observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let now = self.observe(cx).await?;
        let left = self.plan(cx, &now)?.changes;
        let url = left.iter().any(|c| c.attribute == URL);
        let public: Vec<&str> = left
            .iter()
            .filter_map(|c| c.attribute.strip_prefix(STATEMENT))
            .collect();
        Ok(vec![
            Check {
                name: "no function URL".into(),
                target: now.target.clone(),
                passed: !url,
                detail: if url {
                    "a function URL still exists".into()
                } else {
                    "no function URL".into()
                },
            },
            Check {
                name: "no public statement".into(),
                target: now.target,
                passed: public.is_empty(),
                detail: if public.is_empty() {
                    "no public or cross-account statement remains".into()
                } else {
                    format!("still present: {}", public.join(", "))
                },
            },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_statements_are_recognised() {
        let me = "111122223333";
        assert!(public_reason(&json!({"Principal": "*"}), me).is_some());
        assert!(public_reason(
            &json!({"Principal": {"AWS": "arn:aws:iam::444455556666:root"}}),
            me
        )
        .is_some());
        assert!(public_reason(
            &json!({"Principal": {"AWS": "arn:aws:iam::111122223333:root"}}),
            me
        )
        .is_none());
        assert!(
            public_reason(&json!({"Principal": {"Service": "s3.amazonaws.com"}}), me).is_some()
        );
        let scoped = json!({"Principal": {"Service": "s3.amazonaws.com"}, "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::b"}}});
        assert!(public_reason(&scoped, me).is_none());
    }
}
