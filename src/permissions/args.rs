//! A step's arguments as far as they are known where the policy applies.
//!
//! A route fixes every param but `function` (the event names it, within
//! the allowlist); a playbook covered whole knows only the params given
//! with `-p`. A reference to anything unknown (a param not given, a step's
//! output, the incident) becomes `*` in the resource it helps name, so the
//! policy covers every value it could take.

use serde_json::{Map, Value};

use super::scope::Scope;
use crate::playbook::model::When;
use crate::playbook::template::{self, Reference, Segment};
use crate::playbook::Step;
use crate::respond::names::parse_arn;

/// One argument of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// The step does not give it (the action's default applies).
    Absent,
    /// Its values (a list gives several), `*` where a part is unknown.
    Values(Vec<String>),
}

/// A step with what is known of its playbook's params.
pub struct StepArgs<'a> {
    pub step: &'a Step,
    pub known: &'a Map<String, Value>,
    pub scope: &'a Scope,
}

impl StepArgs<'_> {
    pub fn arg(&self, name: &str) -> Arg {
        match self.step.with.iter().find(|a| a.name == name) {
            None => Arg::Absent,
            Some(a) => Arg::Values(values(&a.value, self.known)),
        }
    }

    /// The functions the step acts on, as IAM patterns over names: the
    /// routes' allowlist when the step names the target
    /// (`${params.function}`, unknown), else what the step names.
    pub fn functions(&self) -> Vec<String> {
        let Some(a) = self.step.with.iter().find(|a| a.name == "function") else {
            return self.scope.functions.clone();
        };
        let is_target = a
            .value
            .as_str()
            .and_then(|s| template::parse(s).ok())
            .is_some_and(|t| t.single_reference() == Some(&Reference::Param("function".into())));
        if is_target && lookup(&Reference::Param("function".into()), self.known).is_none() {
            return self.scope.functions.clone();
        }
        let mut out: Vec<String> = values(&a.value, self.known)
            .into_iter()
            .map(|v| function_name(&v))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether the step's `when` is known to be false (so it never runs).
    pub fn skipped(&self) -> bool {
        match &self.step.when {
            None => false,
            Some(When::Literal(b)) => !b,
            Some(When::Reference { reference, negate }) => {
                matches!(lookup(reference, self.known), Some(Value::Bool(b)) if b == *negate)
            }
        }
    }
}

/// A function name from a name or an ARN (`*` when it is neither).
fn function_name(v: &str) -> String {
    if !v.starts_with("arn:") {
        return v.to_string();
    }
    parse_arn(v)
        .and_then(|a| a.resource.strip_prefix("function:"))
        .map(|rest| rest.split(':').next().unwrap_or("*").to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "*".into())
}

fn lookup(r: &Reference, known: &Map<String, Value>) -> Option<Value> {
    match r {
        Reference::Param(p) => known.get(p).filter(|v| !v.is_null()).cloned(),
        _ => None,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The values an argument can take, as patterns.
pub fn values(v: &Value, known: &Map<String, Value>) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(|i| values(i, known)).collect(),
        Value::String(s) => text(s, known),
        other => scalar(other).into_iter().collect(),
    }
}

fn text(s: &str, known: &Map<String, Value>) -> Vec<String> {
    // Validation rejected malformed templates before this runs.
    let Ok(t) = template::parse(s) else {
        return vec!["*".into()];
    };
    if let Some(r) = t.single_reference() {
        return match lookup(r, known) {
            Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
            Some(v) => vec![scalar(&v).unwrap_or_else(|| "*".into())],
            None => vec!["*".into()],
        };
    }
    let mut out = String::new();
    for seg in &t.segments {
        match seg {
            Segment::Literal(l) => out.push_str(l),
            Segment::Ref { reference, .. } => {
                match lookup(reference, known).as_ref().and_then(scalar) {
                    Some(v) => out.push_str(&v),
                    None => out.push('*'),
                }
            }
        }
    }
    vec![out]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known() -> Map<String, Value> {
        json!({"bucket": "acme-ir", "users": ["deploy", "ci"], "none": [], "on": true})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn known_params_fill_in_and_unknown_ones_widen() {
        let k = known();
        assert_eq!(values(&json!("${params.bucket}"), &k), ["acme-ir"]);
        assert_eq!(
            values(&json!("ev-${params.bucket}-x"), &k),
            ["ev-acme-ir-x"]
        );
        assert_eq!(values(&json!("ev-${params.other}"), &k), ["ev-*"]);
        assert_eq!(values(&json!("${steps.facts.role_arn}"), &k), ["*"]);
        assert_eq!(values(&json!("${params.users}"), &k), ["deploy", "ci"]);
        assert!(values(&json!("${params.none}"), &k).is_empty());
        assert_eq!(
            values(&json!(["a", "${params.bucket}"]), &k),
            ["a", "acme-ir"]
        );
        assert_eq!(values(&json!("$${literal}"), &k), ["${literal}"]);
    }

    #[test]
    fn function_names_from_arns() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:111122223333:function:orders:prod"),
            "orders"
        );
        assert_eq!(function_name("orders"), "orders");
        assert_eq!(function_name("arn:aws:iam::1:role/x"), "*");
    }
}
