//! `firebreak plan`: observe and print the changes a playbook would make.
//! Runs with the dry-run guard on: the AWS clients refuse every write.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::session::{prepare, ParamsInput, PhaseArg};
use super::{exit, targets, CliError, GlobalArgs, OutputFormat};
use crate::plan::saved;
use crate::render::json::Json;
use crate::render::text::Text;
use crate::render::PlanView;

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
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

pub async fn exec(global: &GlobalArgs, args: PlanArgs) -> Result<u8, CliError> {
    if !args.targets.is_empty() {
        let p = prepare(
            global,
            &args.playbook,
            ParamsInput::ForTargets(&args.params),
            &args.incident,
            args.phase.phases(),
            true,
            "firebreak plan",
        )
        .await?;
        let plans = targets::plan_all(
            &p,
            &args.targets,
            args.max_targets,
            usize::from(args.concurrency),
        )
        .await?;
        let summary = targets::total(&plans);
        p.session.audit(
            "run_finished",
            None,
            json!({"command": "firebreak plan", "targets": plans.len(), "summary": summary}),
        )?;
        targets::print_plans(global.output, &plans, true);
        return Ok(if summary.changes > 0 {
            exit::CHANGES_PENDING
        } else {
            exit::OK
        });
    }
    let p = prepare(
        global,
        &args.playbook,
        ParamsInput::Given(&args.params),
        &args.incident,
        args.phase.phases(),
        true,
        "firebreak plan",
    )
    .await?;
    let plan = match p
        .session
        .build_plan(&p.playbook, &p.params, &p.phases)
        .await
    {
        Ok(plan) => plan,
        Err(e) => return Err(e.into()),
    };
    let summary = plan.summary();
    if let Some(out) = &args.out {
        saved::save(&plan, out)?;
        p.session.audit(
            "plan_saved",
            None,
            json!({"path": out.display().to_string(), "summary": summary}),
        )?;
    }
    p.session.audit("run_finished", None, json!({"command": "firebreak plan", "summary": summary, "mutating_requests_sent": p.session.aws.api_calls().mutating}))?;
    match global.output {
        OutputFormat::Text => {
            print!("{}", Text.plan(&plan, true));
            if let Some(out) = &args.out {
                println!(
                    "Saved to {}; apply exactly this with `firebreak run --plan {}`.",
                    out.display(),
                    out.display()
                );
            }
        }
        OutputFormat::Json => print!("{}", Json.plan(&plan, true)),
    }
    Ok(if summary.changes > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}
