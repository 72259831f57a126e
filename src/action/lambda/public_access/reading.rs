//! What `lambda.remove_public_access` reads: every qualifier of the
//! function, every function URL (one ListFunctionUrlConfigs lists them all)
//! and the resource policy of each qualifier (GetPolicy with `Qualifier`).
//!
//! Each part keeps its own outcome: `observe` needs all of them to plan, but
//! verification must say which read failed rather than fail as a whole or,
//! worse, pass over what it could not see (design contract 15).

use std::collections::BTreeMap;

use aws_sdk_lambda::types::{Cors, FunctionUrlAuthType, InvokeMode};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::super::function::FunctionRef;
use super::super::qualifiers::{self, Qualifier, Qualifiers};
use super::policy::{public_reason, sid};
use crate::action::{ActionError, Check, StepContext};
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};

/// A URL's configuration as recorded and restored. The address is not part
/// of it: a recreated URL gets a new one, which recovery reports rather than
/// compares.
pub fn url_value(
    auth: &FunctionUrlAuthType,
    mode: Option<&InvokeMode>,
    cors: Option<&Cors>,
) -> Value {
    let cors = cors.map(|c| {
        json!({
            "AllowCredentials": c.allow_credentials(),
            "AllowHeaders": c.allow_headers(),
            "AllowMethods": c.allow_methods(),
            "AllowOrigins": c.allow_origins(),
            "ExposeHeaders": c.expose_headers(),
            "MaxAge": c.max_age(),
        })
    });
    json!({
        "AuthType": auth.as_str(),
        "InvokeMode": mode.map(|m| m.as_str()),
        "Cors": cors,
    })
}

/// One qualifier's URL (null when it has none), for `recover`'s read.
pub async fn url_config(
    cx: &StepContext<'_>,
    f: &FunctionRef,
    q: &Qualifier,
) -> Result<Value, AwsError> {
    match cx
        .aws
        .lambda
        .get_function_url_config()
        .function_name(&f.name)
        .set_qualifier(q.param())
        .send()
        .await
    {
        Ok(c) => Ok(url_value(c.auth_type(), c.invoke_mode(), c.cors())),
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
                Err(e)
            }
        }
    }
}

/// Every URL of the function, by qualifier.
async fn urls(
    cx: &StepContext<'_>,
    f: &FunctionRef,
) -> Result<BTreeMap<Qualifier, Value>, AwsError> {
    let mut out = BTreeMap::new();
    let mut pages = cx
        .aws
        .lambda
        .list_function_url_configs()
        .function_name(&f.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                "ListFunctionUrlConfigs",
                "lambda:ListFunctionUrlConfigs",
                &f.arn,
                e,
            )
        })?;
        for c in page.function_url_configs() {
            // The listing is of this function only; an ARN we cannot place
            // is kept under its last field rather than dropped unseen.
            let q = Qualifier::of_arn(f, c.function_arn()).unwrap_or_else(|| {
                Qualifier::from_label(c.function_arn().rsplit(':').next().unwrap_or_default())
            });
            out.insert(q, url_value(c.auth_type(), c.invoke_mode(), c.cors()));
        }
    }
    Ok(out)
}

/// One qualifier's resource-policy statements (none when it has no policy,
/// or the alias or version is gone).
pub async fn statements(
    cx: &StepContext<'_>,
    f: &FunctionRef,
    q: &Qualifier,
) -> Result<Vec<Value>, AwsError> {
    match cx
        .aws
        .lambda
        .get_policy()
        .function_name(&f.name)
        .set_qualifier(q.param())
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
                Err(e)
            }
        }
    }
}

/// One qualifier's statements, read once in the run while planning.
async fn qualifier_statements(
    cx: &StepContext<'_>,
    f: &FunctionRef,
    q: &Qualifier,
) -> Result<Vec<Value>, AwsError> {
    let key = format!("GetPolicy {} {q}", f.arn);
    cx.shared_aws_read(key, statements(cx, f, q)).await
}

/// The function's own statements (`$LATEST`), as `read` gets them:
/// `first_look`'s part of the reading.
pub async fn function_statements(
    cx: &StepContext<'_>,
    f: &FunctionRef,
) -> Result<Vec<Value>, AwsError> {
    qualifier_statements(cx, f, &Qualifier::Latest).await
}

