//! The executor: builds the plan (observe → plan for every step), applies
//! it step by step under the journal, and verifies the result.
//!
//! Order of durable writes around each mutation (the heart of resume):
//!   re-observe → re-plan → journal `intent` (fsync) → audit → AWS call →
//!   journal `applied`/`failed` (fsync) → audit.
//! The re-observation right before the call makes each change a compare-
//! and-swap: if the resource is already at `after` the call is skipped (a
//! previous run did it), if it is at neither `before` nor `after` someone
//! else changed it and the step stops as stale rather than guessing.

pub mod custody;
pub mod hooks;
pub mod params;
pub mod recover;
pub mod targets;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::action::spec::ParamDef;
use crate::action::{Action, ActionError, Check, Observation, Planned, Receipt, StepContext};
use crate::aws::{Aws, Caller};
use crate::plan::{moved_fields, short, Change, Plan, PlaybookRef, StepPlan, StepStatus};
use crate::playbook::model::{OnError, When};
use crate::playbook::source::display_path;
use crate::playbook::template::{self, Reference, Scope};
use crate::playbook::{Phase, Playbook, Step};
use crate::state::{Incident, JournalEvent, JournalRecord, StateError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("step `{step}` ({action}) failed: {source}")]
    Step {
        step: String,
        action: String,
        #[source]
        source: ActionError,
    },
    #[error("step `{step}` timed out after {secs} s")]
    Timeout { step: String, secs: u64 },
    #[error("step `{step}`: {message}")]
    Resolve { step: String, message: String },
    #[error("the plan is stale, the observed state has moved since it was made:\n  {}", .details.join("\n  "))]
    Stale { details: Vec<String> },
    #[error("the saved plan does not match: {0}")]
    PlanMismatch(String),
    #[error(transparent)]
    State(#[from] StateError),
}

impl EngineError {
    pub fn hint(&self) -> String {
        match self {
            EngineError::Step { source, .. } => source.hint().to_string(),
            EngineError::Timeout { .. } => "re-run the same command: the journal makes it resume without repeating a change; raise the step's `timeout` if AWS is slow".into(),
            EngineError::Resolve { .. } => "check the params given with --param and the outputs this step references".into(),
            EngineError::Stale { .. } => "make a new plan (`firebreak plan ... --out FILE`), review it, and apply that one".into(),
            EngineError::PlanMismatch(_) => "apply a plan with the same playbook, incident, account and region it was made for, or make a new plan".into(),
            EngineError::State(e) => e.hint(),
        }
    }

