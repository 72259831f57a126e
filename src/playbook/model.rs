//! Stage two: the validated playbook. Nothing downstream re-checks strings:
//! actions are resolved, references parsed, types checked.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::source::{Pos, Source};
use super::template::Reference;
use crate::action::spec::ValueType;
use crate::action::Action;

/// The phases live with the plan (the bottom layer every other speaks);
/// the playbook model names them too.
pub use crate::plan::Phase;

#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: String,
    pub ty: ValueType,
    pub required: bool,
    pub default: Option<Value>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop the run; later steps do not start.
    #[default]
    Abort,
    /// Record the error and go on with the next step.
    Continue,
}

/// A step's `when`: a literal, or one reference to a boolean (optionally
/// negated with a leading `!`).
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    Literal(bool),
    Reference { reference: Reference, negate: bool },
}

#[derive(Debug, Clone)]
pub struct Arg {
    pub name: String,
    /// As written; strings may hold `${...}` references (already validated).
    pub value: Value,
    pub pos: Pos,
}

#[derive(Clone)]
pub struct Step {
    pub id: String,
    pub phase: Phase,
    pub action: &'static dyn Action,
    pub with: Vec<Arg>,
    pub when: Option<When>,
    pub on_error: OnError,
    pub retries: u32,
    pub timeout: Duration,
    pub pos: Pos,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("id", &self.id)
            .field("phase", &self.phase)
            .field("action", &self.action.spec().name)
            .field("with", &self.with)
            .field("when", &self.when)
            .field("on_error", &self.on_error)
            .field("retries", &self.retries)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub description: Option<String>,
    pub params: Vec<ParamSpec>,
    /// Refuse `--target` selections larger than this (before any change).
    pub max_targets: Option<u32>,
    /// In execution order: identify, contain, recover; file order within each.
    pub steps: Vec<Step>,
    pub source: Arc<Source>,
    /// SHA-256 of the file, recorded in plans and the audit trail.
    pub sha256: String,
}

impl Playbook {
    pub fn steps_in<'a>(&'a self, phases: &'a [Phase]) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps.iter().filter(move |s| phases.contains(&s.phase))
    }

    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);
pub const MAX_RETRIES: u32 = 10;
