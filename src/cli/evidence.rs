//! `firebreak evidence verify`: read-only; it neither locks the incident nor
//! writes to its trail, so an investigator can run it on a copy at any time.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::aws::Aws;
use crate::evidence::{verify, EvidenceError};
use crate::state::IncidentId;

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Re-read every object of an incident's evidence and check it against
    /// the manifests, and the manifests against the audit trail.
    Verify {
        /// The incident whose evidence to check.
        #[arg(long, env = "FIREBREAK_INCIDENT")]
        incident: String,
        /// The forensic bucket.
        #[arg(long)]
        bucket: String,
        /// The audit trail to start from: an incident directory or a copy of
        /// its trail (default: the incident's, in --state-dir or --state).
        #[arg(long)]
        trail: Option<PathBuf>,
        /// A role to assume for reading the bucket (a separate forensic account).
        #[arg(long, value_name = "ROLE_ARN")]
        bucket_role: Option<String>,
    },
}

impl From<EvidenceError> for CliError {
    fn from(e: EvidenceError) -> Self {
        let hint = e.hint();
        match e {
            EvidenceError::Aws(a) => a.into(),
            EvidenceError::State(s) => s.into(),
            other => CliError::new(ErrorClass::Input, other.to_string(), hint),
        }
    }
}

pub async fn exec(global: &GlobalArgs, cmd: EvidenceCommand) -> Result<u8, CliError> {
    let EvidenceCommand::Verify {
        incident,
        bucket,
        trail,
        bucket_role,
    } = cmd;
    if let Some(r) = &bucket_role {
        crate::action::evidence::check_role_arn(&serde_json::Value::String(r.clone())).map_err(
            |m| {
                CliError::new(
                    ErrorClass::Input,
                    m,
                    "pass the forensic account's role ARN to --bucket-role",
                )
            },
        )?;
    }
    let id = IncidentId::parse(&incident)?;
    // Read-only, without the lease: the trail as stored, wherever it is.
    let trail = match &trail {
        Some(path) => crate::state::local::read_trail_at(path),
        None => global.state_store()?.read_trail(&id),
    }?;
    // Dry-run clients: verification must be unable to write, whatever a bug does.
    let aws = Aws::connect(&global.aws_settings(true)).await?;
    let store = crate::action::evidence::open_store(
        &aws,
        &crate::action::RunContext::new(),
        &bucket,
        bucket_role.as_deref(),
        None,
        &incident,
    )
    .await
    .map_err(|e| match e {
        crate::action::ActionError::Aws(a) => CliError::from(*a),
        other => CliError::new(ErrorClass::Input, other.to_string(), other.hint()),
    })?;
    let report = verify::verify(&store, &trail).await?;
    let ok = report.mismatches.is_empty();
    match global.output {
        OutputFormat::Json => {
            let out = json!({"kind": "evidence_verify", "report": report, "summary": {"changes": 0, "intact": ok}});
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        OutputFormat::Text => {
            if let Some(w) = store.facts().warning() {
                eprintln!("{w}");
            }
            for m in &report.mismatches {
                eprintln!("MISMATCH s3://{}/{}: {}", report.bucket, m.key, m.problem);
            }
            let verdict = if ok { "ok" } else { "FAILED" };
            println!(
                "{verdict}: incident {id}, bucket {}: {} manifest(s), {} artifact(s) checked, {} mismatch(es)",
                report.bucket,
                report.manifests,
                report.artifacts,
                report.mismatches.len()
            );
        }
    }
    Ok(if ok { exit::OK } else { exit::ERROR })
}
