//! Checking values: each `with:` value against its action's param (type,
//! range, literal parts around `${...}`), every reference against what is
//! known at that point of the playbook, and `when:`.

use serde_json::Value;
use serde_saphyr::Spanned;

use super::super::diagnostics::{choices_hint, Problem};
use super::super::model::{Phase, When};
use super::super::source::Pos;
use super::super::template::{self, Reference, Segment, Template};
use crate::action::spec::{article, ParamDef, ValueType};

use super::{Known, Validator};

/// Checks one `with:` value: templates, reference types, literal type/range.
pub(super) fn check_value(
    v: &mut Validator,
    known: &Known<'_>,
    phase: Phase,
    def: Option<&ParamDef>,
    key: &str,
    value: &Value,
    pos: Pos,
) {
    match value {
        Value::String(s) => {
            let t = match template::parse(s) {
                Ok(t) => t,
                Err(e) => {
                    let at = v.pos_within(pos, s.get(e.offset..e.offset + e.len).unwrap_or(s));
                    v.push(
                        Problem::new(at, e.message)
                            .label("bad reference")
                            .hint(e.hint),
                    );
                    return;
                }
            };
            let types = check_references(v, known, phase, &t, s, pos);
            let Some(def) = def else { return };
            if let Some(r) = t.single_reference() {
                if let Some(Some(ty)) = types.first() {
                    if !def.ty.accepts(*ty) {
                        let at = v.pos_within(pos, s);
                        v.push(
                            Problem::new(
                                at,
                                format!(
                                    "`{key}` expects {}, but `${{{r}}}` is {}",
                                    article(def.ty),
                                    article(*ty)
                                ),
                            )
                            .label("wrong type")
                            .hint("reference a value of the right type, or write the value itself"),
                        );
                    }
                }
            } else if t.has_references() {
                if def.ty != ValueType::String {
                    v.push(
                        Problem::new(pos, format!("`{key}` expects {}, but this value builds text around references", article(def.ty)))
                            .label("text, not a value")
                            .hint("use exactly one reference (`\"${params.NAME}\"`) to pass a typed value"),
                    );
                }
                for ty in types.into_iter().flatten() {
                    if ty == ValueType::List {
                        v.push(
                            Problem::new(pos, "a list cannot be inserted into text")
                                .label("list inside text")
                                .hint("pass the list on its own: `\"${params.NAME}\"`"),
                        );
                    }
                }
                if def.ty == ValueType::String {
                    check_parts(v, def, &t, pos);
                }
            } else if let Err(msg) = def.validate(value) {
                v.push(
                    Problem::new(pos, msg)
                        .label("invalid value")
                        .hint(def.description),
                );
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Value::String(s) = item {
                    match template::parse(s) {
                        Ok(t) => {
                            check_references(v, known, phase, &t, s, pos);
                            if let Some(def) = def.filter(|_| t.has_references()) {
                                let at = v.pos_after(pos, s);
                                check_parts(v, def, &t, at);
                            }
                        }
                        Err(e) => {
                            let at = v.pos_within(pos, s);
                            v.push(
                                Problem::new(at, e.message)
                                    .label("bad reference")
                                    .hint(e.hint),
                            );
                        }
                    }
                }
            }
            if let Some(def) = def {
                let literal = items
                    .iter()
                    .all(|i| !i.as_str().is_some_and(|s| s.contains("${")));
                // With references among the items, the literal items are
                // still checked now; the others once they are resolved.
                let checked = if literal || def.ty != ValueType::List {
                    value.clone()
                } else {
                    Value::Array(
                        items
                            .iter()
                            .filter(|i| !i.as_str().is_some_and(|s| s.contains("${")))
                            .cloned()
                            .collect(),
                    )
                };
                if let Err(msg) = def.validate(&checked) {
                    v.push(
                        Problem::new(pos, msg)
                            .label("invalid value")
                            .hint(def.description),
                    );
                }
            }
        }
        _ => {
            if let Some(def) = def {
                if let Err(msg) = def.validate(value) {
                    v.push(
                        Problem::new(pos, msg)
                            .label("invalid value")
                            .hint(def.description),
                    );
                }
            }
        }
    }
}

/// Checks the literal text of a value built around references: each part
/// must be able to appear in a valid value (`$(rm -rf /)${params.fn}` can
/// never name a function). The references are checked once resolved.
pub(super) fn check_parts(v: &mut Validator, def: &ParamDef, t: &Template, pos: Pos) {
    for segment in &t.segments {
        let Segment::Literal(part) = segment else {
            continue;
        };
        if let Err(msg) = def.validate_part(part) {
            let at = v.pos_within(pos, part);
            v.push(
                Problem::new(at, msg)
                    .label("cannot be part of this value")
                    .hint(def.description),
            );
        }
    }
}

