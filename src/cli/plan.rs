//! `firebreak plan`: observe and print the changes a playbook would make.
//! Runs with the dry-run guard on: the AWS clients refuse every write.

use crate::state::AuditEvent;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::session::{prepare, ParamsInput, PhaseArg};
use super::{targets, CliError, GlobalArgs, OutputFormat};
use crate::engine::RunRequest;
use crate::plan::saved;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The playbook file.
    pub playbook: PathBuf,
    /// Incident id: names the state directory; runs with the same id resume.
    #[arg(long, env = "FIREBREAK_INCIDENT")]
    pub incident: String,
    /// A playbook param, NAME=VALUE (repeatable; lists comma-separated).
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Which phases to plan.
    #[arg(long, value_enum, default_value = "contain")]
    pub phase: PhaseArg,
    /// Save the plan for `firebreak run --plan FILE`.
    #[arg(long, value_name = "FILE", conflicts_with = "targets")]
    pub out: Option<PathBuf>,
    /// Run against these functions: a name or ARN, a glob over function
    /// names (`orders-*`), or `tag:KEY=VALUE` (repeatable).
    #[arg(long = "target", value_name = "SELECTOR")]
    pub targets: Vec<String>,
    /// Refuse when more functions match (default: the playbook's
    /// `max_targets`, else 25).
    #[arg(long)]
    pub max_targets: Option<u32>,
    /// How many targets to work on at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

pub async fn exec(global: &GlobalArgs, args: PlanArgs) -> Result<u8, CliError> {
    let params = if args.targets.is_empty() {
        ParamsInput::Given(&args.params)
    } else {
        ParamsInput::ForTargets(&args.params)
    };
    let p = prepare(
        global,
        &args.playbook,
        params,
        &args.incident,
        args.phase.phases(),
        true,
        "firebreak plan",
    )
    .await?;
    let request = RunRequest {
        playbook: &p.playbook,
        params: &p.params,
        phases: &p.phases,
        targets: targets::targets(&args.targets, args.max_targets, &p.playbook),
        concurrency: usize::from(args.concurrency),
    };
    let set = p.session.plan_targets(&request).await?;
    if let (Some(out), [plan]) = (&args.out, set.plans.as_slice()) {
        saved::save(plan, out)?;
        p.session.audit(
            AuditEvent::PlanSaved,
            None,
            json!({"path": out.display().to_string(), "summary": plan.summary()}),
        )?;
    }
    let pending = p.session.finish_plan(&set, "firebreak plan")?;
    targets::print_plan(global.output, &set, &pending, true);
    if let (Some(out), OutputFormat::Text) = (&args.out, global.output) {
        println!(
            "Saved to {}; apply exactly this with `firebreak run --plan {}`.",
            out.display(),
            out.display()
        );
    }
    Ok(targets::plan_exit_code(&set, &pending))
}
