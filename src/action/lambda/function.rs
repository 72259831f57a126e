//! A function named by name or ARN, checked against the caller's account
//! and region before any Lambda call is made.

use serde::Deserialize;
use serde_json::Value;

use crate::action::spec::part_chars;
use crate::action::{ActionError, StepContext};
use crate::aws::Caller;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub arn: String,
}

/// A function named by name or ARN, and the alias or version the ARN named
/// (`None` for a name or an unqualified ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub function: FunctionRef,
    pub qualifier: Option<String>,
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Lambda's pattern for a version (`1`, `$LATEST`) or an alias name.
fn valid_qualifier(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '$')
}

struct ParsedArn<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
    name: &'a str,
    qualifier: Option<&'a str>,
}

fn parse_arn(s: &str) -> Result<ParsedArn<'_>, String> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "lambda", region, account, "function", name, rest @ ..]
            if rest.len() <= 1 =>
        {
            if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("`{account}` is not a 12-digit account id"));
            }
            if !valid_name(name) {
                return Err(format!("`{name}` is not a valid function name"));
            }
            if let Some(q) = rest.first().filter(|q| !valid_qualifier(q)) {
                return Err(format!("`{q}` is not a valid version or alias"));
            }
            Ok(ParsedArn {
                partition,
                region,
                account,
                name,
                qualifier: rest.first().copied(),
            })
        }
        _ => Err("expected arn:aws:lambda:REGION:ACCOUNT:function:NAME".into()),
    }
}

/// Static check of a literal `function:` value (validation time).
pub fn check_literal(v: &Value) -> Result<(), String> {
    check(v, false)
}

/// `check_literal` for actions that contain the whole function whatever
/// qualifier the ARN names (public access, event sources).
pub fn check_literal_whole(v: &Value) -> Result<(), String> {
    check(v, true)
}

/// Part check for `function` (text around references): what a name or an
/// unqualified ARN can hold.
pub fn check_part(part: &str) -> Result<(), String> {
    part_chars(
        part,
        |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'),
        "a function name or ARN (letters, digits, `-`, `_`, and `:` between ARN fields)",
    )
}

/// `check_part` for actions that accept an alias or version ARN, whose
/// qualifier may be `$LATEST`.
pub fn check_part_whole(part: &str) -> Result<(), String> {
    part_chars(
        part,
        |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '$'),
        "a function, alias or version name or ARN (letters, digits, `-`, `_`, `$`, and `:` between ARN fields)",
    )
}

fn check(v: &Value, qualifier_allowed: bool) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    if s.starts_with("arn:") {
        let arn = parse_arn(s)?;
        if arn.qualifier.is_some() && !qualifier_allowed {
            return Err("name the function without a version or alias qualifier".into());
        }
        Ok(())
    } else if valid_name(s) {
        Ok(())
    } else {
        Err(format!("`{s}` is neither a function name (1-64 letters, digits, `-`, `_`) nor a Lambda function ARN"))
    }
}

/// A `function` argument: a function name or a Lambda function ARN (an
/// alias or version ARN too), its shape checked when the step's arguments
/// are read. Placing it in the caller's account and region (`resolve`)
/// needs the run, so it happens when the action uses it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FunctionArg(String);

impl TryFrom<String> for FunctionArg {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        check(&Value::String(s.clone()), true)?;
        Ok(FunctionArg(s))
    }
}

impl FunctionArg {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The whole function in the caller's account and region; an alias or
    /// version ARN is refused (see `resolve`).
    pub fn resolve(&self, cx: &StepContext<'_>) -> Result<FunctionRef, ActionError> {
        resolve(&self.0, cx.caller, &cx.aws.region)
    }

    /// The function and the qualifier its ARN named (see `resolve_whole`).
    pub fn resolve_whole(&self, cx: &StepContext<'_>) -> Result<Named, ActionError> {
        resolve_whole(&self.0, cx.caller, &cx.aws.region)
    }
}

/// The arguments of an action whose only parameter is `function`.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionArgs {
    pub function: FunctionArg,
}

/// The function a recorded change is about (its target is always a full,
/// already checked ARN).
pub fn from_arn(arn: &str) -> Result<FunctionRef, ActionError> {
    let parsed = parse_arn(arn).map_err(|e| {
        ActionError::input(
            format!("`{arn}` is not a Lambda function ARN: {e}"),
            "the journal was edited or damaged",
        )
    })?;
    Ok(FunctionRef {
        name: parsed.name.to_string(),
        arn: arn.to_string(),
    })
}

/// Resolves a name or unqualified ARN for the caller's account and the
/// client's region; an ARN naming a version or alias is refused.
pub fn resolve(input: &str, caller: &Caller, region: &str) -> Result<FunctionRef, ActionError> {
    let named = resolve_whole(input, caller, region)?;
    if named.qualifier.is_some() {
        return Err(ActionError::input(
            format!("`{input}` names a version or alias"),
            "containment applies to the whole function: pass its unqualified name or ARN",
        ));
    }
    Ok(named.function)
}

