//! `lambda.remove_public_access`: delete every function URL and remove every
//! resource-policy statement that lets in anyone, another account, or a
//! service without a `SourceArn`/`SourceAccount` condition, on `$LATEST`,
//! every alias and every published version: a door left on alias `live` is
//! as open as one on the function. Each removed thing is recorded verbatim
//! (the change's `before`) under an attribute naming its qualifier, so
//! `recover` puts it back exactly where it was, and re-opening it is held
//! back as risky.

pub mod policy;
pub mod reading;

use async_trait::async_trait;
use aws_sdk_lambda::types::{Cors, FunctionUrlAuthType, InvokeMode};
use serde_json::{json, Map, Value};

use super::function::{self, FunctionRef};
use super::qualifiers::{self, Qualifier};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{state_of, Action, ActionError, Check, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::aws::AwsErrorKind;
use crate::plan::Change;
use policy::{condition, public_reason, sid};
use reading::PublicAccessState;

pub struct RemovePublicAccess;

static SPEC: ActionSpec = ActionSpec {
    name: "lambda.remove_public_access",
    summary: "Delete every function URL and remove public or cross-account resource-policy statements, on $LATEST, every alias and every version (recorded verbatim).",
    mutating: true,
    stops_harm: true,
    harm_order: HarmOrder::Access,
    own_state: true,
    params: &[ParamDef::new(
        "function",
        ValueType::String,
        "the function's name or ARN (an alias or version ARN contains the whole function)",
    )
    .check(function::check_literal_whole).parts(function::check_part_whole)],
    outputs: &[
        OutputDef::new("function_arn", ValueType::String, "the function's ARN"),
        OutputDef::new("qualifiers", ValueType::List, "what was read: $LATEST, each alias, each version"),
        OutputDef::new("removed_statements", ValueType::List, "the statements this step removes: SID on the function itself, QUALIFIER:SID on an alias or version"),
        OutputDef::new("kept_statements", ValueType::List, "the statements that stay (not public), named the same way"),
    ],
    iam_actions: &[
        "lambda:ListAliases",
        "lambda:ListVersionsByFunction",
        "lambda:ListFunctionUrlConfigs",
        "lambda:GetFunctionUrlConfig",
        "lambda:DeleteFunctionUrlConfig",
        "lambda:CreateFunctionUrlConfig",
        "lambda:GetPolicy",
        "lambda:RemovePermission",
        "lambda:AddPermission",
    ],
};

const URL: &str = "function_url";
const STATEMENT: &str = "policy_statement";

/// What one change is about. The function itself keeps the names earlier
/// journals used (`function_url`, `policy_statement:SID`); an alias or
/// version adds its name (`function_url:live`, `policy_statement:1:SID`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attribute {
    Url(Qualifier),
    Statement(Qualifier, String),
}

impl Attribute {
    fn parse(s: &str) -> Result<Self, ActionError> {
        if let Some(q) = qualifiers::parse_unkeyed(s, URL) {
            return Ok(Attribute::Url(q));
        }
        if let Some((q, sid)) = qualifiers::parse_keyed(s, STATEMENT) {
            return Ok(Attribute::Statement(q, sid.to_string()));
        }
        Err(ActionError::input(
            format!("unknown attribute `{s}`"),
            "the journal was edited or damaged",
        ))
    }

