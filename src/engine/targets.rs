//! `--target`: which functions a playbook runs against. A selector is a
//! function name or ARN, a glob over the region's function names
//! (`orders-*`), or `tag:KEY=VALUE`. Globs and tags read the region's
//! functions from the run's context: the same list blast radius uses, read
//! once per run.

use super::{EngineError, Session};
use crate::action::run_context::RunContext;
use crate::aws::error::classify;
use crate::aws::Aws;

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn bad_selector(message: String, hint: &str) -> EngineError {
    EngineError::Targets {
        message,
        hint: hint.into(),
        refused: false,
    }
}

/// Every function matching any selector, sorted, without duplicates.
pub async fn expand(session: &Session, selectors: &[String]) -> Result<Vec<String>, EngineError> {
    expand_in(&session.run, &session.aws, selectors).await
}

/// `expand` outside an incident (`firebreak baseline`): the function list
/// comes from `run`.
pub async fn expand_in(
    run: &RunContext,
    aws: &Aws,
    selectors: &[String],
) -> Result<Vec<String>, EngineError> {
    let needs_listing = selectors
        .iter()
        .any(|s| is_glob(s) || s.starts_with("tag:"));
    let all = if needs_listing {
        run.functions(aws)
            .await
            .map_err(|e| bad_selector(e.to_string(), e.hint()))?
            .functions
            .clone()
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    for sel in selectors {
        if let Some(tag) = sel.strip_prefix("tag:") {
            let (key, value) = tag.split_once('=').ok_or_else(|| {
                bad_selector(
                    format!("`--target {sel}` is not tag:KEY=VALUE"),
                    "e.g. --target tag:team=payments",
                )
            })?;
            for f in &all {
                let tags = aws
                    .lambda
                    .list_tags()
                    .resource(&f.arn)
                    .send()
                    .await
                    .map_err(|e| {
                        let e = classify("ListTags", "lambda:ListTags", &f.arn, e);
                        bad_selector(e.to_string(), &e.hint)
                    })?;
                if tags.tags().and_then(|t| t.get(key)).map(String::as_str) == Some(value) {
                    out.push(f.name.clone());
                }
            }
        } else if is_glob(sel) {
            let pattern = glob::Pattern::new(sel).map_err(|e| {
                bad_selector(
                    format!("`--target {sel}` is not a valid glob: {e}"),
                    "use * and ? as wildcards, e.g. orders-*",
                )
            })?;
            out.extend(
                all.iter()
                    .filter(|f| pattern.matches(&f.name))
                    .map(|f| f.name.clone()),
            );
        } else {
            out.push(sel.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Refuses an empty selection, and one larger than `max` (a glob that
/// matches far more than meant must not contain the whole account).
pub fn check_count(selectors: &[String], targets: &[String], max: u32) -> Result<(), EngineError> {
    if targets.is_empty() {
        return Err(bad_selector(
            format!("no function matches {}", selectors.join(", ")),
            "check the names, globs or tags, and --region",
        ));
    }
    if targets.len() as u64 > u64::from(max) {
        let shown: Vec<&str> = targets.iter().take(10).map(String::as_str).collect();
        return Err(EngineError::Targets {
            message: format!(
                "{} functions match ({}{}), more than max_targets {max}; nothing was changed",
                targets.len(),
                shown.join(", "),
                if targets.len() > 10 { ", ..." } else { "" }
            ),
            hint: "narrow the selection, or raise the limit with --max-targets N (or `max_targets:` in the playbook) if this is really meant".into(),
            refused: true,
        });
    }
    Ok(())
}