/// Checks that every reference in `t` names something that exists and runs
/// before this step; returns the type of each reference where known.
pub(super) fn check_references(
    v: &mut Validator,
    known: &Known<'_>,
    phase: Phase,
    t: &Template,
    text: &str,
    pos: Pos,
) -> Vec<Option<ValueType>> {
    let mut types = Vec::new();
    for (r, offset, len) in t.references() {
        let at = v.pos_within(pos, text.get(offset..offset + len).unwrap_or(text));
        let ty = match r {
            Reference::Param(name) => match known.params.get(name) {
                Some(ty) => *ty,
                None => {
                    let names: Vec<&str> = known.param_names.iter().map(String::as_str).collect();
                    let hint = if names.is_empty() {
                        format!("declare it under `params:` (e.g. `{name}: {{type: string, required: true}}`)")
                    } else {
                        choices_hint(name, &names)
                    };
                    v.push(
                        Problem::new(at, format!("unknown param `{name}`"))
                            .label("not declared")
                            .hint(hint),
                    );
                    None
                }
            },
            Reference::IncidentId | Reference::IncidentStartedAt => Some(ValueType::String),
            Reference::StepOutput { step, output } => match known.earlier.get(step) {
                Some((step_phase, action)) => {
                    if *step_phase != phase && *step_phase != Phase::Identify {
                        v.push(
                            Problem::new(at, format!("step `{step}` is in the {step_phase} phase, which does not run together with {phase}"))
                                .label("other phase")
                                .hint(format!("{phase} steps can use outputs of identify steps and of earlier {phase} steps")),
                        );
                        None
                    } else {
                        match action.map(|a| (a, a.spec().output(output))) {
                            Some((_, Some(o))) => Some(o.ty),
                            Some((a, None)) => {
                                let outs: Vec<&str> =
                                    a.spec().outputs.iter().map(|o| o.name).collect();
                                let hint = if outs.is_empty() {
                                    format!("`{}` produces no outputs", a.spec().name)
                                } else {
                                    choices_hint(output, &outs)
                                };
                                v.push(
                                    Problem::new(
                                        at,
                                        format!(
                                            "step `{step}` ({}) has no output `{output}`",
                                            a.spec().name
                                        ),
                                    )
                                    .label("unknown output")
                                    .hint(hint),
                                );
                                None
                            }
                            None => None,
                        }
                    }
                }
                None if known.all_ids.contains_key(step) => {
                    v.push(
                        Problem::new(at, format!("step `{step}` does not run before this step"))
                            .label("not an earlier step")
                            .hint("a step can only use outputs of steps that run before it: identify, then contain, then recover, in file order"),
                    );
                    None
                }
                None => {
                    let ids: Vec<&str> = known.earlier_order.iter().map(String::as_str).collect();
                    let hint = if ids.is_empty() {
                        "no step runs before this one, so there are no outputs to use yet"
                            .to_string()
                    } else {
                        format!(
                            "steps that run before this one: {}",
                            choices_hint(step, &ids)
                        )
                    };
                    v.push(
                        Problem::new(at, format!("unknown step `{step}`"))
                            .label("no such step")
                            .hint(hint),
                    );
                    None
                }
            },
        };
        types.push(ty);
    }
    types
}

pub(super) fn validate_when(
    v: &mut Validator,
    known: &Known<'_>,
    phase: Phase,
    w: &Spanned<Value>,
) -> Option<When> {
    let pos = v.pos(w);
    let bad = |v: &mut Validator| {
        v.push(
            Problem::new(pos, "`when` must be true, false, or one reference to a boolean")
                .label("not a condition")
                .hint("e.g. `when: \"${params.contain}\"` or `when: \"!${params.dry}\"`; there are no operators"),
        );
        None
    };
    match &w.value {
        Value::Bool(b) => Some(When::Literal(*b)),
        Value::String(s) => {
            let (negate, body) = match s.trim().strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, s.trim()),
            };
            let t = match template::parse(body) {
                Ok(t) => t,
                Err(e) => {
                    v.push(
                        Problem::new(pos, e.message)
                            .label("bad reference")
                            .hint(e.hint),
                    );
                    return None;
                }
            };
            let Some(reference) = t.single_reference().cloned() else {
                return bad(v);
            };
            let types = check_references(v, known, phase, &t, body, pos);
            match types.first() {
                Some(Some(ValueType::Boolean)) | Some(None) => {
                    Some(When::Reference { reference, negate })
                }
                Some(Some(other)) => {
                    v.push(
                        Problem::new(
                            pos,
                            format!(
                                "`when` needs a boolean, but `${{{reference}}}` is {}",
                                article(*other)
                            ),
                        )
                        .label("not a boolean")
                        .hint("reference a boolean: a param declared `type: boolean` (e.g. `when: \"${params.contain}\"`) or a boolean output"),
                    );
                    None
                }
                None => bad(v),
            }
        }
        _ => bad(v),
    }
}