    /// The call may have taken effect even though it failed.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            EngineError::Step { source, .. } => source.outcome_unknown(),
            EngineError::Timeout { .. } => true,
            _ => false,
        }
    }

    pub fn retryable(&self) -> bool {
        match self {
            EngineError::Step { source, .. } => source.retryable(),
            EngineError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// What happened to one planned change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The AWS call was made by this run.
    Applied,
    /// An interrupted earlier run had made it; re-observation confirmed it.
    Confirmed,
    /// Someone else had already brought it to the desired state.
    AlreadySatisfied,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeOutcome {
    pub step: String,
    pub outcome: Outcome,
    pub change: Change,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepCheck {
    pub step: String,
    #[serde(flatten)]
    pub check: Check,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepFailure {
    pub step: String,
    pub target: Option<String>,
    /// Refused rather than failed: the state moved under the plan.
    pub refused: bool,
    pub action: String,
    pub message: String,
    pub hint: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub outcomes: Vec<ChangeOutcome>,
    pub checks: Vec<StepCheck>,
    pub failures: Vec<StepFailure>,
    /// The step where an `on_error: abort` failure stopped the run.
    pub aborted_at: Option<String>,
}

impl RunReport {
    pub fn checks_failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.check.passed).count()
    }
}

/// One command's work on one incident. Several targets work through one
/// session at once: the incident (journal, trail) sits behind a mutex that
/// is held only for one append or read, never across an AWS call, so the
/// trail stays one linear chain and every journal record is still fsync'd
/// before its call.
pub struct Session {
    pub aws: Aws,
    pub caller: Caller,
    incident: Mutex<Incident>,
    incident_id: String,
    started_at: String,
}

/// What references resolve against before any step has run.
pub fn scope_for(params: &Map<String, Value>, incident: &Incident) -> Scope {
    Scope {
        params: params.clone(),
        incident_id: incident.id.to_string(),
        incident_started_at: incident.meta.started_at.clone(),
        steps: Default::default(),
    }
}

fn backoff(attempt: u32) -> Duration {
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
    pub fn new(aws: Aws, caller: Caller, incident: Incident) -> Self {
        Self {
            incident_id: incident.id.to_string(),
            started_at: incident.meta.started_at.clone(),
            incident: Mutex::new(incident),
            aws,
            caller,
        }
    }

    /// The incident, for one short read or append.
    pub fn incident(&self) -> MutexGuard<'_, Incident> {
        // Poisoned only if a thread panicked mid-append; the files are
        // still consistent (each record is written whole or cut on open).
        self.incident.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn scope(&self, params: &Map<String, Value>) -> Scope {
        Scope {
            params: params.clone(),
            incident_id: self.incident_id.clone(),
            incident_started_at: self.started_at.clone(),
            steps: Default::default(),
        }
    }

    pub fn audit(&self, event: &str, step: Option<&str>, data: Value) -> Result<(), EngineError> {
        self.incident()
            .audit
            .append(event, step, data)
            .map_err(EngineError::from)
    }

    fn step_error(step: &Step, source: ActionError) -> EngineError {
        EngineError::Step {
            step: step.id.clone(),
            action: step.action.spec().name.to_string(),
            source,
        }
    }

    async fn observe_once(
        &self,
        step: &Step,
        args: &Map<String, Value>,
    ) -> Result<Observation, EngineError> {
        let history = self.incident().journal.records().to_vec();
        let cx = StepContext {
            aws: &self.aws,
            caller: &self.caller,
            args,
            history: &history,
            step_id: &step.id,
            incident_started_at: &self.started_at,
            incident_id: self.incident_id.as_str(),
        };
        match tokio::time::timeout(step.timeout, step.action.observe(&cx)).await {
            Ok(r) => r.map_err(|e| Self::step_error(step, e)),
            Err(_) => Err(EngineError::Timeout {
                step: step.id.clone(),
                secs: step.timeout.as_secs(),
            }),
        }
    }

    /// Observes with the step's retries (reads are always safe to repeat).
    async fn observe(
        &self,
        step: &Step,
        args: &Map<String, Value>,
    ) -> Result<Observation, EngineError> {
        let mut attempt = 0;
        loop {
            match self.observe_once(step, args).await {
                Err(e) if e.retryable() && attempt < step.retries => {
                    tracing::warn!(step = %step.id, attempt, "observe failed, retrying: {e}");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn plan_step(
        &self,
        step: &Step,
        args: &Map<String, Value>,
        observed: &Observation,
    ) -> Result<Planned, EngineError> {
        let history = self.incident().journal.records().to_vec();
        let cx = StepContext {
            aws: &self.aws,
            caller: &self.caller,
            args,
            history: &history,
            step_id: &step.id,
            incident_started_at: &self.started_at,
            incident_id: self.incident_id.as_str(),
        };
        step.action
            .plan(&cx, observed)
            .map_err(|e| Self::step_error(step, e))
    }

    /// Observe and plan every step of `phases`: the plan `plan` prints and
    /// `run` applies. Only reads AWS.
    pub async fn build_plan(
        &self,
        playbook: &Playbook,
        params: &Map<String, Value>,
        phases: &[Phase],
    ) -> Result<Plan, EngineError> {
        let mut scope = self.scope(params);
        let mut steps = Vec::new();
        for step in playbook.steps_in(phases) {
            let spec = step.action.spec();
            if !eval_when(step, &scope)? {
                self.audit(
                    "skipped",
                    Some(&step.id),
                    json!({"reason": "when is false"}),
                )?;
                steps.push(StepPlan {
                    id: step.id.clone(),
                    phase: step.phase,
                    action: spec.name.into(),
                    status: StepStatus::Skipped,
                    args: Map::new(),
                    target: None,
                    observed: None,
                    changes: vec![],
                    outputs: Map::new(),
                    note: Some("`when` is false".into()),
                });
                continue;
            }
            let args = resolve_args(step, &scope)?;
            let observed = match self.observe(step, &args).await {
                Ok(o) => o,
                Err(e) => {
                    self.audit(
                        "error",
                        Some(&step.id),
                        json!({"message": e.to_string(), "hint": e.hint()}),
                    )?;
                    return Err(e);
                }
            };
            self.audit(
                "observation",
                Some(&step.id),
                json!({"action": spec.name, "target": observed.target, "state": observed.state}),
            )?;
            let planned = self.plan_step(step, &args, &observed)?;
            for c in &planned.changes {
                self.audit(
                    "planned",
                    Some(&step.id),
                    serde_json::to_value(c).unwrap_or(Value::Null),
                )?;
            }
            let in_doubt = self.incident().journal.in_doubt().iter().any(|r| {
                r.step == step.id && !planned.changes.iter().any(|c| c.same_intent(&r.change))
            });
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
        for sp in plan
            .steps
            .iter()
            .filter(|s| s.status != StepStatus::Skipped)
        {
            let step = find_step(playbook, &sp.id)?;
            let observed = self.observe(step, &sp.args).await?;
            self.audit("observation", Some(&sp.id), json!({"action": sp.action, "target": observed.target, "state": observed.state, "purpose": "staleness check"}))?;
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
                "error",
                None,
                json!({"message": "stale plan", "details": details}),
            )?;
            Err(EngineError::Stale { details })
        }
    }

    /// Applies a plan, then verifies every mutating step that ran.
    pub async fn apply_plan(
        &self,
        plan: &Plan,
        playbook: &Playbook,
    ) -> Result<RunReport, EngineError> {
        let mut report = RunReport::default();
        // What stops harm goes first (contract 9): evidence steps were
        // observed while planning, before any change, and are written
        // after containment, like the rest.
        for harm in [true, false] {
            self.apply_steps(
                plan,
                playbook,
                |s| s.action.spec().stops_harm == harm,
                &mut report,
            )
            .await?;
            if report.aborted_at.is_some() {
                break;
            }
        }
        if report.aborted_at.is_none() {
            self.verify_plan(plan, playbook, &mut report).await?;
        }
        Ok(report)
    }

    /// Applies the steps of `plan` that `select` picks, in plan order,
    /// adding to `report`. Several targets' plans are applied in passes
    /// (what stops harm first, for every target; then the rest).
    pub async fn apply_steps(
        &self,
        plan: &Plan,
        playbook: &Playbook,
        select: impl Fn(&Step) -> bool,
        report: &mut RunReport,
    ) -> Result<(), EngineError> {
        for sp in &plan.steps {
            let has_doubt = self
                .incident()
                .journal
                .in_doubt()
                .iter()
                .any(|r| r.step == sp.id);
            let work = match sp.status {
                StepStatus::Changes => true,
                StepStatus::Satisfied => has_doubt,
                StepStatus::Read | StepStatus::Skipped => false,
            };
            if !work {
                continue;
            }
            let step = find_step(playbook, &sp.id)?;
            if !select(step) {
                continue;
            }
            let mut attempt = 0;
            loop {
                match self.apply_step(sp, step).await {
                    Ok(mut outcomes) => {
                        report.outcomes.append(&mut outcomes);
                        break;
                    }
                    Err(e) if e.retryable() && attempt < step.retries => {
                        tracing::warn!(step = %step.id, attempt, "step failed, retrying after re-observing: {e}");
                        tokio::time::sleep(backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => {
                        self.audit(
                            "error",
                            Some(&sp.id),
                            json!({"message": e.to_string(), "hint": e.hint()}),
                        )?;
                        report.failures.push(StepFailure {
                            step: sp.id.clone(),
                            target: sp.target.clone(),
                            refused: matches!(e, EngineError::Stale { .. }),
                            action: sp.action.clone(),
                            message: e.to_string(),
                            hint: e.hint(),
                        });
                        if matches!(e, EngineError::Stale { .. }) || step.on_error == OnError::Abort
                        {
                            report.aborted_at = Some(sp.id.clone());
                        }
                        break;
                    }
                }
            }
            if report.aborted_at.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// One step: re-observe, then settle each planned change.
    async fn apply_step(
        &self,
        sp: &StepPlan,
        step: &Step,
    ) -> Result<Vec<ChangeOutcome>, EngineError> {
        // Once: `apply_plan` retries the whole step, re-observing each time.
        let observed = self.observe_once(step, &sp.args).await?;
        let now = self.plan_step(step, &sp.args, &observed)?;
        let in_doubt: Vec<JournalRecord> = self
            .incident()
            .journal
            .in_doubt()
            .into_iter()
            .filter(|r| r.step == sp.id)
            .cloned()
            .collect();
        let mut outcomes = Vec::new();
        // Planned changes, plus in-doubt ones a fresh plan no longer lists.
        let mut todo: Vec<Change> = sp.changes.clone();
        for r in &in_doubt {
            if !todo.iter().any(|c| c.same_intent(&r.change)) {
                todo.push(r.change.clone());
            }
        }
        for change in todo {
            let doubt = in_doubt.iter().any(|r| r.change.same_intent(&change));
            match now.changes.iter().find(|n| n.same_intent(&change)) {
                None => {
                    // Already at `after`.
                    let outcome = if doubt {
                        self.journal(step, JournalEvent::Applied, &change, true, None)?;
                        self.audit("confirmed", Some(&sp.id), json!({"change": change, "detail": "an interrupted earlier run made this change; re-observation confirms it"}))?;
                        Outcome::Confirmed
                    } else {
                        self.audit("already_satisfied", Some(&sp.id), json!({"change": change}))?;
                        Outcome::AlreadySatisfied
                    };
                    outcomes.push(ChangeOutcome {
                        step: sp.id.clone(),
                        outcome,
                        change,
                    });
                }
                Some(n) if n.before != change.before && !doubt => {
                    return Err(EngineError::Stale {
                        details: vec![format!(
                            "step `{}`: {} {} was {} when planned and is {} now",
                            sp.id,
                            change.target,
                            change.attribute,
                            short(&change.before),
                            short(&n.before)
                        )],
                    });
                }
                Some(n) => {
                    // Record the state as it is right now: that is what
                    // recovery must put back.
                    let change = if doubt { n.clone() } else { change };
                    self.journal(step, JournalEvent::Intent, &change, false, None)?;
                    self.audit(
                        "applying",
                        Some(&sp.id),
                        serde_json::to_value(&change).unwrap_or(Value::Null),
                    )?;
                    hooks::pause_point("before_apply", &sp.id);
                    let result = self.call_apply(step, &sp.args, &change).await;
                    hooks::pause_point("after_apply", &sp.id);
                    match result {
                        Ok(receipt) => {
                            // Before `Applied`: a crash in between leaves the
                            // change in doubt, and the re-run writes the
                            // receipt again rather than never.
                            if let Some(r) = receipt {
                                self.audit(r.event, Some(&sp.id), r.data)?;
                            }
                            self.journal(step, JournalEvent::Applied, &change, false, None)?;
                            self.audit(
                                "applied",
                                Some(&sp.id),
                                serde_json::to_value(&change).unwrap_or(Value::Null),
                            )?;
                            outcomes.push(ChangeOutcome {
                                step: sp.id.clone(),
                                outcome: Outcome::Applied,
                                change,
                            });
                        }
                        Err(e) if e.outcome_unknown() => {
                            // No outcome record: the intent stays in doubt,
                            // and the next run re-observes to settle it.
                            self.audit(
                                "outcome_unknown",
                                Some(&sp.id),
                                json!({"change": change, "message": e.to_string()}),
                            )?;
                            return Err(e);
                        }
                        Err(e) => {
                            self.journal(
                                step,
                                JournalEvent::Failed,
                                &change,
                                false,
                                Some(e.to_string()),
                            )?;
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(outcomes)
    }

    async fn call_apply(
        &self,
        step: &Step,
        args: &Map<String, Value>,
        change: &Change,
    ) -> Result<Option<Receipt>, EngineError> {
        let history = self.incident().journal.records().to_vec();
        let cx = StepContext {
            aws: &self.aws,
            caller: &self.caller,
            args,
            history: &history,
            step_id: &step.id,
            incident_started_at: &self.started_at,
            incident_id: self.incident_id.as_str(),
        };
        match tokio::time::timeout(step.timeout, step.action.apply_with_receipt(&cx, change)).await
        {
            Ok(r) => r.map_err(|e| Self::step_error(step, e)),
            Err(_) => Err(EngineError::Timeout {
                step: step.id.clone(),
                secs: step.timeout.as_secs(),
            }),
        }
    }

    fn journal(
        &self,
        step: &Step,
        event: JournalEvent,
        change: &Change,
        confirmed: bool,
        error: Option<String>,
    ) -> Result<(), EngineError> {
        // A second `incident()` inside the literal would re-lock the held mutex.
        let mut incident = self.incident();
        let run = incident.audit.run.clone();
        incident.journal.append(JournalRecord {
            seq: 0,
            time: crate::time::now_rfc3339(),
            run,
            event,
            step: step.id.clone(),
            action: step.action.spec().name.to_string(),
            change: change.clone(),
            confirmed_by_observation: confirmed,
            error,
        })?;
        Ok(())
    }

    /// Contract 12: every mutating step that ran is checked after the fact.
    pub async fn verify_plan(
        &self,
        plan: &Plan,
        playbook: &Playbook,
        report: &mut RunReport,
    ) -> Result<(), EngineError> {
        for sp in &plan.steps {
            let failed = report
                .failures
                .iter()
                .any(|f| f.step == sp.id && f.target == sp.target);
            if matches!(sp.status, StepStatus::Read | StepStatus::Skipped) || failed {
                continue;
            }
            let step = find_step(playbook, &sp.id)?;
            let history = self.incident().journal.records().to_vec();
            let observed = Observation {
                target: sp.target.clone().unwrap_or_default(),
                state: sp.observed.clone().unwrap_or(Value::Null),
            };
            let cx = StepContext {
                aws: &self.aws,
                caller: &self.caller,
                args: &sp.args,
                history: &history,
                step_id: &sp.id,
                incident_started_at: &self.started_at,
                incident_id: self.incident_id.as_str(),
            };
            let checks = match tokio::time::timeout(
                step.timeout,
                step.action.verify(&cx, &observed),
            )
            .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => vec![Check {
                    name: "verification".into(),
                    target: observed.target.clone(),
                    passed: false,
                    detail: format!("could not verify: {e}"),
                }],
                Err(_) => vec![Check {
                    name: "verification".into(),
                    target: observed.target.clone(),
                    passed: false,
                    detail: "verification timed out".into(),
                }],
            };
            for check in checks {
                self.audit(
                    "verification",
                    Some(&sp.id),
                    serde_json::to_value(&check).unwrap_or(Value::Null),
                )?;
                report.checks.push(StepCheck {
                    step: sp.id.clone(),
                    check,
                });
            }
        }
        Ok(())
    }
}

fn find_step<'p>(playbook: &'p Playbook, id: &str) -> Result<&'p Step, EngineError> {
    playbook
        .steps
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| EngineError::PlanMismatch(format!("step `{id}` is not in the playbook")))
}

/// Whether an `Action` is read-only (used by renderers).
pub fn is_mutating(a: &dyn Action) -> bool {
    a.spec().mutating
}
