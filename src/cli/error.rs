//! Errors at the command edge, sorted by who must act, each with a fix and
//! a documented exit code (docs/cli.md).

use serde::Serialize;
use serde_json::json;

use crate::aws::AwsError;
use crate::engine::params::ParamsError;
use crate::engine::EngineError;
use crate::plan::saved::SavedPlanError;
use crate::playbook::LoadError;
use crate::state::StateError;

pub mod exit {
    pub const OK: u8 = 0;
    /// Any error: invalid playbook or input, AWS error, failed step.
    pub const ERROR: u8 = 1;
    /// `plan` only: changes are pending.
    pub const CHANGES_PENDING: u8 = 2;
    /// Refused: incident locked, stale plan, no confirmation.
    pub const REFUSED: u8 = 3;
    /// A change was accepted by AWS but verification shows it is not in effect.
    pub const VERIFICATION_FAILED: u8 = 4;
    /// `run`: everything that needed no decision is done and verified;
    /// some steps wait for one (the output names the flag that decides).
    pub const DECISION_PENDING: u8 = 5;
    /// `run`: containment holds, but a step that does not stop harm
    /// (identify, evidence) failed; the run is incomplete.
    pub const INCOMPLETE: u8 = 6;
    /// `drill run`: the drill ran, and its scorecard shows failed checks or
    /// timings over target.
    pub const DRILL_FAILED: u8 = 7;
    /// Command-line usage error.
    pub const USAGE: u8 = 64;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The playbook is invalid (file:line:col problems).
    Playbook,
    /// Something the user passed is wrong.
    Input,
    /// AWS (or the endpoint) answered with an error.
    Aws,
    /// firebreak refused to go on, to stay safe.
    Refused,
    /// Local incident state could not be read or written.
    State,
}

#[derive(Debug)]
pub struct CliError {
    pub class: ErrorClass,
    pub message: String,
    pub hint: String,
    /// Playbook problems: rendered with source lines, and as JSON.
    pub diagnostics: Option<Box<Diagnostics>>,
}

#[derive(Debug)]
pub struct Diagnostics {
    pub rendered: String,
    pub problems: serde_json::Value,
}

impl CliError {
    pub fn new(class: ErrorClass, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            hint: hint.into(),
            diagnostics: None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self.class {
            ErrorClass::Refused => exit::REFUSED,
            _ => exit::ERROR,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "kind": "error",
            "error": {
                "class": self.class,
                "message": self.message,
                "hint": self.hint,
                "problems": self.diagnostics.as_ref().map(|d| &d.problems),
            },
            "summary": {"changes": 0},
        })
    }

    pub fn render_text(&self) -> String {
        match self.diagnostics.as_ref().map(|d| &d.rendered) {
            Some(r) => format!("{r}\n{}\n  hint: {}\n", self.message, self.hint),
            None => format!("error: {}\n  hint: {}\n", self.message, self.hint),
        }
    }
}

impl From<LoadError> for CliError {
    fn from(e: LoadError) -> Self {
        let hint = e.hint().to_string();
        match e {
            LoadError::Invalid(errs) => {
                let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
                    && std::env::var_os("NO_COLOR").is_none();
                CliError {
                    class: ErrorClass::Playbook,
                    message: format!(
                        "{} is invalid: {} found; nothing was sent to AWS",
                        errs.file.display_path(),
                        crate::render::plural(errs.problems.len(), "problem", "problems")
                    ),
                    hint,
                    diagnostics: Some(Box::new(Diagnostics {
                        rendered: errs.render(color),
                        problems: serde_json::to_value(errs.to_json()).unwrap_or_default(),
                    })),
                }
            }
            other => CliError::new(ErrorClass::Playbook, other.to_string(), hint),
        }
    }
}

impl From<ParamsError> for CliError {
    fn from(e: ParamsError) -> Self {
        CliError::new(ErrorClass::Input, e.to_string(), e.hint)
    }
}

impl From<AwsError> for CliError {
    fn from(e: AwsError) -> Self {
        CliError::new(ErrorClass::Aws, e.to_string(), e.hint)
    }
}

impl From<StateError> for CliError {
    fn from(e: StateError) -> Self {
        let class = match e {
            // Someone else holds the incident, or took it over mid-run.
            StateError::Locked { .. }
            | StateError::Conflict { .. }
            | StateError::LeaseLost { .. } => ErrorClass::Refused,
            StateError::BadIncidentId(_) | StateError::NoTrail { .. } => ErrorClass::Input,
            _ => ErrorClass::State,
        };
        CliError::new(class, e.to_string(), e.hint())
    }
}

impl From<SavedPlanError> for CliError {
    fn from(e: SavedPlanError) -> Self {
        CliError::new(
            ErrorClass::Input,
            e.to_string(),
            "pass a file written by `firebreak plan --out`",
        )
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> Self {
        let hint = e.hint();
        let class = match &e {
            EngineError::Stale { .. } | EngineError::PlanMismatch(_) => ErrorClass::Refused,
            EngineError::State(
                StateError::Locked { .. }
                | StateError::Conflict { .. }
                | StateError::LeaseLost { .. },
            ) => ErrorClass::Refused,
            EngineError::State(_) => ErrorClass::State,
            EngineError::Resolve { .. } => ErrorClass::Input,
            EngineError::Connect(_) => ErrorClass::Aws,
            EngineError::Targets { refused: true, .. } => ErrorClass::Refused,
            EngineError::Targets { .. } => ErrorClass::Input,
            EngineError::Step {
                source:
                    crate::action::ActionError::Input { .. } | crate::action::ActionError::Decision(_),
                ..
            } => ErrorClass::Input,
            EngineError::Step { .. } | EngineError::Timeout { .. } => ErrorClass::Aws,
        };
        CliError::new(class, e.to_string(), hint)
    }
}
