//! Building the plan: resolve each step's arguments, observe, plan; a step
//! that cannot be observed or needs a decision is recorded as such and the
//! others go on (contract 14).

use crate::state::{AuditEvent, JournalRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use tokio::sync::Semaphore;

use super::apply::{Pass, Reread, TargetProgress};
use super::report::RunReport;
use super::{find_step, EngineError, Session};
use crate::action::spec::{HarmOrder, ParamDef};
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
    /// The journal a plan's step reads: as it is, less what this plan
    /// applied early (`OwnChanges`).
    fn history_for(&self, own: Option<&OwnChanges>) -> Arc<Vec<Arc<JournalRecord>>> {
        let incident = self.incident();
        let history = incident.journal.snapshot();
        let Some(hidden) = own.map(OwnChanges::list).filter(|h| !h.is_empty()) else {
            return history;
        };
        let run = incident.audit.run.clone();
        drop(incident);
        Arc::new(
            history
                .iter()
                .filter(|r| {
                    !(r.run == run
                        && hidden
                            .iter()
                            .any(|(step, target)| r.step == *step && r.change.target == *target))
                })
                .cloned()
                .collect(),
        )
    }

    /// One observation. `fresh` is false only while planning, when a read
    /// another step already made in this run may be shared.
    pub(crate) async fn observe_once(
        &self,
        step: &Step,
        args: &Map<String, Value>,
        fresh: bool,
        own: Option<&OwnChanges>,
    ) -> Result<Observation, EngineError> {
        let history = self.history_for(own);
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

    /// The step's `Action::first_look`, with its timeout; `None` when the
    /// action has none or it could not be read (the whole observation
    /// then reads it and says what failed).
    async fn first_look(
        &self,
        step: &Step,
        args: &Map<String, Value>,
        own: &OwnChanges,
    ) -> Option<Observation> {
        let history = self.history_for(Some(own));
        let mut cx = self.step_context(args, &history, &step.id);
        // A planning read: shared with the whole reading and with any
        // other step of the run that made it already.
        cx.fresh = false;
        match tokio::time::timeout(step.timeout, step.action.first_look(&cx)).await {
            Ok(Ok(look)) => look,
            Ok(Err(e)) => {
                tracing::debug!(step = %step.id, "first look failed; the whole reading says why: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// Plans `step`'s first look on its own and applies it, under `run
    /// --yes` (`Reading::start`): what it applied, in a report of its own
    /// (empty when there is no first look or nothing to change). Only what
    /// took effect is in it: a change refused or left in doubt (in the
    /// journal and the trail) is tried again with the whole, which reports
    /// it. No first look while an earlier run's intents on the step are in
    /// doubt: they are settled against the whole reading, never a part.
    /// `Err`: what the step's read comes to instead (the trail could not
    /// be written, or the apply failed as a whole).
    async fn apply_first_look(
        &self,
        playbook: &Playbook,
        step: &Step,
        args: &Map<String, Value>,
        own: &OwnChanges,
        function: Option<String>,
    ) -> Result<RunReport, Read> {
        let mut looked = RunReport::default();
        let Some(first) = self.first_look(step, args, own).await else {
            return Ok(looked);
        };
        if !self.in_doubt_for(step, Some(&first)).is_empty() {
            return Ok(looked);
        }
        let sp = match self.settle_part(
            playbook,
            step,
            args.clone(),
            first,
            Some(own),
            Part::FirstLook,
        ) {
            Ok(Settled::Planned(sp)) if !sp.changes.is_empty() => sp,
            Ok(_) => return Ok(looked),
            Err(e) => return Err(Read::Early(Box::new((Err(e), None)))),
        };
        if step.action.spec().own_state {
            own.add(&step.id, &sp.changes);
        }
        let applied = self
            .apply_chosen(
                function,
                vec![(&sp, step)],
                Reread::SharedState,
                Pass::Harm,
                &mut looked,
                &mut TargetProgress::default(),
            )
            .await;
        match applied {
            Ok(()) => {
                looked.failures.clear();
                looked.aborted.clear();
                Ok(looked)
            }
            Err(e) => Err(Read::Early(Box::new((
                Ok(Settled::Unavailable(sp)),
                Some(Err(e)),
            )))),
        }
    }

    /// Observes with the step's retries (reads are always safe to repeat).
    pub(crate) async fn observe(
        &self,
        step: &Step,
        args: &Map<String, Value>,
        own: Option<&OwnChanges>,
    ) -> Result<Observation, EngineError> {
        let mut attempt = 0;
        loop {
            match self.observe_once(step, args, false, own).await {
                Err(e) if e.retryable() && attempt < step.retries => {
                    tracing::warn!(step = %step.id, attempt, "observe failed, retrying: {e}");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `Action::listed_outputs` of `step` with `args`.
    fn listed_outputs(&self, step: &Step, args: &Map<String, Value>) -> Option<Map<String, Value>> {
        let cx = self.step_context(args, &[], &step.id);
        step.action.listed_outputs(&cx)
    }

    pub(crate) fn plan_step(
        &self,
        step: &Step,
        args: &Map<String, Value>,
        observed: &Observation,
        own: Option<&OwnChanges>,
    ) -> Result<Planned, EngineError> {
        let history = self.history_for(own);
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
        let (plan, _) = self.build_plan_with(playbook, params, phases, None).await?;
        Ok(plan)
    }

    /// `build_plan`, and under `run --yes` (`containing`) the harm-stopping
    /// steps `applies_early` takes applied as soon as each is planned:
    /// with what each of them came to, by step id.
    pub(crate) async fn build_plan_with(
        &self,
        playbook: &Playbook,
        params: &Map<String, Value>,
        phases: &[Phase],
        containing: Option<&Containing<'_>>,
    ) -> Result<(Plan, Vec<EarlyApplied>), EngineError> {
        let mut scope = self.scope(params);
        let mut steps = Vec::new();
        // Steps whose outputs later steps cannot have.
        let mut unavailable: Vec<String> = Vec::new();
        let all: Vec<&Step> = playbook.steps_in(phases).collect();
        // Observations run side by side (`ready_harm_steps`); each step is
        // planned at its turn, in the playbook's order, from its own.
        let mut reading = Reading::new(self, playbook, params, &all, containing);
        let mut early = Vec::new();
        for (k, step) in all.iter().copied().enumerate() {
            if let Some(missing) = depends_on(step, &unavailable) {
                let e = EngineError::Resolve {
                    step: step.id.clone(),
                    message: format!("it needs the outputs of step `{missing}`, which did not run"),
                };
                let hint = format!("fix step `{missing}` first; this step runs once it can");
                let failed = self.failed_step(blank(step, StepStatus::Failed, None), &e, &hint)?;
                unavailable.push(step.id.clone());
                steps.push(failed);
                continue;
            }
            let when = match eval_when(step, &scope) {
                Ok(w) => w,
                Err(e) => {
                    unavailable.push(step.id.clone());
                    steps.push(self.failed_step(blank(step, StepStatus::Failed, None), &e, "")?);
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
                steps.push(blank(
                    step,
                    StepStatus::Skipped,
                    Some("`when` is false".into()),
                ));
                continue;
            }
            let args = match resolve_args(step, &scope) {
                Ok(a) => a,
                Err(e) => {
                    unavailable.push(step.id.clone());
                    steps.push(self.failed_step(blank(step, StepStatus::Failed, None), &e, "")?);
                    continue;
                }
            };
            reading.start(step, &args);
            // What the listing already says of this step's outputs lets the
            // harm-stopping steps that use only those start now, without
            // waiting for its read (`Action::listed_outputs`).
            let listed = self.listed_outputs(step, &args).map(|outputs| {
                let mut ahead = scope.clone();
                ahead.steps.insert(step.id.clone(), outputs);
                ahead
            });
            let (ahead, pending_from) = match &listed {
                Some(ahead) => (ahead, k + 1),
                None => (&scope, k),
            };
            for (s, with) in
                ready_harm_steps(&all, k, pending_from, ahead, &unavailable, &reading.started)
            {
                reading.start(s, &with);
            }
            let read = match reading.take(step, &args).await {
                Some(read) => read,
                // Started with other arguments: from the listing, which
                // named another role than describe's own reading (the
                // function's role changed in between). Read again; what
                // the first reading applied is reported (`finish`).
                None => Read::Observed(self.observe(step, &args, Some(&reading.own)).await),
            };
            let settled = match read {
                Read::Observed(Ok(observed)) => {
                    self.settle(playbook, step, args, observed, Some(&reading.own))?
                }
                Read::Observed(Err(e)) => {
                    let mut failed = blank(step, StepStatus::Failed, None);
                    failed.args = args;
                    Settled::Unavailable(self.failed_step(failed, &e, "")?)
                }
                Read::Early(early_read) => {
                    let (settled, applied) = *early_read;
                    if let Some(applied) = applied {
                        early.push(applied?);
                    }
                    settled?
                }
            };
            match settled {
                Settled::Planned(sp) => {
                    scope.steps.insert(step.id.clone(), sp.outputs.clone());
                    steps.push(sp);
                }
                Settled::Unavailable(sp) => {
                    unavailable.push(step.id.clone());
                    steps.push(sp);
                }
            }
        }
        // Nothing a step applied goes unreported, taken at its turn or not.
        early.extend(reading.finish().await?);
        Ok((
            Plan {
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
            },
            early,
        ))
    }

    /// Plans one observed step, in the trail (what it observed, then each
    /// change it plans) and as its line of the plan. Made at the step's
    /// turn, or, for a step applied early, as soon as it is observed: it
    /// depends only on the step, its arguments and the journal.
    fn settle(
        &self,
        playbook: &Playbook,
        step: &Step,
        args: Map<String, Value>,
        observed: Observation,
        own: Option<&OwnChanges>,
    ) -> Result<Settled, EngineError> {
        self.settle_part(playbook, step, args, observed, own, Part::Whole)
    }

    /// `settle` for a part of the step's observation: a first look's
    /// records in the trail say so (`"first_look": true`), so that a
    /// reader of the trail knows the step's whole observation follows and
    /// why its changes are planned twice but applied once.
    fn settle_part(
        &self,
        playbook: &Playbook,
        step: &Step,
        args: Map<String, Value>,
        observed: Observation,
        own: Option<&OwnChanges>,
        part: Part,
    ) -> Result<Settled, EngineError> {
        let spec = step.action.spec();
        let marked = |mut v: Value| {
            if let (Part::FirstLook, Some(m)) = (part, v.as_object_mut()) {
                m.insert("first_look".into(), Value::Bool(true));
            }
            v
        };
        self.audit(
            AuditEvent::Observation,
            Some(&step.id),
            marked(
                json!({"action": spec.name, "target": observed.target, "state": observed.state}),
            ),
        )?;
        let planned = match self.plan_step(step, &args, &observed, own) {
            Ok(p) => p,
            Err(EngineError::Step {
                source: ActionError::Decision(mut decision),
                ..
            }) => {
                resolve_how(&mut decision, step, &playbook.source.display_path());
                self.audit(
                    AuditEvent::Held,
                    Some(&step.id),
                    marked(json!({"target": observed.target, "decision": decision})),
                )?;
                let mut held = blank(step, StepStatus::Held, None);
                held.args = args;
                held.target = Some(observed.target.clone());
                held.observed = Some(observed.state);
                held.decision = Some(*decision);
                return Ok(Settled::Unavailable(held));
            }
            Err(e) => {
                let mut failed = blank(step, StepStatus::Failed, None);
                failed.args = args;
                failed.target = Some(observed.target.clone());
                return Ok(Settled::Unavailable(self.failed_step(failed, &e, "")?));
            }
        };
        for c in &planned.changes {
            self.audit(
                AuditEvent::Planned,
                Some(&step.id),
                marked(serde_json::to_value(c).unwrap_or(Value::Null)),
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
        Ok(Settled::Planned(StepPlan {
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
        }))
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
            let observed = self.observe(step, &sp.args, None).await?;
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
            let now = self.plan_step(step, &sp.args, &observed, None)?;
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

/// `run --yes`: a target's plan is made while it is applied, no human
/// reading it in between.
pub(crate) struct Containing<'a> {
    /// Taken by every observation of a step that does not stop harm, for
    /// its duration: the run works on all its targets at once so that
    /// every target's harm-stopping calls queue for the quota together
    /// (issue 15), and this keeps the rest (evidence's reads, an
    /// indicator's) to `--concurrency` targets at a time.
    pub gate: &'a Semaphore,
}

/// What one step applied while its target was being planned
/// (`Containing`): its id, and its part of the target's report.
pub(crate) struct EarlyApplied {
    pub step: String,
    pub report: RunReport,
    pub progress: TargetProgress,
    /// Applied from a reading the plan did not keep (started with the
    /// role the listing named, planned at its turn with another): only
    /// reported; the plan's own line is still to apply.
    pub superseded: bool,
}

/// The changes to the function's own state (`ActionSpec::own_state`) a
/// plan applied early (step id, resource), which its own later steps plan
/// as if not yet made, as they did when every change waited for the whole
/// plan: the plan is made from one reading of AWS, and the throttle it
/// applied a moment ago is not a change this incident made before
/// (`concurrency::read_planned` would confirm that one with a call on the
/// quota every other target is waiting for).
#[derive(Default)]
pub(crate) struct OwnChanges(Mutex<Vec<(String, String)>>);

impl OwnChanges {
    fn add(&self, step: &str, changes: &[crate::plan::Change]) {
        let mut own = self.0.lock().unwrap_or_else(|e| e.into_inner());
        own.extend(changes.iter().map(|c| (step.to_string(), c.target.clone())));
    }

    fn list(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Which reading of a step's observation a trail record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    /// `Action::first_look`: the part whose changes need no other read.
    FirstLook,
}

/// One step's line of the plan.
enum Settled {
    /// Planned: its outputs are in the scope for later steps.
    Planned(StepPlan),
    /// Held for a decision, or failed: later steps cannot use it.
    Unavailable(StepPlan),
}

/// A step's plan line, and what applying it came to (`None`: nothing to
/// apply).
type AppliedEarly = (
    Result<Settled, EngineError>,
    Option<Result<EarlyApplied, EngineError>>,
);

/// What a started observation came to.
enum Read {
    /// Observed; planned at the step's turn.
    Observed(Result<Observation, EngineError>),
    /// Observed, planned and its changes applied (`applies_early`).
    /// Boxed: a plan line and a report part are large, and most reads are
    /// of the other kind.
    Early(Box<AppliedEarly>),
}

/// A line of the plan with nothing observed.
fn blank(step: &Step, status: StepStatus, note: Option<String>) -> StepPlan {
    StepPlan {
        id: step.id.clone(),
        phase: step.phase,
        action: step.action.spec().name.into(),
        status,
        args: Map::new(),
        target: None,
        observed: None,
        changes: vec![],
        outputs: Map::new(),
        note,
        decision: None,
        error: None,
    }
}

/// Whether `run --yes` applies `step` as soon as it is planned, before
/// its target's other steps are.
///
/// When the plan preserves the attacker's artifacts in evidence
/// (`HarmOrder::Preserve`), the throttle (`Function`) and the role's deny
/// (`Shared`) still go ahead: they remove nothing (the quarantine's
/// detach and deletions wait for pass 2, `Action::change_stops_harm`),
/// and the evidence records what the plan read before them, from the
/// run's shared planning reads that each of them made before its change
/// (the function's GetFunction, `concurrency::read_planned`, with the
/// plan's own early changes hidden from its journal, `OwnChanges`; the
/// role's policy lists and inline documents, `role::attached_planned`
/// and `inline_planned`, or the account's role pages, which the deny
/// then waits for). What closes a way in (`Access`) removes what
/// the evidence keeps, so it waits for the plan, and pass 1 applies it in
/// `HarmOrder`, after the evidence.
fn applies_early(step: &Step, preserves: bool) -> bool {
    let spec = step.action.spec();
    spec.stops_harm
        && match spec.harm_order {
            HarmOrder::Preserve => false,
            HarmOrder::Function | HarmOrder::Shared => true,
            HarmOrder::Access => !preserves,
        }
}

/// Whether `steps` preserve the attacker's artifacts in evidence before
/// containing (`applies_early`).
fn preserves_evidence(steps: &[&Step]) -> bool {
    steps.iter().any(|s| {
        let spec = s.action.spec();
        spec.stops_harm && spec.harm_order == HarmOrder::Preserve
    })
}

type Observing<'s> =
    std::pin::Pin<Box<dyn std::future::Future<Output = (String, Read)> + Send + 's>>;

/// The observations of one plan in flight, and those done but not yet
/// taken. Polled whenever planning waits for one, so every started read
/// goes on while earlier steps are planned.
struct Reading<'s> {
    session: &'s Session,
    playbook: &'s Playbook,
    function: Option<String>,
    containing: Option<&'s Containing<'s>>,
    /// The plan has a step that preserves what others remove.
    preserves: bool,
    in_flight: futures::stream::FuturesUnordered<Observing<'s>>,
    started: HashMap<String, Map<String, Value>>,
    done: HashMap<String, Read>,
    own: Arc<OwnChanges>,
}

impl<'s> Reading<'s> {
    fn new(
        session: &'s Session,
        playbook: &'s Playbook,
        params: &Map<String, Value>,
        all: &[&Step],
        containing: Option<&'s Containing<'s>>,
    ) -> Self {
        Self {
            session,
            playbook,
            function: params
                .get("function")
                .and_then(Value::as_str)
                .map(str::to_string),
            containing,
            preserves: preserves_evidence(all),
            in_flight: Default::default(),
            started: HashMap::new(),
            done: HashMap::new(),
            own: Arc::default(),
        }
    }

    /// Starts observing `step` with `args`, unless it was started already;
    /// under `Containing`, also planning and applying it if it
    /// `applies_early`.
    fn start(&mut self, step: &'s Step, args: &Map<String, Value>) {
        if self.started.contains_key(&step.id) {
            return;
        }
        self.started.insert(step.id.clone(), args.clone());
        let args = args.clone();
        let session = self.session;
        let playbook = self.playbook;
        let containing = self.containing;
        let early = containing.is_some() && applies_early(step, self.preserves);
        // The evidence of this plan and of the run's other targets reads
        // the role after this deny, from the run's shared reads; the
        // account-wide pages among them must be read before it.
        let before_deny = self.preserves && step.action.spec().harm_order == HarmOrder::Shared;
        let function = self.function.clone();
        let own = self.own.clone();
        self.in_flight.push(Box::pin(async move {
            let gate = containing.filter(|_| !step.action.spec().stops_harm);
            // The semaphore is never closed; were it, the read goes on.
            let _permit = match gate {
                Some(c) => c.gate.acquire().await.ok(),
                None => None,
            };
            // What the first look applied: the whole plan lists it again
            // (read from the same shared reading) but does not repeat it.
            let looked = match early {
                true => {
                    let f = function.clone();
                    session
                        .apply_first_look(playbook, step, &args, &own, f)
                        .await
                }
                false => Ok(RunReport::default()),
            };
            let mut report = match looked {
                Ok(looked) => looked,
                Err(read) => return (step.id.clone(), read),
            };
            let mut progress = TargetProgress::default();
            let observed = session.observe(step, &args, Some(&own)).await;
            let observed = match observed {
                Ok(o) if early => o,
                other if report.outcomes.is_empty() => {
                    return (step.id.clone(), Read::Observed(other))
                }
                // The first look changed something: what it came to is
                // reported with the step whatever the rest comes to.
                other => {
                    let settled = match other {
                        Ok(o) => session.settle(playbook, step, args, o, Some(&own)),
                        Err(e) => {
                            let mut failed = blank(step, StepStatus::Failed, None);
                            failed.args = args;
                            session
                                .failed_step(failed, &e, "")
                                .map(Settled::Unavailable)
                        }
                    };
                    let applied = EarlyApplied {
                        step: step.id.clone(),
                        report,
                        progress,
                        superseded: false,
                    };
                    return (
                        step.id.clone(),
                        Read::Early(Box::new((settled, Some(Ok(applied))))),
                    );
                }
            };
            let settled = session.settle(playbook, step, args, observed, Some(&own));
            let applied = match &settled {
                Ok(Settled::Planned(sp)) => {
                    // Only the function's own state: a later step that
                    // reads shared state the change touched (discovery
                    // reading a quarantined role) must know the change is
                    // firebreak's, from the journal.
                    if step.action.spec().own_state {
                        own.add(&step.id, &sp.changes);
                    }
                    if before_deny && !sp.changes.is_empty() {
                        crate::action::iam::role_index::planned_pages_read(
                            &session.run,
                            &session.aws,
                        )
                        .await;
                    }
                    let mut rest = sp.clone();
                    rest.changes
                        .retain(|c| !report.outcomes.iter().any(|o| o.change.same_intent(c)));
                    let r = session
                        .apply_chosen(
                            function,
                            vec![(&rest, step)],
                            // The plan was made a moment ago, by this run.
                            Reread::SharedState,
                            Pass::Harm,
                            &mut report,
                            &mut progress,
                        )
                        .await;
                    Some(r.map(|()| EarlyApplied {
                        step: step.id.clone(),
                        report,
                        progress,
                        superseded: false,
                    }))
                }
                // The first look's part is reported whatever the whole
                // came to.
                _ if !report.outcomes.is_empty() => Some(Ok(EarlyApplied {
                    step: step.id.clone(),
                    report,
                    progress,
                    superseded: false,
                })),
                _ => None,
            };
            (step.id.clone(), Read::Early(Box::new((settled, applied))))
        }));
    }

    /// `step`'s observation (or, applied early, its planned line) once it
    /// is done (the others go on meanwhile); `None` when it was started
    /// with other arguments than `args`.
    async fn take(&mut self, step: &Step, args: &Map<String, Value>) -> Option<Read> {
        if self.started.get(&step.id) != Some(args) {
            return None;
        }
        loop {
            if let Some(read) = self.done.remove(&step.id) {
                return Some(read);
            }
            let (id, read) = futures::StreamExt::next(&mut self.in_flight).await?;
            self.done.insert(id, read);
        }
    }

    /// Waits for what is still in flight; what any of it applied. None of
    /// it is the plan's: a reading the plan kept was taken at its step's
    /// turn (`take`), so what is left here is only reported (`superseded`).
    async fn finish(mut self) -> Result<Vec<EarlyApplied>, EngineError> {
        while let Some((id, read)) = futures::StreamExt::next(&mut self.in_flight).await {
            self.done.insert(id, read);
        }
        let mut applied = Vec::new();
        for (_, read) in self.done {
            if let Read::Early(early_read) = read {
                if let (_, Some(a)) = *early_read {
                    applied.push(EarlyApplied {
                        superseded: true,
                        ..a?
                    });
                }
            }
        }
        Ok(applied)
    }
}

/// The harm-stopping steps after `all[k]`, not yet `started`, that can be
/// observed now, alongside it, with their arguments: they reference no
/// step from `pending_from` on (so nothing planned later changes what they
/// read), their `when` holds and their arguments resolve. `pending_from`
/// is `k`, or `k + 1` when `scope` holds what the listing says of
/// `all[k]`'s outputs (`Action::listed_outputs`). A target's throttle and
/// public access start with `describe`, and its role quarantine as soon as
/// the listing or `describe` names the role, none waiting for another's
/// reads: one function's plan takes the longest chain of reads instead of
/// the sum. Only harm-stopping steps go ahead, so evidence reads never
/// overtake containment's (contract 9). What they observe is used at their
/// turn, in the playbook's order, as if read then, if their arguments
/// resolve the same then (`Reading::take`).
fn ready_harm_steps<'p>(
    all: &[&'p Step],
    k: usize,
    pending_from: usize,
    scope: &Scope,
    unavailable: &[String],
    started: &HashMap<String, Map<String, Value>>,
) -> Vec<(&'p Step, Map<String, Value>)> {
    let pending: Vec<String> = all[pending_from.min(all.len())..]
        .iter()
        .map(|s| s.id.clone())
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::load;
    use std::path::Path;

    fn early_steps(path: &str) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let pb = load::load(&root.join(path)).expect("the playbook loads");
        let all: Vec<&Step> = pb.steps_in(&[Phase::Identify, Phase::Contain]).collect();
        let preserves = preserves_evidence(&all);
        all.iter()
            .filter(|s| applies_early(s, preserves))
            .map(|s| s.id.clone())
            .collect()
    }

    fn ahead_of(path: &str, k: usize, pending_from: usize, facts: Option<Value>) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let pb = load::load(&root.join(path)).expect("the playbook loads");
        let all: Vec<&Step> = pb.steps_in(&[Phase::Identify, Phase::Contain]).collect();
        let mut scope = Scope {
            params: serde_json::from_value(json!({"function": "orders", "scope": "role"}))
                .expect("params"),
            incident_id: "INC-1".into(),
            incident_started_at: "2026-12-05T00:00:00Z".into(),
            steps: Default::default(),
        };
        if let Some(Value::Object(outputs)) = facts {
            scope.steps.insert("facts".into(), outputs);
        }
        ready_harm_steps(&all, k, pending_from, &scope, &[], &HashMap::new())
            .into_iter()
            .map(|(s, with)| match with.get("role") {
                Some(role) => format!("{} {}", s.id, role.as_str().unwrap_or("?")),
                None => s.id.clone(),
            })
            .collect()
    }

    /// With describe still to read, its role quarantine waits for it;
    /// with what the listing says of its outputs, it goes with the
    /// throttle, on the listed role.
    #[test]
    fn a_quarantine_goes_ahead_on_the_role_the_listing_names() {
        let contain = "tests/playbooks/contain-only.yaml";
        assert_eq!(
            ahead_of(contain, 0, 0, None),
            ["throttle", "close-public-access"]
        );
        let listed = json!({
            "function_arn": "arn:aws:lambda:us-east-1:111111111111:function:orders",
            "function_name": "orders",
            "role_arn": "arn:aws:iam::111111111111:role/orders-role",
        });
        assert_eq!(
            ahead_of(contain, 0, 1, Some(listed.clone())),
            [
                "throttle",
                "close-public-access",
                "quarantine-role arn:aws:iam::111111111111:role/orders-role"
            ]
        );
        // The listing's outputs alone do not make describe's turn over:
        // a step after another pending one still waits for that one.
        assert_eq!(
            ahead_of(contain, 0, 0, Some(listed)),
            ["throttle", "close-public-access"]
        );
    }

    /// Every harm-stopping step goes as soon as it is planned; where the
    /// plan first preserves the attacker's artifacts in evidence, only the
    /// throttle and the role's deny, which remove none of them.
    #[test]
    fn only_what_removes_nothing_goes_ahead_of_a_plan_that_preserves_evidence() {
        assert_eq!(
            early_steps("playbooks/lambda-compromise.yaml"),
            ["throttle", "quarantine-role"]
        );
        assert_eq!(
            early_steps("tests/playbooks/contain-only.yaml"),
            ["throttle", "close-public-access", "quarantine-role"]
        );
    }
}
