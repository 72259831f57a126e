//! Drills: a scenario (`kind: Drill`, in `drills/`) sets up a small world
//! on LocalStack, attacks it for real, lets firebreak respond through the
//! real path (alarm → SNS → SQS → the responder, or a direct run), reads
//! the end state back from AWS and scores it.
//!
//! The drill's own setup and attack calls are deliberately *outside*
//! firebreak's clients: they go through `lab::Lab`, which can only be built
//! for a local endpoint, so a drill can never create or attack anything in
//! a real account. firebreak's response uses its ordinary guarded clients.
//!
//! Modules: `raw` → `validate` → `model` (the scenario language),
//! `names` (a run's namespace), `lab` (the drill's clients), `setup`,
//! `baseline` (the known-good state, before the attack), `attack`,
//! `respond` (the response and the recovery to the baseline), `checks`
//! (reading AWS back), `score` (the scorecard as data), `render`
//! (Markdown, JSON, HTML), `cleanup`, `runner` (one run end to end).

pub mod attack;
pub mod baseline;
pub mod checks;
pub mod cleanup;
pub mod lab;
pub mod model;
pub mod names;
pub mod raw;
pub mod render;
pub mod respond;
pub mod runner;
pub mod score;
pub mod setup;
pub mod validate;

use std::path::Path;

use crate::playbook::load::{parse_spanned, read_text};
use crate::playbook::source::Source;
use crate::playbook::LoadError;

pub use model::Drill;
pub use runner::{run, RunOptions};
pub use score::Scorecard;

/// Why a drill could not run (a drill that ran and failed checks is not an
/// error: its scorecard says what failed).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("drills run only against LocalStack at a local endpoint; {given}")]
    NotLocal { given: String },
    #[error("drill {stage} failed at `{what}`: {message}")]
    Aws {
        stage: &'static str,
        what: String,
        message: String,
    },
    #[error("the response did not happen: {0}")]
    Respond(String),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl DrillError {
    pub fn hint(&self) -> String {
        match self {
            DrillError::Load(e) => e.hint().to_string(),
            DrillError::NotLocal { .. } => "start LocalStack (`localstack/start.sh`) and point at it: `--endpoint-url http://127.0.0.1:4566` or `. localstack/env.sh`; a drill creates and attacks resources, so it refuses any other endpoint".into(),
            DrillError::Aws { .. } => "check that LocalStack is healthy (`curl $AWS_ENDPOINT_URL/_localstack/health`); run again with --keep to inspect what was created".into(),
            DrillError::Respond(_) => "check the scenario's `respond` (playbook, params) with `firebreak validate`, and the refusals log in the state directory".into(),
            DrillError::Engine(e) => e.hint(),
            DrillError::State(e) => e.hint(),
            DrillError::Write { .. } => "check the output directory (--out) exists and is writable".into(),
        }
    }

    pub(crate) fn aws(
        stage: &'static str,
        what: impl Into<String>,
        e: impl std::fmt::Display,
    ) -> Self {
        DrillError::Aws {
            stage,
            what: what.into(),
            message: e.to_string(),
        }
    }
}

/// Reads, parses and validates one drill file (never calls AWS).
pub fn load(path: &Path) -> Result<Drill, LoadError> {
    let source = Source::new(path, read_text(path)?);
    parse_spanned(source, |raw: raw::RawDrill, source| {
        validate::validate(raw, source, path)
    })
}

/// Whether a YAML file declares `kind: Drill` (so `validate` takes drills
/// alongside playbooks and routes).
pub fn looks_like_drill(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines().any(|l| {
            let l = l.trim_end();
            l == "kind: Drill" || l == "kind: \"Drill\"" || l == "kind: 'Drill'"
        })
    })
}

/// Each scenario file as shown, and what loading it gave.
pub type Listed = Vec<(String, Result<Drill, LoadError>)>;

/// The scenarios in `dir` (`*.yaml`), sorted by file name.
pub fn list(dir: &Path) -> Result<Listed, std::io::Error> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|p| (crate::playbook::source::display_path(&p), load(&p)))
        .collect())
}
