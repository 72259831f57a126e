//! What an action declares about itself: parameters, outputs and the IAM
//! actions it needs. Validation, docs and `firebreak actions` read this; the
//! executor never re-checks strings that validation already accepted.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    Integer,
    Boolean,
    /// A list of strings.
    List,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Boolean => "boolean",
            ValueType::List => "list",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => ValueType::String,
            "integer" => ValueType::Integer,
            "boolean" => ValueType::Boolean,
            "list" => ValueType::List,
            _ => return None,
        })
    }

    pub const NAMES: [&'static str; 4] = ["string", "integer", "boolean", "list"];

    /// Whether a concrete value has this type.
    pub fn matches(self, v: &Value) -> bool {
        match self {
            ValueType::String => v.is_string(),
            ValueType::Integer => v.is_i64() || v.is_u64(),
            ValueType::Boolean => v.is_boolean(),
            ValueType::List => v
                .as_array()
                .is_some_and(|a| a.iter().all(|i| i.is_string())),
        }
    }

    /// A value that is exactly one reference keeps the referenced type, so
    /// the types must match (`"x-${params.n}"` is text and is checked apart).
    pub fn accepts(self, other: ValueType) -> bool {
        self == other
    }
}

/// Extra checks on a literal or resolved value beyond its type.
pub type ValueCheck = fn(&Value) -> Result<(), String>;

/// Checks one literal part of a text value built around references
/// (`prod-${params.name}`, `arn:aws:lambda:...:function:${...}`): the part
/// must be something that can appear in a valid value. The whole value is
/// checked again with `ValueCheck` once the references are resolved; this
/// catches at validation what can never resolve to a valid value
/// (`$(rm -rf /)${params.function}`, `my ${params.fn}`).
pub type PartCheck = fn(&str) -> Result<(), String>;

/// For a `PartCheck`: every character of `part` is one `ok` accepts;
/// `what` names what the value is and lists what it may hold.
pub fn part_chars(part: &str, ok: fn(char) -> bool, what: &str) -> Result<(), String> {
    match part.chars().find(|c| !ok(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "the text `{part}` around the reference cannot be part of {what}: {c:?} is not allowed"
        )),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    pub name: &'static str,
    pub ty: ValueType,
    pub required: bool,
    pub description: &'static str,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub check: Option<ValueCheck>,
    /// For text built around references, or a list item that is: what its
    /// literal parts may hold. `None`: anything.
    pub parts: Option<PartCheck>,
}

impl ParamDef {
    pub const fn new(name: &'static str, ty: ValueType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            required: true,
            description,
            min: None,
            max: None,
            check: None,
            parts: None,
        }
    }

    pub const fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    pub const fn range(mut self, min: i64, max: i64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    pub const fn check(mut self, check: ValueCheck) -> Self {
        self.check = Some(check);
        self
    }

    pub const fn parts(mut self, check: PartCheck) -> Self {
        self.parts = Some(check);
        self
    }

    /// Checks one literal part of a value built around references.
    pub fn validate_part(&self, part: &str) -> Result<(), String> {
        match self.parts {
            Some(check) => check(part).map_err(|e| format!("`{}`: {e}", self.name)),
            None => Ok(()),
        }
    }

    /// Checks a concrete value: type, range and the extra check.
    pub fn validate(&self, v: &Value) -> Result<(), String> {
        if !self.ty.matches(v) {
            return Err(format!(
                "`{}` must be {}, found {}",
                self.name,
                article(self.ty),
                describe_value(v)
            ));
        }
        if let Some(n) = v.as_i64() {
            if let Some(min) = self.min {
                if n < min {
                    return Err(format!("`{}` must be at least {min}, found {n}", self.name));
                }
            }
            if let Some(max) = self.max {
                if n > max {
                    return Err(format!("`{}` must be at most {max}, found {n}", self.name));
                }
            }
        } else if self.ty == ValueType::Integer {
            return Err(format!("`{}` is out of range: {v}", self.name));
        }
        if let Some(check) = self.check {
            check(v).map_err(|e| format!("`{}`: {e}", self.name))?;
        }
        Ok(())
    }
}

