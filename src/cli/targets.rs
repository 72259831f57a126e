//! `plan`/`run` over several functions (`--target`): one plan per target,
//! all in one incident; harm-stopping steps applied to every target first.

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::session::Prepared;
use super::{exit, CliError, ErrorClass, OutputFormat};
use crate::engine::RunReport;
use crate::plan::{Plan, Summary};
use crate::render::json::Json;
use crate::render::text::Text;
use crate::render::{summarize, PlanView};

pub const DEFAULT_MAX_TARGETS: u32 = 25;

/// Expands the selectors, enforces the limit, and plans every target.
pub async fn plan_all(
    p: &Prepared,
    selectors: &[String],
    max_flag: Option<u32>,
    concurrency: usize,
) -> Result<Vec<Plan>, CliError> {
    let targets = crate::engine::targets::expand(&p.session.aws, selectors)
        .await
        .map_err(|e| CliError::new(ErrorClass::Input, e.to_string(), e.hint()))?;
    let max = max_flag
        .or(p.playbook.max_targets)
        .unwrap_or(DEFAULT_MAX_TARGETS);
    p.session.audit(
        "targets",
        None,
        json!({"selectors": selectors, "matched": targets, "max_targets": max}),
    )?;
    if targets.is_empty() {
        return Err(CliError::new(
            ErrorClass::Input,
            format!("no function matches {}", selectors.join(", ")),
            "check the names, globs or tags, and --region",
        ));
    }
    if targets.len() as u64 > u64::from(max) {
        let shown: Vec<&str> = targets.iter().take(10).map(String::as_str).collect();
        return Err(CliError::new(
            ErrorClass::Refused,
            format!("{} functions match ({}{}), more than max_targets {max}; nothing was changed", targets.len(), shown.join(", "), if targets.len() > 10 { ", ..." } else { "" }),
            "narrow the selection, or raise the limit with --max-targets N (or `max_targets:` in the playbook) if this is really meant",
        ));
    }
    // Observation only: several targets at once, the plans kept in target
    // order.
    let plans: Vec<Result<Plan, _>> = stream::iter(targets)
        .map(|t| {
            let mut params = p.params.clone();
            params.insert("function".into(), Value::String(t));
            async move { p.session.build_plan(&p.playbook, &params, &p.phases).await }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let plans = plans.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(plans)
}

pub fn total(plans: &[Plan]) -> Summary {
    let mut s = Summary::default();
    for p in plans {
        let x = p.summary();
        s.changes += x.changes;
        s.create += x.create;
        s.update += x.update;
        s.delete += x.delete;
        s.satisfied += x.satisfied;
        s.read += x.read;
        s.skipped += x.skipped;
    }
    s
}

pub fn print_plans(output: OutputFormat, plans: &[Plan], dry_run: bool) {
    match output {
        OutputFormat::Text => {
            for plan in plans {
                print!("{}", Text.plan(plan, dry_run));
                println!();
            }
            let s = total(plans);
            println!(
                "All {} targets: {} changes ({} to create, {} to update, {} to delete).",
                plans.len(),
                s.changes,
                s.create,
                s.update,
                s.delete
            );
        }
        OutputFormat::Json => {
            let v = json!({
                "kind": "plan",
                "dry_run": dry_run,
                "targets": plans.iter().map(|p| serde_json::from_str::<Value>(&Json.plan(p, dry_run)).unwrap_or(Value::Null)).collect::<Vec<_>>(),
                "summary": total(plans),
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
}

/// Applies every plan: first the steps that stop harm, for every target,
/// then the rest, then verification.
pub async fn apply_all(
    p: &Prepared,
    plans: &[Plan],
    concurrency: usize,
) -> Result<RunReport, CliError> {
    let mut report = RunReport::default();
    // Two passes over all targets, each target's steps in order, up to
    // `concurrency` targets at a time: what stops harm, then the rest.
    for harm in [true, false] {
        let parts: Vec<Result<RunReport, _>> = stream::iter(plans)
            .map(|plan| async move {
                let mut r = RunReport::default();
                p.session
                    .apply_steps(
                        plan,
                        &p.playbook,
                        |s| s.action.spec().stops_harm == harm,
                        &mut r,
                    )
                    .await
                    .map(|_| r)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        for part in parts {
            merge(&mut report, part?);
        }
    }
    let failures = report.failures.clone();
    let checks: Vec<Result<RunReport, _>> = stream::iter(plans)
        .map(|plan| {
            let failures = failures.clone();
            async move {
                // Failed steps are not verified: `verify_plan` reads them here.
                let mut r = RunReport {
                    failures,
                    ..RunReport::default()
                };
                p.session
                    .verify_plan(plan, &p.playbook, &mut r)
                    .await
                    .map(|_| RunReport {
                        checks: r.checks,
                        ..RunReport::default()
                    })
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    for part in checks {
        merge(&mut report, part?);
    }
    Ok(report)
}

fn merge(into: &mut RunReport, part: RunReport) {
    into.outcomes.extend(part.outcomes);
    into.checks.extend(part.checks);
    into.failures.extend(part.failures);
    if into.aborted_at.is_none() {
        into.aborted_at = part.aborted_at;
    }
}

pub fn print_report(output: OutputFormat, plans: &[Plan], report: &RunReport, p: &Prepared) {
    let summary = summarize(total(plans), report);
    let calls = p.session.aws.api_calls();
    let (total_calls, mutating) = (calls.total, calls.mutating);
    match output {
        OutputFormat::Text => {
            if let Some(first) = plans.first() {
                // The outcome lines and the result line come from `report`,
                // which covers every target.
                print!("{}", Text.run(first, report));
            }
            println!(
                "Targets: {}; API calls: {total_calls} ({mutating} mutating).",
                plans.len()
            );
        }
        OutputFormat::Json => {
            let v = json!({
                "kind": "run",
                "targets": plans.iter().map(|p| json!({"incident": p.incident, "function": p.params.get("function"), "steps": p.steps})).collect::<Vec<_>>(),
                "outcomes": report.outcomes,
                "verification": report.checks,
                "errors": report.failures,
                "aborted_at": report.aborted_at,
                "api_calls": {"total": total_calls, "mutating": mutating},
                "summary": summary,
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
}

pub fn exit_code(report: &RunReport) -> u8 {
    if report.failures.iter().any(|f| f.refused) {
        exit::REFUSED
    } else if !report.failures.is_empty() {
        exit::ERROR
    } else if report.checks_failed() > 0 {
        exit::VERIFICATION_FAILED
    } else {
        exit::OK
    }
}
