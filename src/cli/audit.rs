//! `firebreak audit verify PATH` / `--incident ID`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::state::{self, audit, IncidentId};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check a trail's hash chain, sequence and head; name the first broken line.
    Verify {
        /// An incident directory, or a trail file (a copy of one, with its
        /// head beside it).
        #[arg(required_unless_present = "incident", conflicts_with = "incident")]
        path: Option<PathBuf>,
        /// The incident whose trail to check, in the state store (--state-dir or --state).
        #[arg(long)]
        incident: Option<String>,
        /// Check the chain even when the trail's head is missing.
        #[arg(long)]
        allow_missing_head: bool,
    },
}

pub fn exec(global: &GlobalArgs, cmd: AuditCommand) -> Result<u8, CliError> {
    let AuditCommand::Verify {
        path,
        incident,
        allow_missing_head,
    } = cmd;
    // Read-only, without the lease: a trail can be checked while a run
    // appends to it. A path is the local backend's address for a trail.
    let trail = match (&path, &incident) {
        (Some(path), _) => state::local::read_trail_at(path),
        (None, Some(id)) => global.state_store()?.read_trail(&IncidentId::parse(id)?),
        (None, None) => unreachable!("clap requires PATH or --incident"),
    };
    let report = trail
        .and_then(|t| audit::verify(&t, !allow_missing_head))
        .map_err(|e| match e {
            // The shared store could not be read: its own hint says why.
            state::StateError::Store { .. } => CliError::from(e),
            e => CliError::new(
                ErrorClass::Input,
                e.to_string(),
                "pass an incident directory or a copy of its trail, or --incident ID (with --state-dir or --state)",
            ),
        })?;
    match global.output {
        OutputFormat::Json => {
            let out = json!({"kind": "audit_verify", "report": report, "summary": {"changes": 0, "records": report.records, "intact": report.broken.is_none()}});
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        OutputFormat::Text => match &report.broken {
            None => println!(
                "ok: {}: {} records, hash chain intact{}",
                report.path,
                report.records,
                if report.head_checked {
                    ", head matches"
                } else {
                    " (no head file: trailing removal not checked)"
                }
            ),
            Some(b) => eprintln!("BROKEN: {}:{}: {}", report.path, b.line, b.problem),
        },
    }
    Ok(if report.broken.is_none() {
        exit::OK
    } else {
        exit::ERROR
    })
}
