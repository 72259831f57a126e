//! `firebreak recover`: undo what an incident changed, from its journal.

use crate::state::AuditEvent;
use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use serde_json::json;

use super::session::open_session;
use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::engine::recover::{ItemStatus, RecoverItem, RecoverOutcome};
use crate::plan::short;
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
    /// Leave this item as it is (repeatable; the ids are in the plan).
    #[arg(long, value_name = "ITEM")]
    pub exclude: Vec<String>,
}

fn mark(s: ItemStatus) -> &'static str {
    match s {
        ItemStatus::Restore => "restore",
        ItemStatus::Held => "HELD",
        ItemStatus::Excluded => "excluded",
        ItemStatus::Restored => "=",
        ItemStatus::Drifted => "DRIFTED",
    }
}

fn text(
    items: &[RecoverItem],
    outcomes: &[RecoverOutcome],
    incident: &str,
    header: &str,
) -> String {
    let mut out = format!("firebreak recover{header} · incident {incident}\n\n");
    if items.is_empty() {
        out.push_str("The journal records no change made by this incident: nothing to recover.\n");
    }
    for i in items {
        out.push_str(&format!(
            "  {:<8} {}\n      {}: {} → {}\n      recorded by step `{}` at {}\n",
            mark(i.status),
            i.id,
            i.change.target,
            short_doc(&i.change.before),
            short_doc(&i.change.after),
            i.recorded_by_step,
            i.recorded_at
        ));
        if let Some(r) = &i.reason {
            out.push_str(&format!("      {r}\n"));
        }
    }
    for o in outcomes {
        out.push_str(&format!(
            "  {} {}: {}\n",
            if o.ok { "ok  " } else { "FAIL" },
            o.id,
            o.detail
        ));
    }
    let count = |s| items.iter().filter(|i| i.status == s).count();
    out.push_str(&format!(
        "\nRecover: {} to restore, {} held back, {} excluded, {} already restored, {} changed by others.\n",
        count(ItemStatus::Restore),
        count(ItemStatus::Held),
        count(ItemStatus::Excluded),
        count(ItemStatus::Restored),
        count(ItemStatus::Drifted)
    ));
    if items.iter().any(|i| {
        i.status == ItemStatus::Restore
            && i.change.attribute == "reserved_concurrency"
            && i.change.before == json!(0)
    }) {
        out.push_str("Note: asynchronous invocations queued while the function was throttled will run once its concurrency returns.\n");
    }
    out
}

/// Policy documents are long: show their size, not their text.
fn short_doc(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(_) => format!("policy document ({} bytes)", v.to_string().len()),
        other => short(other),
    }
}

fn confirm(n: usize) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(ErrorClass::Refused, format!("{n} restoration(s) need confirmation, but there is no terminal to ask; nothing was changed"), "review the plan (--dry-run) and pass --yes"));
    }
    eprint!("Restore {n} item(s)? Type `yes` to go on: ");
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

pub async fn exec(global: &GlobalArgs, args: RecoverArgs) -> Result<u8, CliError> {
    let id = IncidentId::parse(&args.incident)?;
    let store = global.state_store();
    if !store.exists(&id)? {
        return Err(CliError::new(
            ErrorClass::Input,
            format!("incident {id} has no journal at {}", store.address(&id)),
            "check --incident and --state-dir: recover undoes what `firebreak run` recorded for that incident",
        ));
    }
    let details = json!({"include_risky": args.include_risky, "exclude": args.exclude});
    let session = open_session(global, &id, args.dry_run, "firebreak recover", details).await?;
    let items = session
        .plan_recover(args.include_risky, &args.exclude)
        .await?;
    let to_restore = items
        .iter()
        .filter(|i| i.status == ItemStatus::Restore)
        .count();
    let mut outcomes = Vec::new();
    if !args.dry_run && to_restore > 0 {
        if !args.yes {
            if global.output == OutputFormat::Text {
                print!(
                    "{}",
                    text(
                        &items,
                        &[],
                        id.as_str(),
                        " (plan, waiting for confirmation)"
                    )
                );
            }
            if let Err(e) = confirm(to_restore) {
                session.audit(AuditEvent::Refused, None, json!({"message": e.message}))?;
                return Err(e);
            }
        }
        outcomes = session.apply_recover(&items).await?;
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    session.audit(AuditEvent::RunFinished, None, json!({"command": "firebreak recover", "restored": outcomes.len() - failed, "failed": failed}))?;
    // The trail now records what was restored: it joins the evidence.
    let copy = if outcomes.is_empty() {
        None
    } else {
        session.seal_recover().await?
    };
    match global.output {
        OutputFormat::Text => print!(
            "{}",
            text(
                &items,
                &outcomes,
                id.as_str(),
                if args.dry_run {
                    " (dry run: nothing is changed)"
                } else {
                    ""
                }
            )
        ),
        OutputFormat::Json => {
            let count = |s| items.iter().filter(|i| i.status == s).count();
            let v = json!({
                "kind": "recover",
                "incident": id.as_str(),
                "dry_run": args.dry_run,
                "items": items,
                "outcomes": outcomes,
                "summary": {
                    "changes": to_restore,
                    "restore": to_restore,
                    "held": count(ItemStatus::Held),
                    "excluded": count(ItemStatus::Excluded),
                    "already_restored": count(ItemStatus::Restored),
                    "drifted": count(ItemStatus::Drifted),
                    "restored": outcomes.len() - failed,
                    "failed": failed,
                },
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
    if let (Some(c), OutputFormat::Text) = (&copy, global.output) {
        println!(
            "Chain of custody: audit trail ({} lines, sha256 {}) copied to s3://{}/{}",
            c.lines, c.sha256, c.bucket, c.key
        );
    }
    Ok(if failed > 0 {
        exit::ERROR
    } else if args.dry_run && to_restore > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}