/// One reading of a function's public surface, each part with its outcome.
pub struct Reading {
    pub qualifiers: Result<Qualifiers, AwsError>,
    pub urls: Result<BTreeMap<Qualifier, Value>, AwsError>,
    /// One entry per listed qualifier.
    pub policies: BTreeMap<Qualifier, Result<Vec<Value>, AwsError>>,
}

/// ListAliases + ListVersionsByFunction + ListFunctionUrlConfigs, then one
/// GetPolicy per qualifier: the fewest calls that see every qualifier.
/// While planning each part is read once in the run: identify's
/// indicators and `lambda.remove_public_access` see the same reading, and
/// the control plane's 15 requests a second are not spent twice.
pub async fn read(cx: &StepContext<'_>, f: &FunctionRef) -> Reading {
    let qualifiers = qualifiers::list(cx, f).await;
    let urls = cx
        .shared_aws_read(format!("ListFunctionUrlConfigs {}", f.arn), urls(cx, f))
        .await;
    let mut policies = BTreeMap::new();
    if let Ok(qs) = &qualifiers {
        for q in qs.all() {
            let got = qualifier_statements(cx, f, &q).await;
            policies.insert(q, got);
        }
    }
    Reading {
        qualifiers,
        urls,
        policies,
    }
}

/// What `lambda.remove_public_access` observes. Maps keyed by qualifier
/// label keep the order they were read in (`Qualifier`'s, `$LATEST`
/// first). URL configurations and statements stay JSON: they are recorded
/// verbatim as a change's `before` and put back as they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicAccessState {
    /// `$LATEST`, each alias, each version, in the order they were listed.
    pub qualifiers: Vec<String>,
    /// Alias name → the version it points at.
    pub aliases: BTreeMap<String, String>,
    /// Qualifier label → URL configuration (`url_value`).
    pub function_urls: IndexMap<String, Value>,
    /// Qualifier label → its resource policy's statements.
    pub statements: IndexMap<String, Vec<Value>>,
}

impl Reading {
    /// The observed state; any failed read fails the observation, because
    /// a plan made without it could leave a door open unnoticed.
    pub fn into_state(self) -> Result<PublicAccessState, ActionError> {
        let qs = self.qualifiers?;
        let function_urls = self
            .urls?
            .into_iter()
            .map(|(q, v)| (q.to_string(), v))
            .collect();
        let mut statements = IndexMap::new();
        for (q, got) in self.policies {
            statements.insert(q.to_string(), got?);
        }
        Ok(PublicAccessState {
            qualifiers: qs.all().iter().map(ToString::to_string).collect(),
            aliases: qs.aliases,
            function_urls,
            statements,
        })
    }

    /// The two checks of contract 15: each names what it read, and a part
    /// that could not be read fails its check.
    pub fn checks(&self, target: &str, account: &str) -> Vec<Check> {
        let check = |name: &str, passed: bool, detail: String| Check {
            name: name.into(),
            target: target.to_string(),
            passed,
            detail,
        };
        let qs = match &self.qualifiers {
            Ok(qs) => qs,
            Err(e) => {
                let detail = format!("could not list the function's aliases and versions, so not every qualifier was read: {e}");
                return vec![
                    check("no function URL", false, detail.clone()),
                    check("no public statement", false, detail),
                ];
            }
        };
        let names = qs.names();
        let url = match &self.urls {
            Err(e) => check(
                "no function URL",
                false,
                format!("could not read the function URLs of {names}: {e}"),
            ),
            Ok(urls) if urls.is_empty() => check(
                "no function URL",
                true,
                format!("no function URL on {names}"),
            ),
            Ok(urls) => {
                let left: Vec<String> = urls
                    .iter()
                    .map(|(q, v)| {
                        format!("{q} (AuthType {})", v["AuthType"].as_str().unwrap_or("?"))
                    })
                    .collect();
                check(
                    "no function URL",
                    false,
                    format!("a function URL still exists on {}", left.join(", ")),
                )
            }
        };
        let (mut unread, mut public) = (Vec::new(), Vec::new());
        for q in qs.all() {
            match self.policies.get(&q) {
                None => unread.push(format!("{q}: not read")),
                Some(Err(e)) => unread.push(format!("{q}: {e}")),
                Some(Ok(sts)) => public.extend(
                    sts.iter()
                        .filter(|st| public_reason(st, account).is_some())
                        .map(|st| label(&q, &sid(st))),
                ),
            }
        }
        let mut problems = Vec::new();
        if !unread.is_empty() {
            problems.push(format!(
                "could not read the policy of {}",
                unread.join("; ")
            ));
        }
        if !public.is_empty() {
            problems.push(format!("still present: {}", public.join(", ")));
        }
        let statement = if problems.is_empty() {
            check(
                "no public statement",
                true,
                format!("no public or cross-account statement on {names}"),
            )
        } else {
            check("no public statement", false, problems.join("; "))
        };
        vec![url, statement]
    }
}

