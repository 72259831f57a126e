//! Building the plan: resolve each step's arguments, observe, plan; a step
//! that cannot be observed or needs a decision is recorded as such and the
//! others go on (contract 14).

use crate::state::AuditEvent;
use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{find_step, EngineError, Session};
use crate::action::spec::ParamDef;
use crate::action::{ActionError, Observation, Planned};
use crate::plan::{moved_fields, Decision, Plan, PlaybookRef, StepError, StepPlan, StepStatus};
use crate::playbook::model::When;
use crate::playbook::source::display_path;
use crate::playbook::template::{self, Reference, Scope};
use crate::playbook::{Phase, Playbook, Step};
use crate::state::Incident;

/// What references resolve against before any step has run.
pub fn scope_for(params: &Map<String, Value>, incident: &Incident) -> Scope {
    Scope {
        params: params.clone(),
        incident_id: incident.id.to_string(),
        incident_started_at: incident.meta.started_at.clone(),
        steps: Default::default(),
    }
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(5)).min(20_000))
}

fn value_uses_steps(v: &Value) -> bool {
    match v {
        Value::String(s) => template::parse(s)
            .map(|t| {
                t.references()
                    .any(|(r, _, _)| matches!(r, Reference::StepOutput { .. }))
            })
            .unwrap_or(false),
        Value::Array(items) => items.iter().any(value_uses_steps),
        _ => false,
    }
}

fn check_arg(def: Option<&ParamDef>, step: &Step, value: &Value) -> Result<(), EngineError> {
    match def {
        Some(def) => def.validate(value).map_err(|message| EngineError::Resolve {
            step: step.id.clone(),
            message,
        }),
        None => Ok(()),
    }
}

/// Resolves a step's arguments against `scope` and checks them again with
/// their real values (a param can carry a negative number).
pub fn resolve_args(step: &Step, scope: &Scope) -> Result<Map<String, Value>, EngineError> {
    let mut out = Map::new();
    for arg in &step.with {
        let value =
            template::render_value(&arg.value, scope).map_err(|e| EngineError::Resolve {
                step: step.id.clone(),
                message: e.to_string(),
            })?;
        check_arg(step.action.spec().param(&arg.name), step, &value)?;
        out.insert(arg.name.clone(), value);
    }
    Ok(out)
}

/// Checks, before any AWS call, every argument that depends only on params
/// and the incident: a bad `--param` fails here, not halfway through a run.
pub fn precheck(playbook: &Playbook, phases: &[Phase], scope: &Scope) -> Result<(), EngineError> {
    for step in playbook.steps_in(phases) {
        for arg in step.with.iter().filter(|a| !value_uses_steps(&a.value)) {
            let value =
                template::render_value(&arg.value, scope).map_err(|e| EngineError::Resolve {
                    step: step.id.clone(),
                    message: e.to_string(),
                })?;
            check_arg(step.action.spec().param(&arg.name), step, &value)?;
        }
        if let Some(When::Reference { reference, .. }) = &step.when {
            if !matches!(reference, Reference::StepOutput { .. })
                && scope.lookup(reference).and_then(|v| v.as_bool()).is_none()
            {
                return Err(EngineError::Resolve {
                    step: step.id.clone(),
                    message: format!("`when: ${{{reference}}}` has no boolean value"),
                });
            }
        }
    }
    Ok(())
}

fn eval_when(step: &Step, scope: &Scope) -> Result<bool, EngineError> {
    match &step.when {
        None => Ok(true),
        Some(When::Literal(b)) => Ok(*b),
        Some(When::Reference { reference, negate }) => {
            match scope.lookup(reference).and_then(|v| v.as_bool()) {
                Some(b) => Ok(b != *negate),
                None => Err(EngineError::Resolve {
                    step: step.id.clone(),
                    message: format!("`when: ${{{reference}}}` has no boolean value"),
                }),
            }
        }
    }
}

impl Session {
    /// One observation. `fresh` is false only while planning, when a read
    /// another step already made in this run may be shared.
    pub(crate) async fn observe_once(
        &self,
        step: &Step,
        args: &Map<String, Value>,
        fresh: bool,
    ) -> Result<Observation, EngineError> {
        let history = self.incident().journal.snapshot();
        let mut cx = self.step_context(args, &history, &step.id);
        cx.fresh = fresh;
        match tokio::time::timeout(step.timeout, step.action.observe(&cx)).await {
            Ok(r) => r.map_err(|e| Self::step_error(step, e)),
            Err(_) => Err(EngineError::Timeout {
                step: step.id.clone(),
                secs: step.timeout.as_secs(),
            }),
        }
    }

