//! `firebreak run`: plan, confirm, apply under the journal, verify.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::session::{prepare, resolve_playbook_path, ParamsInput, PhaseArg};
use super::{targets, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::plan::saved;
use crate::render::json::Json;
use crate::render::text::Text;
use crate::render::{run_summary, summarize, PlanView};

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
    /// How many targets to work on at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

fn confirm(n: usize, account: &str, region: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            ErrorClass::Refused,
            format!("{n} change(s) need confirmation, but there is no terminal to ask; nothing was changed"),
            "review the plan and pass --yes to apply it unattended",
        ));
    }
    eprint!("Apply {n} change(s) to account {account} in {region}? Type `yes` to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::new(
            ErrorClass::Refused,
            "not confirmed; nothing was changed",
            "type `yes` at the prompt, or pass --yes",
        ))
    }
}

async fn run_targets(global: &GlobalArgs, args: &RunArgs) -> Result<u8, CliError> {
    let path = resolve_playbook_path(args.playbook.clone(), None)?;
    let incident = args.incident.clone().ok_or_else(|| {
        CliError::new(
            ErrorClass::Input,
            "no incident id given",
            "pass --incident ID (or set FIREBREAK_INCIDENT)",
        )
    })?;
    let p = prepare(
        global,
        &path,
        ParamsInput::ForTargets(&args.params),
        &incident,
        args.phase.phases(),
        false,
        "firebreak run",
    )
    .await?;
    let plans = targets::plan_all(
        &p,
        &args.targets,
        args.max_targets,
        usize::from(args.concurrency),
    )
    .await?;
    if global.output == OutputFormat::Text {
        targets::print_plans(global.output, &plans, false);
    }
    let pending = targets::total(&plans).changes;
    if (pending > 0 || !p.session.incident().journal.in_doubt().is_empty()) && !args.yes {
        if let Err(e) = confirm(pending, &p.session.caller.account, &p.session.aws.region) {
            p.session
                .audit("refused", None, json!({"message": e.message}))?;
            return Err(e);
        }
    }
    let applied = targets::apply_all(&p, &plans, usize::from(args.concurrency)).await;
    let report = match applied {
        Ok(r) => r,
        Err(e) => {
            // Even a run that broke off leaves its trail in the bucket.
            let _ = p.session.seal(&plans).await;
            return Err(e);
        }
    };
    p.session.audit("run_finished", None, json!({"command": "firebreak run", "targets": plans.len(), "summary": summarize(targets::total(&plans), &report)}))?;
    let custody = p.session.seal(&plans).await?;
    targets::print_report(global.output, &plans, &report, &p);
    print_custody(global.output, &custody);
    Ok(targets::exit_code(&report))
}

pub async fn exec(global: &GlobalArgs, args: RunArgs) -> Result<u8, CliError> {
    if !args.targets.is_empty() {
        return run_targets(global, &args).await;
    }
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

    let plan = match saved_plan {
        Some(saved) => {
            p.session.check_fresh(&saved, &p.playbook).await?;
            saved
        }
        None => {
            p.session
                .build_plan(&p.playbook, &p.params, &p.phases)
                .await?
        }
    };
    if global.output == OutputFormat::Text {
        print!("{}", Text.plan(&plan, false));
    }
    // Interrupted changes of an earlier run are work too: settling them
    // writes the journal, so they are confirmed like changes.
    let pending = plan.summary().changes > 0 || !p.session.incident().journal.in_doubt().is_empty();
    if pending && !args.yes {
        if let Err(e) = confirm(plan.summary().changes, &plan.account, &plan.region) {
            p.session
                .audit("refused", None, json!({"message": e.message}))?;
            return Err(e);
        }
    }
    let plans = std::slice::from_ref(&plan);
    let report = match p.session.apply_plan(&plan, &p.playbook).await {
        Ok(r) => r,
        Err(e) => {
            // Even a run that broke off leaves its trail in the bucket.
            let _ = p.session.seal(plans).await;
            return Err(e.into());
        }
    };
    let summary = run_summary(&plan, &report);
    p.session.audit(
        "run_finished",
        None,
        json!({"command": "firebreak run", "summary": summary}),
    )?;
    let custody = p.session.seal(plans).await?;
    match global.output {
        OutputFormat::Text => print!("{}", Text.run(&plan, &report)),
        OutputFormat::Json => print!("{}", Json.run(&plan, &report)),
    }
    print_custody(global.output, &custody);
    Ok(targets::exit_code(&report))
}

/// One line on where the chain of custody went (text output only: JSON
/// readers find it in the audit trail as `evidence.audit_copy`).
fn print_custody(output: OutputFormat, c: &crate::engine::custody::CustodyReport) {
    if output != OutputFormat::Text {
        return;
    }
    if let Some(copy) = &c.audit_copy {
        println!(
            "Chain of custody: {} pre-change state(s) preserved; audit trail ({} lines, sha256 {}) copied to s3://{}/{}",
            c.pre_change.len(),
            copy.lines,
            copy.sha256,
            copy.bucket,
            copy.key
        );
    }
}
