//! `firebreak run`: plan, confirm, apply under the journal, verify.

use crate::state::AuditEvent;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::confirm::confirm;
use super::session::{prepare, resolve_playbook_path, ParamsInput, PhaseArg};
use super::{targets, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::engine::runner::PlanSet;
use crate::engine::RunRequest;
use crate::plan::saved;
use crate::render::text::Text;
use crate::render::PlanView;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The playbook file (with --plan: defaults to the one the plan names).
    pub playbook: Option<PathBuf>,
    /// Incident id (with --plan: defaults to the plan's).
    #[arg(long, env = "FIREBREAK_INCIDENT")]
    pub incident: Option<String>,
    /// A playbook param, NAME=VALUE (repeatable; lists comma-separated).
    #[arg(
        long = "param",
        short = 'p',
        value_name = "NAME=VALUE",
        conflicts_with = "plan"
    )]
    pub params: Vec<String>,
    /// Which phases to run: identify+contain by default; `recover` later.
    #[arg(long, value_enum, default_value = "contain", conflicts_with = "plan")]
    pub phase: PhaseArg,
    /// Apply exactly this saved plan (refused if the state has moved).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Run against these functions: a name or ARN, a glob over function
    /// names (`orders-*`), or `tag:KEY=VALUE` (repeatable). What stops harm
    /// is applied to every target before anything else.
    #[arg(long = "target", value_name = "SELECTOR", conflicts_with = "plan")]
    pub targets: Vec<String>,
    /// Refuse when more functions match (default: the playbook's
    /// `max_targets`, else 25).
    #[arg(long)]
    pub max_targets: Option<u32>,
    /// How many targets to work on at once. With --yes, every target's
    /// harm-stopping steps go at once whatever this is, and it bounds the
    /// other steps' reads. The call path paces requests at AWS's quotas
    /// whatever this is; it must only be high enough that the quota, not
    /// waiting on answers, sets the pace (15/s at ~1 s per target's chain
    /// of reads and writes needs about 15 in flight).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

pub async fn exec(global: &GlobalArgs, args: RunArgs) -> Result<u8, CliError> {
    let saved_plan = args.plan.as_deref().map(saved::load).transpose()?;
    let path = resolve_playbook_path(
        args.playbook.clone(),
        saved_plan.as_ref().map(|p| p.playbook.path.as_str()),
    )?;
    let incident = match (&args.incident, &saved_plan) {
        (Some(i), _) => i.clone(),
        (None, Some(p)) => p.incident.clone(),
        (None, None) => {
            return Err(CliError::new(
                ErrorClass::Input,
                "no incident id given",
                "pass --incident ID (or set FIREBREAK_INCIDENT)",
            ))
        }
    };
    let (params, phases) = match &saved_plan {
        Some(p) => (ParamsInput::Saved(&p.params), p.phases.clone()),
        None if !args.targets.is_empty() => {
            (ParamsInput::ForTargets(&args.params), args.phase.phases())
        }
        None => (ParamsInput::Given(&args.params), args.phase.phases()),
    };
    let p = prepare(
        global,
        &path,
        params,
        &incident,
        phases,
        false,
        "firebreak run",
    )
    .await?;
    let concurrency = usize::from(args.concurrency);
    let request = RunRequest {
        playbook: &p.playbook,
        params: &p.params,
        phases: &p.phases,
        targets: targets::targets(&args.targets, args.max_targets, &p.playbook),
        concurrency,
    };
    if args.yes && saved_plan.is_none() {
        // Nobody reviews the plan before it is applied, so nothing waits
        // for it: each target is contained as soon as it is planned, and
        // the plan is shown with the report.
        let (set, report) = p
            .session
            .plan_and_execute(&request, "firebreak run")
            .await?;
        if global.output == OutputFormat::Text {
            print!("{}", Text.plan(&set, &set.pending(), false));
        }
        targets::print_run(global.output, &set, &report);
        return Ok(targets::exit_code(&report));
    }
    let set = match saved_plan {
        Some(saved) => {
            p.session.check_fresh(&saved, &p.playbook).await?;
            PlanSet::one(saved)
        }
        None => p.session.plan_targets(&request).await?,
    };
    if global.output == OutputFormat::Text {
        print!("{}", Text.plan(&set, &set.pending(), false));
    }
    // Interrupted changes of an earlier run are work too: settling them
    // writes the journal, so they are confirmed like changes.
    let changes = set.summary().changes;
    let pending = changes > 0 || !p.session.incident().journal.in_doubt().is_empty();
    if pending && !args.yes {
        let (account, region) = (&p.session.caller.account, &p.session.aws.region);
        let asked = confirm(
            &format!("Apply {changes} change(s) to account {account} in {region}?"),
            &format!("{changes} change(s)"),
            "review the plan and pass --yes to apply it unattended",
        );
        if let Err(e) = asked {
            p.session
                .audit(AuditEvent::Refused, None, json!({"message": e.message}))?;
            return Err(e);
        }
    }
    let report = p
        .session
        .execute(&p.playbook, &set, concurrency, "firebreak run")
        .await?;
    targets::print_run(global.output, &set, &report);
    Ok(targets::exit_code(&report))
}