/// How outputs and checks name a statement: its Sid on the function itself,
/// `QUALIFIER:SID` on an alias or version.
pub fn label(q: &Qualifier, sid: &str) -> String {
    match q {
        Qualifier::Latest => sid.to_string(),
        Qualifier::Named(n) => format!("{n}:{sid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "111122223333";

    fn named(q: &str) -> Qualifier {
        Qualifier::Named(q.into())
    }

    fn listed() -> Qualifiers {
        Qualifiers {
            aliases: [("live".to_string(), "2".to_string())].into(),
            versions: vec!["1".into(), "2".into()],
            listed: vec![],
        }
    }

    fn closed() -> Reading {
        let legit = json!({"Sid": "s3", "Principal": {"Service": "s3.amazonaws.com"},
            "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::b"}}});
        Reading {
            qualifiers: Ok(listed()),
            urls: Ok(BTreeMap::new()),
            policies: listed()
                .all()
                .into_iter()
                .map(|q| {
                    let sts = if q == Qualifier::Latest {
                        vec![legit.clone()]
                    } else {
                        vec![]
                    };
                    (q, Ok(sts))
                })
                .collect(),
        }
    }

    fn denied(op: &'static str) -> AwsError {
        AwsError::new(
            op,
            "arn",
            AwsErrorKind::AccessDenied,
            "access denied",
            "grant it",
        )
    }

    #[test]
    fn checks_name_every_qualifier_they_read() {
        let checks = closed().checks("arn", ME);
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        assert_eq!(checks[0].detail, "no function URL on $LATEST, live, 1, 2");
        assert_eq!(
            checks[1].detail,
            "no public or cross-account statement on $LATEST, live, 1, 2"
        );
    }

    #[test]
    fn what_is_left_is_named_with_its_qualifier() {
        let mut r = closed();
        r.urls = Ok([(named("live"), json!({"AuthType": "NONE"}))].into());
        r.policies.insert(
            named("1"),
            Ok(vec![
                json!({"Sid": "foreign", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}}),
            ]),
        );
        let checks = r.checks("arn", ME);
        assert!(!checks[0].passed && checks[0].detail.contains("live (AuthType NONE)"));
        assert!(!checks[1].passed);
        assert_eq!(checks[1].detail, "still present: 1:foreign");
    }

    #[test]
    fn a_qualifier_that_could_not_be_read_fails_the_check() {
        let mut r = closed();
        r.policies.insert(named("live"), Err(denied("GetPolicy")));
        let checks = r.checks("arn", ME);
        assert!(checks[0].passed);
        assert!(!checks[1].passed);
        assert!(
            checks[1]
                .detail
                .starts_with("could not read the policy of live: GetPolicy"),
            "{}",
            checks[1].detail
        );

        let mut r = closed();
        r.policies.remove(&named("2"));
        assert!(r.checks("arn", ME)[1].detail.contains("2: not read"));

        let mut r = closed();
        r.urls = Err(denied("ListFunctionUrlConfigs"));
        let checks = r.checks("arn", ME);
        assert!(
            !checks[0].passed
                && checks[0]
                    .detail
                    .contains("could not read the function URLs")
        );

        let mut r = closed();
        r.qualifiers = Err(denied("ListAliases"));
        assert!(r.checks("arn", ME).iter().all(|c| !c.passed
            && c.detail
                .contains("could not list the function's aliases and versions")));
    }

    #[test]
    fn observation_fails_on_any_failed_read() {
        let state = serde_json::to_value(closed().into_state().unwrap()).unwrap();
        assert_eq!(state["qualifiers"], json!(["$LATEST", "live", "1", "2"]));
        assert_eq!(state["aliases"], json!({"live": "2"}));
        assert_eq!(state["statements"]["1"], json!([]));
        // The JSON plans and saved plans hold: fields in this order.
        let keys: Vec<&String> = state.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["qualifiers", "aliases", "function_urls", "statements"]
        );
        let mut r = closed();
        r.policies.insert(named("1"), Err(denied("GetPolicy")));
        assert!(r.into_state().is_err());
    }
}
