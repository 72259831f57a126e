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

mod apply;
pub mod custody;
mod open;
pub mod params;
mod planning;
mod progress;
pub mod recover;
pub mod recover_baseline;
pub mod recover_indicators;
pub mod report;
pub mod runner;
pub mod targets;
mod verify;

use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::action::{Action, ActionError, RunContext, StepContext};
use crate::aws::{Aws, Caller};
use crate::playbook::template::Scope;
use crate::playbook::{Playbook, Step};
use crate::state::{AuditEvent, Incident, JournalRecord, StateError};

pub use open::new_run_id;
pub use planning::{precheck, resolve_args, scope_for};
pub use progress::{Progress, Stage};
pub use report::RunSummary;
pub use report::{
    Aborted, ChangeOutcome, Outcome, PendingDecision, RunReport, RunStatus, StepCheck, StepFailure,
    Timings,
};
pub use runner::{RunRequest, Targets};

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
    /// `--target` selected nothing, too much, or could not be expanded.
    #[error("{message}")]
    Targets {
        message: String,
        hint: String,
        refused: bool,
    },
    /// AWS could not be reached, or the credentials do not work.
    #[error(transparent)]
    Connect(Box<crate::aws::AwsError>),
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
            EngineError::Targets { hint, .. } => hint.clone(),
            EngineError::Connect(e) => e.hint.clone(),
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

/// One command's work on one incident. Several targets work through one
/// session at once: the incident (journal, trail) sits behind a mutex that
/// is held only for one append or read, never across an AWS call, so the
/// trail stays one linear chain and every journal record is still fsync'd
/// before its call.
pub struct Session {
    pub aws: Aws,
    pub caller: Caller,
    /// Shared by every step and target of this run; dropped with it.
    pub run: RunContext,
    incident: Mutex<Incident>,
    incident_id: String,
    started_at: String,
    first_change: std::sync::OnceLock<Milestone>,
    /// What time to contained is measured from: the session's start, or
    /// the process's when the caller says so (`with_origin`).
    origin: Milestone,
    progress: std::sync::Arc<dyn progress::Progress>,
}

/// A moment of the run with the connection's clocks read at it, so the
/// time up to it splits into waiting for AWS and firebreak's own work.
#[derive(Debug, Clone, Copy)]
pub struct Milestone {
    pub at: std::time::Instant,
    /// Round trips to AWS summed up to this moment.
    pub aws_wait: std::time::Duration,
    /// Pacing under AWS's quotas summed up to this moment.
    pub paced: std::time::Duration,
    /// Wall time up to this moment with at least one request queued or in
    /// flight (the sums above count overlapping requests twice).
    pub waited: std::time::Duration,
}

impl Milestone {
    pub fn now(aws: &Aws) -> Self {
        Self {
            at: std::time::Instant::now(),
            aws_wait: aws.calls.aws_wait(),
            paced: aws.calls.paced(),
            waited: aws.calls.waited(),
        }
    }

    /// Before any call.
    pub fn zero(at: std::time::Instant) -> Self {
        Self {
            at,
            aws_wait: std::time::Duration::ZERO,
            paced: std::time::Duration::ZERO,
            waited: std::time::Duration::ZERO,
        }
    }

    /// Several connections' clocks added up; the moment is the latest.
    pub fn sum<
        'a,
        I: IntoIterator<Item = &'a (std::sync::Arc<crate::aws::CallRecorder>, Milestone)>,
    >(
        clocks: I,
    ) -> Self {
        let mut total = Self::zero(std::time::Instant::now());
        for (_, m) in clocks {
            total.aws_wait += m.aws_wait;
            total.paced += m.paced;
            total.waited += m.waited;
        }
        total
    }
}

/// The time between two milestones, split by where it went. Requests run
/// side by side (several targets, or one target's reads), so `aws_ms` and
/// `paced_ms`, sums over requests, can exceed `elapsed_ms`; `waiting_ms`
/// counts each moment once, and `own_ms` is what is left of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Split {
    pub elapsed_ms: u64,
    /// Waiting for AWS's answers, summed over requests.
    pub aws_ms: u64,
    /// Held back to stay under AWS's request quotas, summed over requests.
    pub paced_ms: u64,
    /// Wall time with at least one request queued or in flight.
    pub waiting_ms: u64,
    /// Wall time with none: firebreak's own work (parsing, planning,
    /// journaling).
    pub own_ms: u64,
}