    /// Observes with the step's retries (reads are always safe to repeat).
    pub(crate) async fn observe(
        &self,
        step: &Step,
        args: &Map<String, Value>,
    ) -> Result<Observation, EngineError> {
        let mut attempt = 0;
        loop {
            match self.observe_once(step, args, false).await {
                Err(e) if e.retryable() && attempt < step.retries => {
                    tracing::warn!(step = %step.id, attempt, "observe failed, retrying: {e}");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    pub(crate) fn plan_step(
        &self,
        step: &Step,
        args: &Map<String, Value>,
        observed: &Observation,
    ) -> Result<Planned, EngineError> {
        let history = self.incident().journal.snapshot();
        let cx = self.step_context(args, &history, &step.id);
        step.action
            .plan(&cx, observed)
            .map_err(|e| Self::step_error(step, e))
    }

    /// Observe and plan every step of `phases`: the plan `plan` prints and
    /// `run` applies. Only reads AWS. A step that cannot be observed or
    /// planned is recorded as `failed`, one that needs a decision as
    /// `held`, and planning goes on: one open question or one failed read
    /// never keeps the other steps from running (contract 14).
    pub async fn build_plan(
        &self,
        playbook: &Playbook,
        params: &Map<String, Value>,
        phases: &[Phase],
    ) -> Result<Plan, EngineError> {
        let mut scope = self.scope(params);
        let mut steps = Vec::new();
        // Steps whose outputs later steps cannot have.
        let mut unavailable: Vec<String> = Vec::new();
        let all: Vec<&Step> = playbook.steps_in(phases).collect();
        // Observations run side by side (`ready_harm_steps`); each step is
        // planned at its turn, in the playbook's order, from its own.
        let mut reading = Reading::default();
        for (k, step) in all.iter().copied().enumerate() {
            let spec = step.action.spec();
            let blank = |status: StepStatus, note: Option<String>| StepPlan {
                id: step.id.clone(),
                phase: step.phase,
                action: spec.name.into(),
                status,
                args: Map::new(),
                target: None,
                observed: None,
                changes: vec![],
                outputs: Map::new(),
                note,
                decision: None,
                error: None,
            };
            if let Some(missing) = depends_on(step, &unavailable) {
                let e = EngineError::Resolve {
                    step: step.id.clone(),
                    message: format!("it needs the outputs of step `{missing}`, which did not run"),
                };
                let hint = format!("fix step `{missing}` first; this step runs once it can");
                let failed = self.failed_step(blank(StepStatus::Failed, None), &e, &hint)?;
                unavailable.push(step.id.clone());
                steps.push(failed);
                continue;
            }
            let when = match eval_when(step, &scope) {
                Ok(w) => w,
                Err(e) => {
                    unavailable.push(step.id.clone());
                    steps.push(self.failed_step(blank(StepStatus::Failed, None), &e, "")?);
                    continue;
                }
            };
            if !when {
                self.audit(
                    AuditEvent::Skipped,
                    Some(&step.id),
                    json!({"reason": "when is false"}),
                )?;
                unavailable.push(step.id.clone());
                steps.push(blank(StepStatus::Skipped, Some("`when` is false".into())));
                continue;
            }
            let args = match resolve_args(step, &scope) {
                Ok(a) => a,
                Err(e) => {
                    unavailable.push(step.id.clone());
                    steps.push(self.failed_step(blank(StepStatus::Failed, None), &e, "")?);
                    continue;
                }
            };
            reading.start(self, step, &args);
            for (s, with) in ready_harm_steps(&all, k, &scope, &unavailable, &reading.started) {
                reading.start(self, s, &with);
            }
            let observed = match reading.take(step, &args).await {
                Some(observed) => observed,
                // Started with other arguments (the scope only grows by
                // steps it does not reference, so never): read again.
                None => self.observe(step, &args).await,
            };
            let observed = match observed {
                Ok(o) => o,
                Err(e) => {
                    unavailable.push(step.id.clone());
                    let mut failed = blank(StepStatus::Failed, None);
                    failed.args = args;
                    steps.push(self.failed_step(failed, &e, "")?);
                    continue;
                }
            };
            self.audit(
                AuditEvent::Observation,
                Some(&step.id),
                json!({"action": spec.name, "target": observed.target, "state": observed.state}),
            )?;
            let planned = match self.plan_step(step, &args, &observed) {
                Ok(p) => p,
                Err(EngineError::Step {
                    source: ActionError::Decision(mut decision),
                    ..
                }) => {
                    resolve_how(&mut decision, step, &playbook.source.display_path());
                    self.audit(
                        AuditEvent::Held,
                        Some(&step.id),
                        json!({"target": observed.target, "decision": decision}),
                    )?;
                    unavailable.push(step.id.clone());
                    let mut held = blank(StepStatus::Held, None);
                    held.args = args;
                    held.target = Some(observed.target.clone());
                    held.observed = Some(observed.state);
                    held.decision = Some(*decision);
                    steps.push(held);
                    continue;
                }
                Err(e) => {
                    unavailable.push(step.id.clone());
                    let mut failed = blank(StepStatus::Failed, None);
                    failed.args = args;
                    failed.target = Some(observed.target.clone());
                    steps.push(self.failed_step(failed, &e, "")?);
                    continue;
                }
            };
            for c in &planned.changes {
                self.audit(
                    AuditEvent::Planned,
                    Some(&step.id),
                    serde_json::to_value(c).unwrap_or(Value::Null),
                )?;
            }
            let in_doubt = self
                .in_doubt_for(step, Some(&observed))
                .iter()
                .any(|r| !planned.changes.iter().any(|c| c.same_intent(&r.change)));
            let doubt_note = in_doubt.then(|| {
                "completed by an interrupted earlier run (re-observation confirms it)".to_string()
            });
            let note = match (planned.note.clone(), doubt_note) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.or(b),
            };
            let status = if !spec.mutating {
                StepStatus::Read
            } else if planned.changes.is_empty() {
                StepStatus::Satisfied
            } else {
                StepStatus::Changes
            };
            scope.steps.insert(step.id.clone(), planned.outputs.clone());
            steps.push(StepPlan {
                id: step.id.clone(),
                phase: step.phase,
                action: spec.name.into(),
                status,
                args,
                target: Some(observed.target.clone()),
                observed: Some(observed.state),
                changes: planned.changes,
                outputs: planned.outputs,
                note,
                decision: None,
                error: None,
            });
        }
        Ok(Plan {
            format: Plan::FORMAT,
            incident: self.incident_id.to_string(),
            playbook: PlaybookRef {
                name: playbook.name.clone(),
                path: display_path(&playbook.source.path),
                sha256: playbook.sha256.clone(),
            },
            params: params.clone(),
            phases: phases.to_vec(),
            account: self.caller.account.clone(),
            region: self.aws.region.clone(),
            created_at: crate::time::now_rfc3339(),
            steps,
        })
    }

    /// Records a step that could not be planned: in the trail, and in the
    /// plan with its message and hint.
    fn failed_step(
        &self,
        mut sp: StepPlan,
        e: &EngineError,
        hint: &str,
    ) -> Result<StepPlan, EngineError> {
        let hint = if hint.is_empty() {
            e.hint()
        } else {
            hint.to_string()
        };
        self.audit(
            AuditEvent::Error,
            Some(&sp.id),
            json!({"message": e.to_string(), "hint": hint, "phase": "plan"}),
        )?;
        sp.status = StepStatus::Failed;
        sp.error = Some(StepError {
            message: e.to_string(),
            hint,
        });
        Ok(sp)
    }

    /// For a saved plan: re-observe every step and refuse if anything moved
    /// or the plan would now be different.
    pub async fn check_fresh(&self, plan: &Plan, playbook: &Playbook) -> Result<(), EngineError> {
        if plan.incident != self.incident_id.as_str() {
            return Err(EngineError::PlanMismatch(format!(
                "it was made for incident {}, not {}",
                plan.incident,
                self.incident().id
            )));
        }
        if plan.playbook.sha256 != playbook.sha256 {
            return Err(EngineError::PlanMismatch(format!(
                "playbook {} changed since the plan was made",
                plan.playbook.path
            )));
        }
        if plan.account != self.caller.account || plan.region != self.aws.region {
            return Err(EngineError::PlanMismatch(format!(
                "it was made for account {} in {}, but the credentials are for account {} in {}",
                plan.account, plan.region, self.caller.account, self.aws.region
            )));
        }
        let mut details = Vec::new();
        for sp in plan.steps.iter().filter(|s| {
            !matches!(
                s.status,
                StepStatus::Skipped | StepStatus::Held | StepStatus::Failed
            )
        }) {
            let step = find_step(playbook, &sp.id)?;
            let observed = self.observe(step, &sp.args).await?;
            self.audit(AuditEvent::Observation, Some(&sp.id), json!({"action": sp.action, "target": observed.target, "state": observed.state, "purpose": "staleness check"}))?;
            let before = sp.observed.clone().unwrap_or(Value::Null);
            let moved = moved_fields(&before, &observed.state);
            if !moved.is_empty() {
                details.push(format!(
                    "step `{}` on {}: {}",
                    sp.id,
                    observed.target,
                    moved.join(", ")
                ));
                continue;
            }
            let now = self.plan_step(step, &sp.args, &observed)?;
            if now.changes != sp.changes {
                details.push(format!("step `{}`: the changes it would make are different now (the incident's journal moved)", sp.id));
            }
        }
        if details.is_empty() {
            Ok(())
        } else {
            self.audit(
                AuditEvent::Error,
                None,
                json!({"message": "stale plan", "details": details}),
            )?;
            Err(EngineError::Stale { details })
        }
    }
}

type Observing<'s> = std::pin::Pin<
    Box<dyn std::future::Future<Output = (String, Result<Observation, EngineError>)> + Send + 's>,
>;

/// The observations of one plan in flight, and those done but not yet
/// taken. Polled whenever planning waits for one, so every started read
/// goes on while earlier steps are planned.
#[derive(Default)]
struct Reading<'s> {
    in_flight: futures::stream::FuturesUnordered<Observing<'s>>,
    started: HashMap<String, Map<String, Value>>,
    done: HashMap<String, Result<Observation, EngineError>>,
}

impl<'s> Reading<'s> {
    /// Starts observing `step` with `args`, unless it was started already.
    fn start(&mut self, session: &'s Session, step: &'s Step, args: &Map<String, Value>) {
        if self.started.contains_key(&step.id) {
            return;
        }
        self.started.insert(step.id.clone(), args.clone());
        let args = args.clone();
        self.in_flight.push(Box::pin(async move {
            (step.id.clone(), session.observe(step, &args).await)
        }));
    }

    /// `step`'s observation once it is done (the others go on meanwhile);
    /// `None` when it was started with other arguments than `args`.
    async fn take(
        &mut self,
        step: &Step,
        args: &Map<String, Value>,
    ) -> Option<Result<Observation, EngineError>> {
        if self.started.get(&step.id) != Some(args) {
            return None;
        }
        loop {
            if let Some(observed) = self.done.remove(&step.id) {
                return Some(observed);
            }
            let (id, observed) = futures::StreamExt::next(&mut self.in_flight).await?;
            self.done.insert(id, observed);
        }
    }
}

/// The harm-stopping steps after `all[k]`, not yet `started`, that can be
/// observed now, alongside it, with their arguments: they reference no
/// step from `k` on (so nothing planned later changes what they read),
/// their `when` holds and their arguments resolve. A target's throttle and public access
/// start with `describe`, and its role quarantine as soon as `describe` is
/// planned, none waiting for another's reads: one function's plan takes
/// the longest chain of reads instead of the sum. Only harm-stopping steps
/// go ahead, so evidence reads never overtake containment's (contract 9).
/// What they observe is used at their turn, in the playbook's order, as if
/// read then.
fn ready_harm_steps<'p>(
    all: &[&'p Step],
    k: usize,
    scope: &Scope,
    unavailable: &[String],
    started: &HashMap<String, Map<String, Value>>,
) -> Vec<(&'p Step, Map<String, Value>)> {
    let pending: Vec<String> = all[k..].iter().map(|s| s.id.clone()).collect();
    all.iter()
        .skip(k + 1)
        .copied()
        .filter(|s| s.action.spec().stops_harm && !started.contains_key(&s.id))
        .filter(|s| depends_on(s, &pending).is_none() && depends_on(s, unavailable).is_none())
        .filter(|s| matches!(eval_when(s, scope), Ok(true)))
        .filter_map(|s| resolve_args(s, scope).ok().map(|a| (s, a)))
        .collect()
}

/// The first of `unavailable` whose outputs `step` references, if any.
fn depends_on<'a>(step: &Step, unavailable: &'a [String]) -> Option<&'a str> {
    let mut refs = Vec::new();
    for arg in &step.with {
        step_refs(&arg.value, &mut refs);
    }
    if let Some(When::Reference {
        reference: Reference::StepOutput { step: s, .. },
        ..
    }) = &step.when
    {
        refs.push(s.clone());
    }
    unavailable
        .iter()
        .find(|u| refs.iter().any(|r| r == *u))
        .map(String::as_str)
}

fn step_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Ok(t) = template::parse(s) {
                for (r, _, _) in t.references() {
                    if let Reference::StepOutput { step, .. } = r {
                        out.push(step.clone());
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| step_refs(i, out)),
        _ => {}
    }
}

/// Says how to choose each option: `--param NAME=VALUE` when the step's
/// argument is exactly a playbook param, otherwise an edit of the step.
fn resolve_how(decision: &mut Decision, step: &Step, playbook: &str) {
    let raw = step
        .with
        .iter()
        .find(|a| a.name == decision.argument)
        .map(|a| &a.value);
    let param = raw.and_then(Value::as_str).and_then(|s| {
        let t = template::parse(s).ok()?;
        let mut refs = t.references();
        let (first, _, _) = refs.next()?;
        if refs.next().is_some() || s.trim() != format!("${{{first}}}") {
            return None;
        }
        match first {
            Reference::Param(name) => Some(name.clone()),
            _ => None,
        }
    });
    for o in &mut decision.options {
        o.how = match &param {
            Some(name) => format!("--param {name}={}", o.value),
            None => format!(
                "set `{}: {}` in step `{}` of {playbook}",
                decision.argument, o.value, step.id
            ),
        };
    }
}
