//! `--param k=v` → typed values, checked against the playbook's params.

use serde_json::{Map, Value};

use crate::action::spec::{article, ValueType};
use crate::playbook::Playbook;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct ParamsError {
    pub problems: Vec<String>,
    pub hint: String,
}

/// Parses `k=v` pairs. Integers and booleans are parsed; a list is
/// comma-separated (`--param names=a,b`).
pub fn resolve(playbook: &Playbook, given: &[String]) -> Result<Map<String, Value>, ParamsError> {
    let mut problems = Vec::new();
    let mut out = Map::new();
    for pair in given {
        let Some((k, v)) = pair.split_once('=') else {
            problems.push(format!("`--param {pair}` is not NAME=VALUE"));
            continue;
        };
        let Some(spec) = playbook.param(k) else {
            let known: Vec<&str> = playbook.params.iter().map(|p| p.name.as_str()).collect();
            problems.push(format!(
                "playbook `{}` has no param `{k}` (it has: {})",
                playbook.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
            continue;
        };
        if out.contains_key(k) {
            problems.push(format!("param `{k}` is given twice"));
            continue;
        }
        let parsed = parse_value(spec.ty, v);
        match parsed {
            Some(p) => {
                out.insert(k.to_string(), p);
            }
            None => problems.push(format!(
                "param `{k}` must be {}, got `{v}`",
                article(spec.ty)
            )),
        }
    }
    for spec in &playbook.params {
        if out.contains_key(&spec.name) {
            continue;
        }
        match (&spec.default, spec.required) {
            (Some(d), _) => {
                out.insert(spec.name.clone(), d.clone());
            }
            (None, true) => problems.push(format!(
                "param `{}` is required{}",
                spec.name,
                spec.description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )),
            (None, false) => {}
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(ParamsError {
            problems,
            hint: "pass params as `--param NAME=VALUE` (lists comma-separated); `firebreak validate` shows the playbook's params".into(),
        })
    }
}

/// One `--param` value as its declared type: integers and booleans
/// parsed, a list comma-separated; `None` when it is not of that type.
pub fn parse_value(ty: ValueType, v: &str) -> Option<Value> {
    match ty {
        ValueType::String => Some(Value::String(v.to_string())),
        ValueType::Integer => v.trim().parse::<i64>().ok().map(Value::from),
        ValueType::Boolean => match v.trim() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        ValueType::List => Some(Value::Array(
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.into()))
                .collect(),
        )),
    }
}

/// Checks already typed values (a route's `params:`) against the
/// playbook's params and fills in the defaults. `skip` names params the
/// caller supplies later (the route's target sets `function`).
pub fn check_typed(
    playbook: &Playbook,
    given: &Map<String, Value>,
    skip: &[&str],
) -> Result<Map<String, Value>, ParamsError> {
    let mut problems = Vec::new();
    let mut out = Map::new();
    for (k, v) in given {
        match playbook.param(k) {
            None => {
                let known: Vec<&str> = playbook.params.iter().map(|p| p.name.as_str()).collect();
                problems.push(format!(
                    "playbook `{}` has no param `{k}` (it has: {})",
                    playbook.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            Some(spec) if !spec.ty.matches(v) => {
                problems.push(format!("param `{k}` must be {}", article(spec.ty)))
            }
            Some(_) => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    for spec in &playbook.params {
        if out.contains_key(&spec.name)
            || given.contains_key(&spec.name)
            || skip.contains(&spec.name.as_str())
        {
            continue;
        }
        match (&spec.default, spec.required) {
            (Some(d), _) => {
                out.insert(spec.name.clone(), d.clone());
            }
            (None, true) => problems.push(format!("param `{}` is required", spec.name)),
            (None, false) => {}
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(ParamsError {
            problems,
            hint: "give the playbook's params their declared types; `firebreak validate PLAYBOOK` lists them".into(),
        })
    }
}
