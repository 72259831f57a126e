//! `firebreak recover --incident ID --to-baseline --store ...`: restore
//! each function of the incident to its newest baseline taken before the
//! incident started, then lift containment (docs/recovery.md).

use serde_json::json;

use super::baseline::parse_store;
use super::confirm::confirm;
use super::recover::RecoverArgs;
use super::session::open_session;
use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::render::recover_baseline as view;
use crate::state::{AuditEvent, IncidentId};

pub async fn exec(global: &GlobalArgs, id: &IncidentId, args: RecoverArgs) -> Result<u8, CliError> {
    let given = args.store.as_deref().unwrap_or_default();
    let store = parse_store(given)?;
    let key = store.env_key()?;
    let details = json!({"to_baseline": true, "store": store.to_string(), "targets": args.targets, "include_risky": args.include_risky});
    let session = open_session(
        global,
        id,
        args.dry_run,
        "firebreak recover --to-baseline",
        details,
    )
    .await?;
    let functions = if args.targets.is_empty() {
        session.incident_functions()
    } else {
        args.targets.clone()
    };
    if functions.is_empty() {
        return Err(CliError::new(
            ErrorClass::Input,
            format!("incident {id} names no function in its journal"),
            "pass the functions to restore with --target NAME (repeatable)",
        ));
    }
    let plans = session
        .plan_recover_baseline(&store, &functions, &key, args.generate_secrets)
        .await?;
    let changes: usize = plans.iter().map(|p| p.changes()).sum();
    if !args.dry_run && changes > 0 && !args.yes {
        if global.output == OutputFormat::Text {
            print!("{}", view::text_plan(id.as_str(), &plans));
        }
        let asked = confirm(
            &format!("Restore {changes} item(s) to the baseline?"),
            &format!("{changes} change(s)"),
            "review the plan (--dry-run) and pass --yes",
        );
        if let Err(e) = asked {
            session.audit(AuditEvent::Refused, None, json!({"message": e.message}))?;
            return Err(e);
        }
    }
    let report = session
        .execute_recover_baseline(
            &store,
            plans,
            &key,
            args.dry_run,
            args.include_risky,
            args.forensic_bucket.as_deref(),
        )
        .await?;
    match global.output {
        OutputFormat::Text => print!("{}", view::text(&report)),
        OutputFormat::Json => print!("{}", view::json(&report)),
    }
    let s = report.summary();
    Ok(if s.failed > 0 {
        exit::ERROR
    } else if args.dry_run && s.changes > 0 {
        exit::CHANGES_PENDING
    } else if !args.dry_run && !report.remaining.is_empty() {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}