    fn name(&self) -> String {
        match self {
            Attribute::Url(q) => qualifiers::attribute(URL, q, None),
            Attribute::Statement(q, sid) => qualifiers::attribute(STATEMENT, q, Some(sid)),
        }
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

async fn create_url(
    cx: &StepContext<'_>,
    f: &FunctionRef,
    q: &Qualifier,
    c: &Value,
) -> Result<(), ActionError> {
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
        .set_qualifier(q.param())
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
    Ok(())
}

async fn add_statement(
    cx: &StepContext<'_>,
    f: &FunctionRef,
    q: &Qualifier,
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
        .set_qualifier(q.param())
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

/// Removing what is already gone counts as done.
fn gone_is_done(r: Result<(), crate::aws::AwsError>) -> Result<(), ActionError> {
    match r {
        Err(e) if e.kind == AwsErrorKind::NotFound => Ok(()),
        other => other.map_err(ActionError::from),
    }
}

/// The observed state's qualifiers, in the order they were listed.
fn listed(state: &PublicAccessState) -> Vec<Qualifier> {
    state
        .qualifiers
        .iter()
        .map(|q| Qualifier::from_label(q))
        .collect()
}

#[async_trait]
impl Action for RemovePublicAccess {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let named = cx
            .args_as::<function::FunctionArgs>(&SPEC)?
            .function
            .resolve_whole(cx)?;
        let f = named.function;
        let state = reading::read(cx, &f).await.into_state()?;
        Ok(Observation {
            target: f.arn,
            state: state_of(&SPEC, &state)?,
        })
    }

    /// The function's own resource policy (`$LATEST`): its statements
    /// are removed whatever the aliases, versions and URLs are, and its
    /// GetPolicy is not on the control plane's quota. The whole reading
    /// gets the same answer from the run's shared reads.
    async fn first_look(&self, cx: &StepContext<'_>) -> Result<Option<Observation>, ActionError> {
        let named = cx
            .args_as::<function::FunctionArgs>(&SPEC)?
            .function
            .resolve_whole(cx)?;
        let f = named.function;
        let statements = reading::function_statements(cx, &f).await?;
        let state = PublicAccessState {
            qualifiers: vec![Qualifier::Latest.to_string()],
            aliases: Default::default(),
            function_urls: Default::default(),
            statements: [(Qualifier::Latest.to_string(), statements)]
                .into_iter()
                .collect(),
        };
        Ok(Some(Observation {
            target: f.arn,
            state: state_of(&SPEC, &state)?,
        }))
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let state: PublicAccessState = cx.state_as(&SPEC, observed)?;
        let qs = listed(&state);
        let mut changes = Vec::new();
        for (label, url) in &state.function_urls {
            let q = Qualifier::from_label(label);
            changes.push(Change::new(
                &observed.target,
                Attribute::Url(q.clone()).name(),
                url.clone(),
                Value::Null,
                format!(
                    "contain: delete the function URL of {} (AuthType {})",
                    q.describe(),
                    url["AuthType"].as_str().unwrap_or("?")
                ),
            ));
        }
        let (mut removed, mut kept) = (Vec::new(), Vec::new());
        for q in &qs {
            let sts = state.statements.get(&q.to_string());
            for st in sts.into_iter().flatten() {
                let name = reading::label(q, &sid(st));
                match public_reason(st, &cx.caller.account) {
                    Some(why) => {
                        removed.push(name);
                        changes.push(Change::new(
                            &observed.target,
                            Attribute::Statement(q.clone(), sid(st)).name(),
                            st.clone(),
                            Value::Null,
                            format!("contain: remove the statement on {}: {why}", q.describe()),
                        ));
                    }
                    None => kept.push(name),
                }
            }
        }
        let labels: Vec<String> = qs.iter().map(ToString::to_string).collect();
        let mut outputs = Map::new();
        outputs.insert("function_arn".into(), json!(observed.target));
        outputs.insert("qualifiers".into(), json!(labels));
        outputs.insert("removed_statements".into(), json!(removed));
        outputs.insert("kept_statements".into(), json!(kept));
        Ok(Planned {
            changes,
            outputs,
            note: whole_function_note(cx, &observed.target, &qs)?,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        let f = function::from_arn(&change.target)?;
        match Attribute::parse(&change.attribute)? {
            Attribute::Url(q) if change.after.is_null() => {
                let r = cx
                    .aws
                    .lambda
                    .delete_function_url_config()
                    .function_name(&f.name)
                    .set_qualifier(q.param())
                    .send()
                    .await;
                gone_is_done(r.map(|_| ()).map_err(|e| {
                    classify(
                        "DeleteFunctionUrlConfig",
                        "lambda:DeleteFunctionUrlConfig",
                        &f.arn,
                        e,
                    )
                }))
            }
            Attribute::Url(q) => create_url(cx, &f, &q, &change.after).await,
            Attribute::Statement(q, sid) if change.after.is_null() => {
                let r = cx
                    .aws
                    .lambda
                    .remove_permission()
                    .function_name(&f.name)
                    .set_qualifier(q.param())
                    .statement_id(sid)
                    .send()
                    .await;
                gone_is_done(r.map(|_| ()).map_err(|e| {
                    classify("RemovePermission", "lambda:RemovePermission", &f.arn, e)
                }))
            }
            Attribute::Statement(q, _) => add_statement(cx, &f, &q, &change.after).await,
        }
    }

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        attribute: &str,
    ) -> Result<Value, ActionError> {
        let f = function::from_arn(target)?;
        match Attribute::parse(attribute)? {
            Attribute::Url(q) => Ok(reading::url_config(cx, &f, &q).await?),
            Attribute::Statement(q, want) => Ok(reading::statements(cx, &f, &q)
                .await?
                .into_iter()
                .find(|s| sid(s) == want)
                .unwrap_or(Value::Null)),
        }
    }

    async fn restore_risk(
        &self,
        cx: &StepContext<'_>,
        change: &Change,
    ) -> Result<Option<String>, ActionError> {
        if change.after.is_null() {
            return Ok(None);
        }
        match Attribute::parse(&change.attribute)? {
            Attribute::Url(q) => Ok((change.after["AuthType"] == "NONE").then(|| format!("re-opens public access (a function URL with AuthType NONE on {}; it also gets a new address)", q.describe()))),
            Attribute::Statement(q, _) => Ok(public_reason(&change.after, &cx.caller.account)
                .map(|why| format!("re-opens access on {}: {why}", q.describe()))),
        }
    }

    /// Reads everything again, qualifiers included: an alias added since
    /// the plan is checked too, and whatever could not be read fails.
    async fn verify(
        &self,
        cx: &StepContext<'_>,
        observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let f = function::from_arn(&observed.target)?;
        Ok(reading::read(cx, &f)
            .await
            .checks(&f.arn, &cx.caller.account))
    }
}

/// The function's own (`$LATEST`) statements and URL as they were before
/// this incident first changed them, from its journal: evidence read after
/// containment (a preserve step retried by a later run) gives back what
/// the attacker left, not what firebreak made of it.
#[derive(Debug, Default, PartialEq)]
pub struct LatestBefore {
    /// Attribute and statement, for each statement this incident changed.
    pub statements: Vec<(String, Value)>,
    /// Attribute and URL configuration (`reading::url_value`), if this
    /// incident changed the function's URL.
    pub url: Option<(String, Value)>,
}

pub fn latest_before_this_incident(
    history: &crate::state::History,
    function_arn: &str,
) -> LatestBefore {
    let mut seen = std::collections::HashSet::new();
    let mut before = LatestBefore::default();
    for r in history {
        let c = &r.change;
        // The first change of each attribute holds what was there before.
        if c.target != function_arn || !seen.insert(c.attribute.clone()) {
            continue;
        }
        match Attribute::parse(&c.attribute) {
            Ok(Attribute::Statement(Qualifier::Latest, _)) => {
                before
                    .statements
                    .push((c.attribute.clone(), c.before.clone()));
            }
            Ok(Attribute::Url(Qualifier::Latest)) => {
                before.url = Some((c.attribute.clone(), c.before.clone()));
            }
            _ => {}
        }
    }
    before
}

/// An ARN naming an alias or version still contains the whole function: the
/// other aliases and versions are doors into the same function, and whoever
/// used one can use any other left open.
fn whole_function_note(
    cx: &StepContext<'_>,
    target: &str,
    qs: &[Qualifier],
) -> Result<Option<String>, ActionError> {
    let arg = cx.args_as::<function::FunctionArgs>(&SPEC)?.function;
    let named = arg.resolve_whole(cx)?;
    Ok(named.qualifier.map(|q| {
        format!(
            "`{}` names {}: the whole function {target} is contained, on {}",
            arg.as_str(),
            Qualifier::from_label(&q).describe(),
            qualifiers::join(qs)
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_name_their_qualifier_and_old_names_still_parse() {
        let live = Qualifier::Named("live".into());
        for (name, attr) in [
            ("function_url", Attribute::Url(Qualifier::Latest)),
            ("function_url:live", Attribute::Url(live.clone())),
            (
                "policy_statement:anyone",
                Attribute::Statement(Qualifier::Latest, "anyone".into()),
            ),
            (
                "policy_statement:live:anyone",
                Attribute::Statement(live.clone(), "anyone".into()),
            ),
            (
                "policy_statement:1:foreign",
                Attribute::Statement(Qualifier::Named("1".into()), "foreign".into()),
            ),
        ] {
            assert_eq!(Attribute::parse(name).unwrap(), attr, "{name}");
            assert_eq!(attr.name(), name);
        }
        assert!(Attribute::parse("reserved_concurrency").is_err());
        assert!(Attribute::parse("policy_statement:a:b:c").is_err());
    }

    #[test]
    fn listed_qualifiers_keep_their_order() {
        let state = PublicAccessState {
            qualifiers: vec!["$LATEST".into(), "live".into(), "1".into()],
            aliases: Default::default(),
            function_urls: Default::default(),
            statements: Default::default(),
        };
        assert_eq!(
            listed(&state),
            [
                Qualifier::Latest,
                Qualifier::Named("live".into()),
                Qualifier::Named("1".into())
            ]
        );
    }
}