/// Resolves a name or ARN to the whole function. An ARN may name a version
/// or alias: the caller decides what that means (and says so).
pub fn resolve_whole(input: &str, caller: &Caller, region: &str) -> Result<Named, ActionError> {
    let partition = caller.arn.split(':').nth(1).unwrap_or("aws");
    if input.starts_with("arn:") {
        let arn = parse_arn(input).map_err(|e| {
            ActionError::input(
                format!("`{input}` is not a Lambda function ARN: {e}"),
                "pass a function name, or its ARN",
            )
        })?;
        if arn.account != caller.account {
            return Err(ActionError::input(
                format!(
                    "function `{input}` is in account {}, but the credentials are for account {}",
                    arn.account, caller.account
                ),
                format!(
                    "use credentials for account {} (--profile), or name a function in account {}",
                    arn.account, caller.account
                ),
            ));
        }
        if arn.region != region {
            return Err(ActionError::input(
                format!(
                    "function `{input}` is in region {}, but firebreak is working in {region}",
                    arn.region
                ),
                format!("pass --region {}", arn.region),
            ));
        }
        return Ok(Named {
            function: FunctionRef {
                name: arn.name.to_string(),
                arn: format!(
                    "arn:{}:lambda:{}:{}:function:{}",
                    arn.partition, arn.region, arn.account, arn.name
                ),
            },
            qualifier: arn.qualifier.map(str::to_string),
        });
    }
    if !valid_name(input) {
        return Err(ActionError::input(
            format!("`{input}` is not a valid function name"),
            "use the function's name (1-64 letters, digits, `-`, `_`) or its ARN",
        ));
    }
    Ok(Named {
        function: FunctionRef {
            name: input.to_string(),
            arn: format!(
                "arn:{partition}:lambda:{region}:{}:function:{input}",
                caller.account
            ),
        },
        qualifier: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caller() -> Caller {
        Caller {
            account: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:user/oncall".into(),
        }
    }

    #[test]
    fn parts_around_references_must_fit_a_name_or_arn() {
        assert!(check_part("arn:aws:lambda:us-east-1:").is_ok());
        assert!(check_part(":function:prod-").is_ok());
        assert!(check_part("$(rm -rf /)").is_err());
        assert!(check_part("my ").is_err());
        assert!(check_part(":$LATEST").is_err());
        assert!(check_part_whole(":$LATEST").is_ok());
        assert!(check_part_whole(";id").is_err());
    }

    #[test]
    fn names_and_arns_resolve_to_the_same_function() {
        let by_name = resolve("demo", &caller(), "us-east-1").unwrap();
        let by_arn = resolve(
            "arn:aws:lambda:us-east-1:111122223333:function:demo",
            &caller(),
            "us-east-1",
        )
        .unwrap();
        assert_eq!(by_name, by_arn);
    }

    #[test]
    fn foreign_account_region_and_qualifier_are_refused() {
        let e = resolve(
            "arn:aws:lambda:us-east-1:444455556666:function:demo",
            &caller(),
            "us-east-1",
        )
        .unwrap_err();
        assert!(e.to_string().contains("account 444455556666"), "{e}");
        let e = resolve(
            "arn:aws:lambda:eu-west-1:111122223333:function:demo",
            &caller(),
            "us-east-1",
        )
        .unwrap_err();
        assert!(e.hint().contains("--region eu-west-1"));
        assert!(resolve(
            "arn:aws:lambda:us-east-1:111122223333:function:demo:1",
            &caller(),
            "us-east-1"
        )
        .is_err());
        assert!(check_literal(&json!("bad name!")).is_err());
        assert!(check_literal(&json!("arn:aws:lambda:us-east-1:1:function:x")).is_err());
    }

    #[test]
    fn a_qualified_arn_resolves_to_the_whole_function_where_allowed() {
        let live = "arn:aws:lambda:us-east-1:111122223333:function:demo:live";
        let named = resolve_whole(live, &caller(), "us-east-1").unwrap();
        assert_eq!(
            named.function,
            resolve("demo", &caller(), "us-east-1").unwrap()
        );
        assert_eq!(named.qualifier.as_deref(), Some("live"));
        assert!(check_literal_whole(&json!(live)).is_ok());
        assert!(check_literal(&json!(live)).is_err());
        assert!(check_literal_whole(&json!(format!("{live}:extra"))).is_err());
        assert!(check_literal_whole(&json!(
            "arn:aws:lambda:us-east-1:111122223333:function:demo:li/ve"
        ))
        .is_err());
        assert_eq!(
            resolve_whole("demo", &caller(), "us-east-1")
                .unwrap()
                .qualifier,
            None
        );
    }
}
