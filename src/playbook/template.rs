//! `${...}` references inside playbook values.
//!
//! The language is deliberately tiny: a reference names a playbook param, a
//! fact about the incident, or an output of an earlier step. There is no
//! shell, environment, arithmetic or code, so a value can never do more than
//! copy data the playbook author already declared. `$${` writes a literal `${`.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Param(String),
    IncidentId,
    IncidentStartedAt,
    StepOutput { step: String, output: String },
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Param(p) => write!(f, "params.{p}"),
            Reference::IncidentId => f.write_str("incident.id"),
            Reference::IncidentStartedAt => f.write_str("incident.started_at"),
            Reference::StepOutput { step, output } => write!(f, "steps.{step}.{output}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    /// `offset`/`len` are byte positions of the whole `${...}` in the string.
    Ref {
        reference: Reference,
        offset: usize,
        len: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub len: usize,
    pub message: String,
    pub hint: String,
}

/// Parses every `${...}` in `s`. A string without references is one literal.
pub fn parse(s: &str) -> Result<Template, TemplateError> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = s;
    let mut consumed = 0;
    while let Some(i) = rest.find('$') {
        literal.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = tail;
            consumed += i + 3;
            continue;
        }
        if !after.starts_with("${") {
            literal.push('$');
            rest = &after[1..];
            consumed += i + 1;
            continue;
        }
        let start = consumed + i;
        let Some(close) = after.find('}') else {
            return Err(TemplateError {
                offset: start,
                len: after.len(),
                message: "unterminated reference: `${` without a closing `}`".into(),
                hint: "close the reference, e.g. `${params.function}`, or write `$${` for a literal `${`".into(),
            });
        };
        let inner = after[2..close].trim();
        let reference = parse_reference(inner).map_err(|(message, hint)| TemplateError {
            offset: start,
            len: close + 1,
            message,
            hint,
        })?;
        if !literal.is_empty() {
            segments.push(Segment::Literal(std::mem::take(&mut literal)));
        }
        segments.push(Segment::Ref {
            reference,
            offset: start,
            len: close + 1,
        });
        rest = &after[close + 1..];
        consumed += i + close + 1;
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(Template { segments })
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_reference(inner: &str) -> Result<Reference, (String, String)> {
    let parts: Vec<&str> = inner.split('.').collect();
    if inner.is_empty() {
        return Err((
            "empty reference `${}`".into(),
            "name what to insert: `${params.NAME}`, `${incident.id}`, `${incident.started_at}` or `${steps.ID.OUTPUT}`".into(),
        ));
    }
    if let Some(bad) = parts.iter().find(|p| !is_ident(p)) {
        return Err((
            format!("`{inner}` is not a reference (bad part `{bad}`)"),
            "references are dotted names only: no spaces, operators, quotes or code".into(),
        ));
    }
    match parts.as_slice() {
        ["params", name] => Ok(Reference::Param((*name).to_string())),
        ["incident", "id"] => Ok(Reference::IncidentId),
        ["incident", "started_at"] => Ok(Reference::IncidentStartedAt),
        ["incident", other] => Err((
            format!("unknown incident field `{other}`"),
            "the incident has `id` and `started_at`".into(),
        )),
        ["steps", step, output] => Ok(Reference::StepOutput {
            step: (*step).to_string(),
            output: (*output).to_string(),
        }),
        ["params" | "steps" | "incident", ..] => Err((
            format!("`{inner}` has the wrong number of parts"),
            "use `${params.NAME}`, `${incident.id}`, `${incident.started_at}` or `${steps.ID.OUTPUT}`".into(),
        )),
        [root, ..] => Err((
            format!("`{root}` cannot be referenced"),
            "only `params`, `incident` and `steps` can be referenced: playbooks never read the environment, run a shell or evaluate code".into(),
        )),
        [] => Err(("empty reference".into(), String::new())),
    }
}

/// Why a template could not be turned into a value at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("`${{{0}}}` has no value")]
    Missing(String),
    #[error("`${{{0}}}` is a list and cannot be inserted into text")]
    ListInText(String),
}

/// What references resolve against: params, the incident and step outputs.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    pub params: Map<String, Value>,
    pub incident_id: String,
    pub incident_started_at: String,
    pub steps: HashMap<String, Map<String, Value>>,
}

