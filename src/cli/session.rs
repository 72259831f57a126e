//! What `plan` and `run` share: load and check everything that can be
//! checked locally, then connect to AWS, learn who we are, open the incident.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};

use super::{CliError, GlobalArgs};
use crate::engine::{self, params, Session};
use crate::playbook::template::Scope;
use crate::playbook::{self, Phase, Playbook};
use crate::state::IncidentId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    /// identify only.
    Identify,
    /// identify, then contain (the default).
    Contain,
    /// identify, then recover.
    Recover,
}

impl PhaseArg {
    pub fn phases(self) -> Vec<Phase> {
        match self {
            PhaseArg::Identify => vec![Phase::Identify],
            PhaseArg::Contain => vec![Phase::Identify, Phase::Contain],
            PhaseArg::Recover => vec![Phase::Identify, Phase::Recover],
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Incident id: names the state directory; runs with the same id resume.
    #[arg(long, env = "FIREBREAK_INCIDENT")]
    pub incident: String,
    /// A playbook param, NAME=VALUE (repeatable; lists comma-separated).
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Which phases to run.
    #[arg(long, value_enum, default_value = "contain")]
    pub phase: PhaseArg,
}

/// Where a run's params come from.
pub enum ParamsInput<'a> {
    /// `--param NAME=VALUE` as typed.
    Given(&'a [String]),
    /// Already typed values from a saved plan.
    Saved(&'a Map<String, Value>),
    /// `--param` as typed, with `function` supplied per `--target` later.
    ForTargets(&'a [String]),
}

/// Stands in for each target while arguments are checked before any AWS
/// call; never sent anywhere.
const TARGET_PLACEHOLDER: &str = "firebreak-target";

/// A command ready to work: playbook checked, AWS reached, incident locked.
pub struct Prepared {
    pub playbook: Playbook,
    pub params: Map<String, Value>,
    pub phases: Vec<Phase>,
    pub session: Session,
}

/// Loads and checks everything local (playbook, params, incident lock,
/// argument values) before the first AWS call, then connects, asks STS who
/// we are and records the start of the run in the audit trail.
pub async fn prepare(
    global: &GlobalArgs,
    playbook_path: &Path,
    params_given: ParamsInput<'_>,
    incident_id: &str,
    phases: Vec<Phase>,
    dry_run: bool,
    command: &str,
) -> Result<Prepared, CliError> {
    let playbook = playbook::load(playbook_path)?;
    let params = match params_given {
        ParamsInput::Given(given) => params::resolve(&playbook, given)?,
        ParamsInput::Saved(saved) => saved.clone(),
        ParamsInput::ForTargets(given) => {
            if playbook.param("function").is_none() {
                return Err(CliError::new(
                    super::ErrorClass::Input,
                    format!("playbook `{}` has no `function` param, so --target cannot choose functions for it", playbook.name),
                    "declare `function: {type: string, required: true}` in the playbook, or run it without --target",
                ));
            }
            if given.iter().any(|g| g.starts_with("function=")) {
                return Err(CliError::new(
                    super::ErrorClass::Input,
                    "--target and --param function=... both name the function",
                    "use one of them",
                ));
            }
            let mut g = given.to_vec();
            g.push(format!("function={TARGET_PLACEHOLDER}"));
            params::resolve(&playbook, &g)?
        }
    };
    let id = IncidentId::parse(incident_id)?;
    // Argument values are checked before the incident directory is touched:
    // a typo in --param leaves no state behind. The start time is not known
    // yet for a new incident; it is only text, so any timestamp checks it.
    let provisional = Scope {
        params: params.clone(),
        incident_id: id.to_string(),
        incident_started_at: crate::time::now_rfc3339_seconds(),
        steps: Default::default(),
    };
    engine::precheck(&playbook, &phases, &provisional)?;
    let mut params = params;
    if matches!(params_given, ParamsInput::ForTargets(_)) {
        params.remove("function");
    }
    let details = json!({
        "playbook": {"name": playbook.name, "path": playbook.source.display_path(), "sha256": playbook.sha256},
        "params": params,
        "phases": phases,
    });
    let session = open_session(global, &id, dry_run, command, details)
        .await?
        .with_progress(std::sync::Arc::new(super::progress_bar::Bar::default()));
    Ok(Prepared {
        playbook,
        params,
        phases,
        session,
    })
}

/// The engine's session for this command: the incident in the state store
/// (`--state-dir` or `--state`),
/// AWS as the global flags say.
pub async fn open_session(
    global: &GlobalArgs,
    id: &IncidentId,
    dry_run: bool,
    command: &str,
    details: Value,
) -> Result<Session, CliError> {
    let settings = global.aws_settings(dry_run);
    let store = global.state_store()?;
    let session = Session::open(&*store, id, &settings, command, details).await?;
    // The connection was made after the process started, so its clocks
    // were at zero then.
    Ok(match global.process_started {
        Some(at) => session.with_origin(engine::Milestone::zero(at)),
        None => session,
    })
}

pub fn resolve_playbook_path(
    given: Option<PathBuf>,
    from_plan: Option<&str>,
) -> Result<PathBuf, CliError> {
    match (given, from_plan) {
        (Some(p), _) => Ok(p),
        (None, Some(p)) => Ok(PathBuf::from(p)),
        (None, None) => Err(CliError::new(
            super::ErrorClass::Input,
            "no playbook given",
            "pass the playbook file: `firebreak plan PLAYBOOK --incident ID ...`",
        )),
    }
}
