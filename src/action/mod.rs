//! Actions: one struct per action, each observe → plan → apply → verify.
//!
//! `observe` only reads. `plan` is pure: from the observation (and, for
//! restoring actions, this incident's journal) it computes the changes that
//! would bring the resource to the desired state, none when it is already
//! there. `apply` carries out exactly one planned change. `verify` checks,
//! after the fact, that the desired state really holds.
//!
//! Adding an action touches its own file and one line in `registry`.

pub mod cloudtrail;
pub mod evidence;
pub mod iam;
pub mod lambda;
pub mod logs;
pub mod registry;
pub mod run_context;
pub mod secrets;
pub mod spec;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aws::{Aws, AwsError, Caller};
use crate::plan::{Change, Decision};
use crate::state::{AuditEvent, JournalRecord};
pub use run_context::RunContext;
use spec::ActionSpec;

/// Everything one step sees while it runs.
pub struct StepContext<'a> {
    pub aws: &'a Aws,
    /// What this run shares between steps and targets (dropped with it).
    pub run: &'a RunContext,
    pub caller: &'a Caller,
    /// Arguments with every reference resolved.
    pub args: &'a Map<String, Value>,
    /// This incident's journal so far (restoring actions read prior state).
    pub history: &'a [JournalRecord],
    pub step_id: &'a str,
    /// `${incident.started_at}`: stable across runs, so time-based changes
    /// (session revocation) plan the same value every time.
    pub incident_started_at: &'a str,
    pub incident_id: &'a str,
}

impl StepContext<'_> {
    pub fn str_arg(&self, name: &str) -> Result<&str, ActionError> {
        self.args.get(name).and_then(Value::as_str).ok_or_else(|| {
            ActionError::input(
                format!("missing string argument `{name}`"),
                "this is a validation bug; please report it",
            )
        })
    }

    pub fn int_arg(&self, name: &str) -> Result<i64, ActionError> {
        self.args.get(name).and_then(Value::as_i64).ok_or_else(|| {
            ActionError::input(
                format!("missing integer argument `{name}`"),
                "this is a validation bug; please report it",
            )
        })
    }
}

/// What a step read: the resource and the state its plan depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub target: String,
    pub state: Value,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Planned {
    pub changes: Vec<Change>,
    pub outputs: Map<String, Value>,
    /// Something the responder should know (e.g. "nothing recorded to restore").
    pub note: Option<String>,
}

/// An audit event an action asks for after a change (see `apply_with_receipt`).
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub event: AuditEvent,
    pub data: Value,
}

/// One post-change check (design contract 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub target: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ActionError {
    /// Boxed: AWS errors carry several strings and would make every
    /// `Result` in the engine large.
    #[error(transparent)]
    Aws(Box<AwsError>),
    #[error("{message}")]
    Input { message: String, hint: String },
    /// The step must not run until someone chooses (a shared role): the
    /// engine holds it and every other step goes on.
    #[error("{}", .0.question)]
    Decision(Box<Decision>),
}

impl From<AwsError> for ActionError {
    fn from(e: AwsError) -> Self {
        ActionError::Aws(Box::new(e))
    }
}

impl ActionError {
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> Self {
        ActionError::Input {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn hint(&self) -> &str {
        match self {
            ActionError::Aws(e) => &e.hint,
            ActionError::Input { hint, .. } => hint,
            ActionError::Decision(_) => "choose one of the options the plan lists",
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(self, ActionError::Aws(e) if e.kind.retryable())
    }

    /// Whether a failed mutation may nevertheless have taken effect: the
    /// request may have reached AWS (timeout, lost connection, server error).
    /// Such a change stays "in doubt" in the journal, never "failed".
    pub fn outcome_unknown(&self) -> bool {
        use crate::aws::AwsErrorKind as K;
        // An answer with an error code is a definite refusal; only a missing
        // or server-side answer leaves the outcome open.
        matches!(self, ActionError::Aws(e) if matches!(e.kind, K::Timeout | K::EndpointUnreachable | K::ServiceUnavailable)
            || (e.kind == K::Other && e.code.is_none()))
    }
}

#[async_trait]
pub trait Action: Send + Sync {
    fn spec(&self) -> &'static ActionSpec;

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError>;

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError>;

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError>;

    /// `apply`, plus an audit record to write once the change is made, for
    /// facts known only afterwards (an evidence manifest's hash).
    async fn apply_with_receipt(
        &self,
        cx: &StepContext<'_>,
        change: &Change,
    ) -> Result<Option<Receipt>, ActionError> {
        self.apply(cx, change).await.map(|()| None)
    }

    /// The current value of one attribute this action changes, for
    /// `recover` (null when absent). Read-only actions change nothing.
    async fn read(
        &self,
        _cx: &StepContext<'_>,
        target: &str,
        attribute: &str,
    ) -> Result<Value, ActionError> {
        Err(ActionError::input(
            format!("{} cannot read {attribute} of {target}", self.spec().name),
            "this action changes nothing, so there is nothing to recover",
        ))
    }

    /// Whether `recover` undoes this action's changes. Evidence is never
    /// taken back.
    fn undoable(&self) -> bool {
        true
    }

    /// Why moving a resource to `change.after` during recovery would re-open
    /// a door (public or cross-account access, broad permissions); `None`
    /// when it is safe. Such restorations are held back unless asked for.
    async fn restore_risk(
        &self,
        _cx: &StepContext<'_>,
        _change: &Change,
    ) -> Result<Option<String>, ActionError> {
        Ok(None)
    }

    /// Checks that the desired state holds. Read-only actions have none.
    async fn verify(
        &self,
        _cx: &StepContext<'_>,
        _observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        Ok(Vec::new())
    }
}