impl Split {
    pub fn between(start: &Milestone, end: &Milestone) -> Self {
        let elapsed = end.at.saturating_duration_since(start.at);
        let waited = end.waited.saturating_sub(start.waited);
        Self {
            elapsed_ms: ms(elapsed),
            aws_ms: ms(end.aws_wait.saturating_sub(start.aws_wait)),
            paced_ms: ms(end.paced.saturating_sub(start.paced)),
            waiting_ms: ms(waited.min(elapsed)),
            own_ms: ms(elapsed.saturating_sub(waited)),
        }
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Session {
    pub fn new(aws: Aws, caller: Caller, incident: Incident) -> Self {
        Self {
            incident_id: incident.id.to_string(),
            started_at: incident.meta.started_at.clone(),
            incident: Mutex::new(incident),
            caller,
            // Every run can judge indicators against a baseline
            // (`baseline_store`); the reader lives above `action`.
            run: RunContext::new()
                .with_baselines(std::sync::Arc::new(crate::baseline::reader::StoreReader)),
            first_change: std::sync::OnceLock::new(),
            origin: Milestone::now(&aws),
            aws,
            progress: std::sync::Arc::new(progress::Silent),
        }
    }

    /// Measures time to contained from `origin` instead of the session's
    /// start: the CLI gives the process's start, before its connection to
    /// AWS existed (so that connection's clocks were at zero then).
    pub fn with_origin(mut self, origin: Milestone) -> Self {
        self.origin = origin;
        self
    }

    /// The time from the origin to now, split by where it went.
    pub fn since_origin(&self) -> Split {
        Split::between(&self.origin, &Milestone::now(&self.aws))
    }

    /// Reports the run's stages and targets to `progress` as it goes.
    pub fn with_progress(mut self, progress: std::sync::Arc<dyn progress::Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// When this session's first change to AWS was answered (the
    /// containment that stops harm comes first): responders measure
    /// their time to contain by it.
    pub fn first_change(&self) -> Option<Milestone> {
        self.first_change.get().copied()
    }

    /// Intents of `step` with no recorded outcome, on a resource that
    /// `observed` covers (`Action::covers`). Several targets share step
    /// ids, so the resource tells whose they are: a sibling target's
    /// change in flight is not this target's doubt.
    pub(crate) fn in_doubt_for(
        &self,
        step: &Step,
        observed: Option<&crate::action::Observation>,
    ) -> Vec<JournalRecord> {
        self.incident()
            .journal
            .in_doubt()
            .into_iter()
            .filter(|r| {
                r.step == step.id
                    && observed.is_none_or(|o| step.action.covers(o, &r.change.target))
            })
            .cloned()
            .collect()
    }

    pub fn incident_id(&self) -> &str {
        &self.incident_id
    }

    /// What one step sees: the run's clients and context, its arguments and
    /// the incident's journal so far.
    pub(crate) fn step_context<'s>(
        &'s self,
        args: &'s Map<String, Value>,
        history: &'s crate::state::History,
        step_id: &'s str,
    ) -> StepContext<'s> {
        StepContext {
            aws: &self.aws,
            run: &self.run,
            fresh: true,
            verifying: false,
            caller: &self.caller,
            args,
            history,
            step_id,
            incident_started_at: &self.started_at,
            incident_id: self.incident_id.as_str(),
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

    pub fn audit(
        &self,
        event: AuditEvent,
        step: Option<&str>,
        data: Value,
    ) -> Result<(), EngineError> {
        self.incident()
            .audit
            .append(event.as_str(), step, data)
            .map_err(EngineError::from)
    }

    pub(crate) fn step_error(step: &Step, source: ActionError) -> EngineError {
        EngineError::Step {
            step: step.id.clone(),
            action: step.action.spec().name.to_string(),
            source,
        }
    }
}

pub(crate) fn find_step<'p>(playbook: &'p Playbook, id: &str) -> Result<&'p Step, EngineError> {
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