pub fn article(t: ValueType) -> &'static str {
    match t {
        ValueType::String => "a string",
        ValueType::Integer => "an integer",
        ValueType::Boolean => "a boolean",
        ValueType::List => "a list of strings",
    }
}

pub fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct OutputDef {
    pub name: &'static str,
    pub ty: ValueType,
    /// May be absent (e.g. no reserved concurrency); a reference to an absent
    /// value fails that step at run time with a clear message.
    pub nullable: bool,
    pub description: &'static str,
}

impl OutputDef {
    pub const fn new(name: &'static str, ty: ValueType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            nullable: false,
            description,
        }
    }

    pub const fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }
}

/// Where a harm-stopping step goes among one target's harm-stopping steps
/// (issue 15): the change that stops the most harm soonest goes first,
/// whatever the playbook's order, so a deny on a role shared by a hundred
/// functions is not queued behind a throttle and a statement removal. The
/// plan keeps the playbook's order; only applying follows this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HarmOrder {
    /// Keeps in evidence what the later steps remove (the attacker's
    /// artifacts): it must precede them.
    Preserve,
    /// Stops every function that shares the resource at once (a deny on
    /// a role). This and `Function` remove nothing the evidence keeps, so
    /// under `run --yes` they go ahead of a `Preserve` step
    /// (`planning::applies_early`).
    Shared,
    /// Stops the function itself (concurrency 0).
    Function,
    /// Closes one way in (public access, event sources, keys, secrets);
    /// steps that do not stop harm have this too, and it is never read
    /// for them.
    Access,
}

/// Everything static about one action.
#[derive(Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub summary: &'static str,
    /// Read-only actions only observe; they never produce changes.
    pub mutating: bool,
    /// Its changes stop harm (throttle, deny, close access, stop events,
    /// disable keys): across several targets these go first, for all of
    /// them, before anything else.
    pub stops_harm: bool,
    pub harm_order: HarmOrder,
    /// It observes only state that belongs to the target function itself
    /// (its concurrency, resource policies, URLs, event source mappings),
    /// which no other target's steps change. Where the plan was made by
    /// the same target's run a moment before its changes (`run --yes`),
    /// that observation stands for the re-read before the change; state
    /// that targets share (a role, a user, a secret) is always read again.
    pub own_state: bool,
    pub params: &'static [ParamDef],
    pub outputs: &'static [OutputDef],
    /// IAM actions the caller needs (plan needs the read ones only).
    pub iam_actions: &'static [&'static str],
}

impl ActionSpec {
    pub fn param(&self, name: &str) -> Option<&ParamDef> {
        self.params.iter().find(|p| p.name == name)
    }

    pub fn output(&self, name: &str) -> Option<&OutputDef> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parts_are_checked_only_when_a_part_check_is_declared() {
        let free = ParamDef::new("filter", ValueType::String, "");
        assert!(free.validate_part("$(rm -rf /)").is_ok());
        let named = free.parts(|p| part_chars(p, |c| c.is_ascii_alphanumeric(), "a name"));
        assert!(named.validate_part("prod").is_ok());
        assert_eq!(
            named.validate_part("my ").unwrap_err(),
            "`filter`: the text `my ` around the reference cannot be part of a name: ' ' is not allowed"
        );
    }

    #[test]
    fn validate_checks_type_and_range() {
        let p = ParamDef::new("value", ValueType::Integer, "").range(0, 10);
        assert!(p.validate(&json!(0)).is_ok());
        assert_eq!(
            p.validate(&json!(-1)).unwrap_err(),
            "`value` must be at least 0, found -1"
        );
        assert!(p
            .validate(&json!("0"))
            .unwrap_err()
            .contains("must be an integer"));
    }
}
