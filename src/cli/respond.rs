//! `firebreak respond --routes FILE --event FILE|-`: one alarm or finding
//! event, through the same responder `watch` and the Lambda handler use.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::aws::AwsSettings;
use crate::engine::RunStatus;
use crate::respond::event::MAX_EVENT_BYTES;
use crate::respond::{routes, Outcome, Responder};

#[derive(Debug, Args)]
pub struct RespondArgs {
    /// The routes file: which events are acted on, with which playbook.
    #[arg(long, value_name = "FILE")]
    pub routes: PathBuf,
    /// The event as delivered (EventBridge, SNS, or a one-record SQS
    /// event); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
}

pub fn responder(
    global: &GlobalArgs,
    routes_file: &std::path::Path,
) -> Result<Responder, CliError> {
    let routes = routes::load(routes_file)?;
    let settings = AwsSettings {
        region: global.region.clone(),
        profile: global.profile.clone(),
        endpoint_url: global.endpoint_url.clone(),
        dry_run: false,
        quotas: global.quotas.clone(),
    };
    Ok(Responder::new(
        routes,
        Arc::from(global.state_store()?),
        settings,
    ))
}

fn read_event(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    // One byte over the limit is enough for the parser to refuse it.
    let limit = (MAX_EVENT_BYTES + 1) as u64;
    let read = if path.as_os_str() == "-" {
        std::io::stdin().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| {
        CliError::new(
            ErrorClass::Input,
            format!("cannot read the event {}: {e}", path.display()),
            "pass a file holding the event's JSON, or `-` for standard input",
        )
    })?;
    Ok(bytes)
}

pub async fn exec(global: &GlobalArgs, args: RespondArgs) -> Result<u8, CliError> {
    let responder = responder(global, &args.routes)?;
    let raw = read_event(&args.event)?;
    let outcomes = responder.respond(&raw).await;
    let calls = responder.api_calls().await;
    print(global.output, &outcomes, &calls);
    Ok(exit_code(&outcomes))
}

pub fn print(output: OutputFormat, outcomes: &[Outcome], calls: &crate::aws::CallCounts) {
    match output {
        OutputFormat::Json => {
            let out = json!({"kind": "respond", "outcomes": outcomes, "api_calls": calls});
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        OutputFormat::Text => {
            for o in outcomes {
                println!("{}", line(o));
            }
        }
    }
}

pub fn line(o: &Outcome) -> String {
    match o {
        Outcome::Refused { code, reason, .. } => format!("refused ({code}): {reason}"),
        Outcome::Deferred { reason, hint, .. } => format!("deferred: {reason}\n  hint: {hint}"),
        Outcome::Responded(r) => {
            let mut s = format!(
                "{}: incident {} ({}) function {} in {} {}: {} change(s) applied, {} already in place, {} check(s) passed",
                status_text(r.status),
                r.incident,
                if r.resumed { "resumed" } else { "new" },
                r.function,
                r.account,
                r.region,
                r.summary.applied + r.summary.confirmed,
                r.summary.already_satisfied,
                r.summary.checks_passed,
            );
            for d in &r.decisions {
                s.push_str(&format!(
                    "\n  decision pending: {}",
                    d["question"].as_str().unwrap_or_default()
                ));
                for opt in d["options"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "\n    {}: {} (firebreak run {} --incident {} -p function={} ... {})",
                        opt["value"].as_str().unwrap_or_default(),
                        opt["effect"].as_str().unwrap_or_default(),
                        r.playbook_path,
                        r.incident,
                        r.function,
                        opt["how"].as_str().unwrap_or_default(),
                    ));
                }
            }
            for f in &r.failures {
                s.push_str(&format!(
                    "\n  failed: step {}: {}",
                    f["step"].as_str().unwrap_or_default(),
                    f["message"].as_str().unwrap_or_default()
                ));
            }
            if let Some(n) = &r.notified {
                s.push_str(&format!("\n  notification {n}"));
            }
            s
        }
    }
}

fn status_text(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Ok => "contained",
        RunStatus::DecisionPending => "contained, decision pending",
        RunStatus::Incomplete => "contained, incomplete",
        RunStatus::VerificationFailed => "verification failed",
        RunStatus::Failed => "containment failed",
        RunStatus::Refused => "refused",
    }
}

/// The most serious outcome decides (docs/cli.md).
pub fn exit_code(outcomes: &[Outcome]) -> u8 {
    let code = |o: &Outcome| match o {
        Outcome::Refused { .. } => exit::REFUSED,
        Outcome::Deferred { .. } => exit::ERROR,
        Outcome::Responded(r) => match r.status {
            RunStatus::Refused => exit::REFUSED,
            RunStatus::Failed => exit::ERROR,
            RunStatus::VerificationFailed => exit::VERIFICATION_FAILED,
            RunStatus::Incomplete => exit::INCOMPLETE,
            RunStatus::DecisionPending => exit::DECISION_PENDING,
            RunStatus::Ok => exit::OK,
        },
    };
    // Severity order: error, refused, verification failed, incomplete,
    // decision pending, ok.
    let rank = |c: u8| match c {
        exit::ERROR => 0,
        exit::REFUSED => 1,
        exit::VERIFICATION_FAILED => 2,
        exit::INCOMPLETE => 3,
        exit::DECISION_PENDING => 4,
        _ => 5,
    };
    outcomes
        .iter()
        .map(code)
        .min_by_key(|c| rank(*c))
        .unwrap_or(exit::REFUSED)
}
