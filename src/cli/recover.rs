//! `firebreak recover`: undo what an incident changed, from its journal.

use crate::state::AuditEvent;

use clap::Args;
use serde_json::json;

use super::confirm::confirm;
use super::session::open_session;
use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::engine::recover::ItemStatus;
use crate::render::recover as view;
use crate::state::IncidentId;

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The incident whose changes to undo.
    #[arg(long, env = "FIREBREAK_INCIDENT")]
    pub incident: String,
    /// Show the recovery plan only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also restore what would re-open public or cross-account access or broad permissions.
    #[arg(long)]
    pub include_risky: bool,
    /// Lift containment (throttle, role quarantine) even while indicators of compromise remain.
    #[arg(long)]
    pub accept_indicators: bool,
    /// Leave this item as it is (repeatable; the ids are in the plan).
    #[arg(long, value_name = "ITEM")]
    pub exclude: Vec<String>,
    /// Restore each function to its newest baseline taken before the
    /// incident started (see docs/recovery.md), then lift containment.
    #[arg(long, requires = "store", conflicts_with = "exclude")]
    pub to_baseline: bool,
    /// With --to-baseline: the baseline store (a directory or s3://BUCKET/PREFIX).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX", requires = "to_baseline")]
    pub store: Option<String>,
    /// With --to-baseline: the functions to restore (default: those the
    /// incident's journal names).
    #[arg(long = "target", value_name = "FUNCTION", requires = "to_baseline")]
    pub targets: Vec<String>,
    /// With --to-baseline: put a generated value into the readable secrets
    /// and SecureString parameters that have no rotation Lambda (only
    /// where the stored value is itself the credential; otherwise they are
    /// listed to rotate at the source).
    #[arg(long, requires = "to_baseline")]
    pub generate_secrets: bool,
    /// With --to-baseline: where removed artifacts are preserved when the
    /// incident recorded no forensic bucket (default: the incident's).
    #[arg(long, value_name = "BUCKET", requires = "to_baseline")]
    pub forensic_bucket: Option<String>,
}

pub async fn exec(global: &GlobalArgs, args: RecoverArgs) -> Result<u8, CliError> {
    let id = IncidentId::parse(&args.incident)?;
    let store = global.state_store()?;
    if !store.exists(&id)? {
        return Err(CliError::new(
            ErrorClass::Input,
            format!("incident {id} has no journal at {}", store.address(&id)),
            "check --incident and --state-dir (or --state): recover undoes what `firebreak run` recorded for that incident",
        ));
    }
    if args.to_baseline {
        return super::recover_baseline::exec(global, &id, args).await;
    }
    let details = json!({"include_risky": args.include_risky, "accept_indicators": args.accept_indicators, "exclude": args.exclude});
    let session = open_session(global, &id, args.dry_run, "firebreak recover", details).await?;
    let mut items = session
        .plan_recover(args.include_risky, &args.exclude)
        .await?;
    let indicators = session
        .hold_over_indicators(&mut items, args.accept_indicators)
        .await?;
    let to_restore = items
        .iter()
        .filter(|i| i.status == ItemStatus::Restore)
        .count();
    if !args.dry_run && to_restore > 0 && !args.yes {
        if global.output == OutputFormat::Text {
            print!(
                "{}",
                view::text_plan(id.as_str(), &items, indicators.as_deref())
            );
        }
        let asked = confirm(
            &format!("Restore {to_restore} item(s)?"),
            &format!("{to_restore} restoration(s)"),
            "review the plan (--dry-run) and pass --yes",
        );
        if let Err(e) = asked {
            session.audit(AuditEvent::Refused, None, json!({"message": e.message}))?;
            return Err(e);
        }
    }
    let mut report = session.execute_recover(items, args.dry_run).await?;
    // Containment held over live indicators is a decision left to the
    // responder (exit 5), like a held step in `run`.
    let held_over_indicators = indicators.is_some() && !args.accept_indicators;
    report.indicators = indicators;
    match global.output {
        OutputFormat::Text => print!("{}", view::text(&report)),
        OutputFormat::Json => print!("{}", view::json(&report)),
    }
    let s = report.summary();
    Ok(if s.failed > 0 {
        exit::ERROR
    } else if held_over_indicators {
        exit::DECISION_PENDING
    } else if args.dry_run && s.restore > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}
