//! `firebreak audit verify PATH`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::state::audit;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check a trail's hash chain, sequence and head; name the first broken line.
    Verify {
        /// The trail (`audit.jsonl`) or an incident directory holding one.
        path: PathBuf,
        /// Check the chain even when the head file beside the trail is missing.
        #[arg(long)]
        allow_missing_head: bool,
    },
}

pub fn exec(global: &GlobalArgs, cmd: AuditCommand) -> Result<u8, CliError> {
    let AuditCommand::Verify {
        path,
        allow_missing_head,
    } = cmd;
    let path = if path.is_dir() {
        path.join("audit.jsonl")
    } else {
        path
    };
    let report = audit::verify(&path, !allow_missing_head).map_err(|e| {
        CliError::new(
            ErrorClass::Input,
            e.to_string(),
            "pass the path of an audit.jsonl file or of an incident directory",
        )
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
