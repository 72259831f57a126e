//! Raw → validated playbook. Every problem is collected, none stops the
//! others, and each one points at the exact place in the file.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use serde_saphyr::Spanned;

use super::diagnostics::{choices_hint, Problem};
use super::model::{
    Arg, OnError, ParamSpec, Phase, Playbook, Step, DEFAULT_STEP_TIMEOUT, MAX_RETRIES,
};
use super::raw::{RawPlaybook, RawStep};
use super::source::{Pos, Source};
use super::template::{self};
use crate::action::registry;
use crate::action::spec::{article, describe_value, ValueType};
use crate::action::Action;

mod values;

use values::{check_value, validate_when};

pub const API_VERSION: &str = "firebreak/v1";

struct Validator {
    source: Arc<Source>,
    problems: Vec<Problem>,
}

/// What earlier steps (and params) offer to references.
struct Known<'a> {
    params: HashMap<String, Option<ValueType>>,
    param_names: Vec<String>,
    earlier: HashMap<String, (Phase, Option<&'static dyn Action>)>,
    /// The same ids in run order, for hints.
    earlier_order: Vec<String>,
    all_ids: &'a HashMap<String, Pos>,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_step_id(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 64
        && matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl Validator {
    fn pos<T>(&self, s: &Spanned<T>) -> Pos {
        Pos::from_location(&s.referenced, &self.source)
    }

    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// The position of `needle` inside the scalar at `pos`, or the scalar.
    /// Where `needle` first occurs at or after `pos`: a list's items have
    /// no position of their own, and a flow sequence's span may cover only
    /// its opening bracket. Bounded, so a long file is not searched whole.
    fn pos_after(&self, pos: Pos, needle: &str) -> Pos {
        let text = &self.source.text;
        let start = pos.offset.min(text.len());
        let mut end = (start + 4096).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        match text.get(start..end).and_then(|s| s.find(needle)) {
            Some(i) => self.source.pos_at(start + i, needle.len()),
            None => pos,
        }
    }

    fn pos_within(&self, pos: Pos, needle: &str) -> Pos {
        let slice = self.source.slice(pos);
        match slice.find(needle) {
            Some(i) => self.source.pos_at(pos.offset + i, needle.len()),
            None => pos,
        }
    }
}

pub fn validate(
    raw: RawPlaybook,
    source: Arc<Source>,
    sha256: String,
) -> Result<Playbook, Vec<Problem>> {
    let mut v = Validator {
        source: source.clone(),
        problems: Vec::new(),
    };

    if raw.api_version.value != API_VERSION {
        let pos = v.pos(&raw.api_version);
        v.push(
            Problem::new(
                pos,
                format!("unsupported apiVersion `{}`", raw.api_version.value),
            )
            .label("not a version this firebreak reads")
            .hint(format!("write `apiVersion: {API_VERSION}`")),
        );
    }
    if raw.kind.value != "Playbook" {
        let pos = v.pos(&raw.kind);
        v.push(
            Problem::new(pos, format!("unknown kind `{}`", raw.kind.value))
                .label("expected `Playbook`")
                .hint("a playbook file has `kind: Playbook`"),
        );
    }
    let name_ok = {
        let n = &raw.name.value;
        !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !name_ok {
        let pos = v.pos(&raw.name);
        v.push(
            Problem::new(pos, format!("invalid playbook name `{}`", raw.name.value))
                .label("invalid name")
                .hint("use 1 to 64 lowercase letters, digits and dashes, e.g. `throttle-function`"),
        );
    }

    let params = validate_params(&mut v, &raw);
    let max_targets = match &raw.max_targets {
        None => None,
        Some(m) => match m.value.as_u64() {
            Some(n) if (1..=10_000).contains(&n) => Some(n as u32),
            _ => {
                let pos = v.pos(m);
                v.push(
                    Problem::new(pos, format!("`max_targets` must be an integer from 1 to 10000, found {}", describe_value(&m.value)))
                        .label("out of range")
                        .hint("the largest number of functions one run may contain; more matches stop the run before any change"),
                );
                None
            }
        },
    };

    // Group steps by phase, reporting unknown phases.
    let mut by_phase: BTreeMap<Phase, &Vec<RawStep>> = BTreeMap::new();
    if raw.phases.value.is_empty() {
        let pos = v.pos(&raw.phases);
        v.push(
            Problem::new(pos, "the playbook has no phases")
                .label("empty")
                .hint("add at least one of `identify`, `contain`, `recover` with a list of steps"),
        );
    }
    for (name, steps) in &raw.phases.value {
        match Phase::parse(&name.value) {
            Some(phase) => {
                by_phase.insert(phase, &steps.value);
            }
            None => {
                let pos = v.pos(name);
                v.push(
                    Problem::new(pos, format!("unknown phase `{}`", name.value))
                        .label("not a phase")
                        .hint(choices_hint(&name.value, &Phase::NAMES)),
                );
            }
        }
    }

    // Step ids are unique across phases; remember the first place of each.
    let mut all_ids: HashMap<String, Pos> = HashMap::new();
    for steps in by_phase.values() {
        for s in steps.iter() {
            let pos = v.pos(&s.id);
            if let Some(first) = all_ids.get(&s.id.value) {
                let first_line = first.line;
                v.push(
                    Problem::new(pos, format!("duplicate step id `{}`", s.id.value))
                        .label("already used")
                        .hint(format!(
                            "step ids must be unique across all phases; `{}` is first defined at line {first_line}",
                            s.id.value
                        )),
                );
            } else {
                all_ids.insert(s.id.value.clone(), pos);
            }
        }
    }

    let mut known = Known {
        params: params
            .iter()
            .map(|(n, p)| (n.clone(), p.as_ref().map(|p| p.ty)))
            .collect(),
        param_names: params.iter().map(|(n, _)| n.clone()).collect(),
        earlier: HashMap::new(),
        earlier_order: Vec::new(),
        all_ids: &all_ids,
    };

    let mut steps = Vec::new();
    for (phase, raw_steps) in &by_phase {
        for raw_step in raw_steps.iter() {
            if let Some(step) = validate_step(&mut v, &mut known, *phase, raw_step) {
                steps.push(step);
            }
        }
    }

    if v.problems.is_empty() {
        Ok(Playbook {
            name: raw.name.value,
            description: raw.description.map(|d| d.value),
            params: params.into_iter().filter_map(|(_, p)| p).collect(),
            max_targets,
            steps,
            source,
            sha256,
        })
    } else {
        Err(v.problems)
    }
}

/// Params in file order; `None` for one whose declaration has a problem (it
/// still counts as declared, so references to it are not reported twice).
fn validate_params(v: &mut Validator, raw: &RawPlaybook) -> Vec<(String, Option<ParamSpec>)> {
    let mut out = Vec::new();
    for (name, rp) in &raw.params {
        let mut ok = true;
        if !is_identifier(&name.value) {
            let pos = v.pos(name);
            v.push(
                Problem::new(pos, format!("invalid param name `{}`", name.value))
                    .label("invalid name")
                    .hint("use lowercase letters, digits and `_`, starting with a letter or `_`, e.g. `function`"),
            );
            ok = false;
        }
        let ty = ValueType::parse(&rp.value.ty.value);
        if ty.is_none() {
            let pos = v.pos(&rp.value.ty);
            v.push(
                Problem::new(pos, format!("unknown param type `{}`", rp.value.ty.value))
                    .label("not a type")
                    .hint(choices_hint(&rp.value.ty.value, &ValueType::NAMES)),
            );
        }
        let required = match &rp.value.required {
            None => false,
            Some(r) => match r.value {
                Value::Bool(b) => b,
                ref other => {
                    let pos = v.pos(r);
                    v.push(
                        Problem::new(
                            pos,
                            format!(
                                "`required` must be true or false, found {}",
                                describe_value(other)
                            ),
                        )
                        .label("not a boolean"),
                    );
                    ok = false;
                    false
                }
            },
        };
        let default = rp
            .value
            .default
            .as_ref()
            .map(|d| (v.pos(d), d.value.clone()));
        if let (Some(ty), Some((pos, d))) = (ty, &default) {
            if !ty.matches(d) {
                v.push(
                    Problem::new(
                        *pos,
                        format!(
                            "the default of `{}` must be {}, found {}",
                            name.value,
                            article(ty),
                            describe_value(d)
                        ),
                    )
                    .label("wrong type")
                    .hint(format!("the param is declared `type: {}`", ty.name())),
                );
                ok = false;
            } else if d
                .as_str()
                .is_some_and(|s| template::parse(s).map_or(true, |t| t.has_references()))
            {
                v.push(
                    Problem::new(*pos, "a param default cannot contain a reference")
                        .label("reference in a default")
                        .hint("defaults are plain values; reference the param from a step instead"),
                );
                ok = false;
            }
        }
        if required && default.is_some() {
            let pos = default.as_ref().map_or_else(|| v.pos(name), |(p, _)| *p);
            v.push(
                Problem::new(pos, format!("param `{}` is required and also has a default", name.value))
                    .label("default of a required param")
                    .hint("remove `required: true` (the default applies when it is not given) or remove the default"),
            );
            ok = false;
        }
        let spec = match (ok, ty) {
            (true, Some(ty)) => Some(ParamSpec {
                name: name.value.clone(),
                ty,
                required,
                default: default.map(|(_, d)| d),
                description: rp.value.description.as_ref().map(|d| d.value.clone()),
            }),
            _ => None,
        };
        out.push((name.value.clone(), spec));
    }
    out
}

fn validate_step(
    v: &mut Validator,
    known: &mut Known<'_>,
    phase: Phase,
    raw: &RawStep,
) -> Option<Step> {
    let id_pos = v.pos(&raw.id);
    let id = raw.id.value.clone();
    let before = v.problems.len();
    if !is_step_id(&id) {
        v.push(
            Problem::new(id_pos, format!("invalid step id `{id}`"))
                .label("invalid id")
                .hint("use lowercase letters, digits, `_` and `-`, starting with a letter (at most 64)"),
        );
    }

    let action_pos = v.pos(&raw.action);
    let action = registry::find(&raw.action.value);
    if action.is_none() {
        v.push(
            Problem::new(action_pos, format!("unknown action `{}`", raw.action.value))
                .label("no such action")
                .hint(choices_hint(&raw.action.value, &registry::names())),
        );
    }

    let mut with = Vec::new();
    if let Some(w) = &raw.with {
        for (key, value) in &w.value {
            let key_pos = v.pos(key);
            let value_pos = v.pos(value);
            let def = action.and_then(|a| a.spec().param(&key.value));
            if let Some(a) = action {
                if def.is_none() {
                    let names: Vec<&str> = a.spec().params.iter().map(|p| p.name).collect();
                    v.push(
                        Problem::new(
                            key_pos,
                            format!("`{}` has no parameter `{}`", a.spec().name, key.value),
                        )
                        .label("unknown parameter")
                        .hint(choices_hint(&key.value, &names)),
                    );
                }
            }
            check_value(v, known, phase, def, &key.value, &value.value, value_pos);
            with.push(Arg {
                name: key.value.clone(),
                value: value.value.clone(),
                pos: value_pos,
            });
        }
    }
    if let Some(a) = action {
        for p in a.spec().params.iter().filter(|p| p.required) {
            if !with.iter().any(|w| w.name == p.name) {
                let pos = action_pos;
                v.push(
                    Problem::new(
                        pos,
                        format!("`{}` needs the parameter `{}`", a.spec().name, p.name),
                    )
                    .label(format!("`{}` missing", p.name))
                    .hint(format!(
                        "add `{}:` ({}: {}) under `with:`",
                        p.name,
                        article(p.ty),
                        p.description
                    )),
                );
            }
        }
    }

    let when = raw
        .when
        .as_ref()
        .and_then(|w| validate_when(v, known, phase, w));
    let on_error = match &raw.on_error {
        None => OnError::Abort,
        Some(o) => match o.value.as_str() {
            Some("abort") => OnError::Abort,
            Some("continue") => OnError::Continue,
            _ => {
                let pos = v.pos(o);
                let shown = o
                    .value
                    .as_str()
                    .map_or_else(|| describe_value(&o.value), str::to_string);
                v.push(
                    Problem::new(pos, format!("unknown on_error `{shown}`"))
                        .label("not a choice")
                        .hint(choices_hint(&shown, &["abort", "continue"])),
                );
                OnError::Abort
            }
        },
    };
    let retries = match &raw.retries {
        None => 0,
        Some(r) => match r.value.as_u64() {
            Some(n) if n <= u64::from(MAX_RETRIES) => n as u32,
            _ => {
                let pos = v.pos(r);
                v.push(
                    Problem::new(pos, format!("`retries` must be an integer from 0 to {MAX_RETRIES}, found {}", describe_value(&r.value)))
                        .label("out of range")
                        .hint("retries re-observe and re-plan before each attempt, so they never repeat a change"),
                );
                0
            }
        },
    };
    let timeout = match &raw.timeout {
        None => DEFAULT_STEP_TIMEOUT,
        Some(t) => match parse_timeout(&t.value) {
            Some(d) => d,
            None => {
                let pos = v.pos(t);
                v.push(
                    Problem::new(pos, format!("invalid timeout: {} is not a duration", describe_value(&t.value)))
                        .label("not a duration")
                        .hint("write seconds as an integer (`90`) or a duration like `30s`, `5m`, `1h` (1 s to 1 h)"),
                );
                DEFAULT_STEP_TIMEOUT
            }
        },
    };

    // Registered after its own references are checked: a step cannot use
    // its own outputs.
    known.earlier.insert(id.clone(), (phase, action));
    known.earlier_order.push(id.clone());
    match action {
        Some(action) if v.problems.len() == before => Some(Step {
            id,
            phase,
            action,
            with,
            when,
            on_error,
            retries,
            timeout,
            pos: id_pos,
        }),
        _ => None,
    }
}

fn parse_timeout(v: &Value) -> Option<Duration> {
    let secs = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => {
            let s = s.trim();
            let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
            let n: u64 = num.parse().ok()?;
            match unit {
                "s" => n,
                "m" => n.checked_mul(60)?,
                "h" => n.checked_mul(3600)?,
                _ => return None,
            }
        }
        _ => return None,
    };
    (1..=3600)
        .contains(&secs)
        .then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timeouts_accept_seconds_and_units() {
        assert_eq!(parse_timeout(&json!(90)), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout(&json!("5m")), Some(Duration::from_secs(300)));
        assert_eq!(parse_timeout(&json!("2h")), None);
        assert_eq!(parse_timeout(&json!(0)), None);
        assert_eq!(parse_timeout(&json!("10 minutes")), None);
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("forensic_bucket"));
        assert!(!is_identifier("Function"));
        assert!(is_step_id("throttle-2"));
        assert!(!is_step_id("2throttle"));
    }
}