impl Scope {
    pub fn lookup(&self, r: &Reference) -> Option<Value> {
        match r {
            Reference::Param(p) => self.params.get(p).cloned(),
            Reference::IncidentId => Some(Value::String(self.incident_id.clone())),
            Reference::IncidentStartedAt => Some(Value::String(self.incident_started_at.clone())),
            Reference::StepOutput { step, output } => {
                self.steps.get(step).and_then(|o| o.get(output)).cloned()
            }
        }
    }
}

impl Template {
    pub fn references(&self) -> impl Iterator<Item = (&Reference, usize, usize)> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Ref {
                reference,
                offset,
                len,
            } => Some((reference, *offset, *len)),
            Segment::Literal(_) => None,
        })
    }

    /// A value that is exactly one reference keeps the referenced value's
    /// type (`value: "${params.limit}"` stays an integer).
    pub fn single_reference(&self) -> Option<&Reference> {
        match self.segments.as_slice() {
            [Segment::Ref { reference, .. }] => Some(reference),
            _ => None,
        }
    }

    pub fn has_references(&self) -> bool {
        self.references().next().is_some()
    }

    pub fn render(&self, scope: &Scope) -> Result<Value, RenderError> {
        if let Some(r) = self.single_reference() {
            return match scope.lookup(r) {
                Some(Value::Null) | None => Err(RenderError::Missing(r.to_string())),
                Some(v) => Ok(v),
            };
        }
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Ref { reference, .. } => match scope.lookup(reference) {
                    Some(Value::String(v)) => out.push_str(&v),
                    Some(Value::Number(n)) => out.push_str(&n.to_string()),
                    Some(Value::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
                    Some(Value::Array(_)) | Some(Value::Object(_)) => {
                        return Err(RenderError::ListInText(reference.to_string()))
                    }
                    Some(Value::Null) | None => {
                        return Err(RenderError::Missing(reference.to_string()))
                    }
                },
            }
        }
        Ok(Value::String(out))
    }
}

/// Renders every string inside a JSON value (lists of strings may hold
/// references too).
pub fn render_value(v: &Value, scope: &Scope) -> Result<Value, RenderError> {
    match v {
        Value::String(s) => match parse(s) {
            Ok(t) => t.render(scope),
            // Validation rejects malformed templates before anything runs.
            Err(_) => Ok(v.clone()),
        },
        Value::Array(items) => items
            .iter()
            .map(|i| render_value(i, scope))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        let mut s = Scope {
            incident_id: "INC-7".into(),
            incident_started_at: "2026-11-23T10:00:00Z".into(),
            ..Scope::default()
        };
        s.params.insert("function".into(), json!("demo"));
        s.params.insert("limit".into(), json!(3));
        s.steps.insert(
            "facts".into(),
            [("role_arn".to_string(), json!("arn:aws:iam::1:role/r"))]
                .into_iter()
                .collect(),
        );
        s
    }

    #[test]
    fn whole_reference_keeps_its_type() {
        let t = parse("${params.limit}").unwrap();
        assert_eq!(t.render(&scope()).unwrap(), json!(3));
    }

    #[test]
    fn interpolation_builds_text() {
        let t = parse("fb-${incident.id}-${params.limit}/${steps.facts.role_arn}").unwrap();
        assert_eq!(
            t.render(&scope()).unwrap(),
            json!("fb-INC-7-3/arn:aws:iam::1:role/r")
        );
    }

    #[test]
    fn dollar_escape_and_lone_dollar_are_literal() {
        let t = parse("cost $5 and $${params.x}").unwrap();
        assert!(!t.has_references());
        assert_eq!(
            t.render(&scope()).unwrap(),
            json!("cost $5 and ${params.x}")
        );
    }

    #[test]
    fn environment_and_code_are_refused() {
        let e = parse("${env.HOME}").unwrap_err();
        assert!(e.message.contains("`env` cannot be referenced"), "{e:?}");
        let e = parse("${params.a + 1}").unwrap_err();
        assert!(e.message.contains("not a reference"), "{e:?}");
        let e = parse("x ${params.a").unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("unterminated"));
    }

    #[test]
    fn missing_values_are_errors() {
        let t = parse("${params.nope}").unwrap();
        assert_eq!(
            t.render(&scope()),
            Err(RenderError::Missing("params.nope".into()))
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_literals_roundtrip(s in "[a-z $}{.]{0,40}") {
            if let Ok(t) = parse(&s) {
                if !t.has_references() && !s.contains("$${") {
                    proptest::prop_assert_eq!(t.render(&Scope::default()).unwrap(), json!(s));
                }
            }
        }
    }
}
