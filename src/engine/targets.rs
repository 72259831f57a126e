//! `--target`: which functions a playbook runs against. A selector is a
//! function name or ARN, a glob over the region's function names
//! (`orders-*`), or `tag:KEY=VALUE`. Globs and tags read the region's
//! functions from the run's context: the same list blast radius uses, read
//! once per run.

use std::collections::HashSet;

use super::{EngineError, Session};
use crate::action::run_context::{FunctionPages, ListedPages, RunContext};
use crate::aws::error::classify;
use crate::aws::Aws;

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// A glob selector, parsed.
fn pattern(sel: &str) -> Result<glob::Pattern, EngineError> {
    glob::Pattern::new(sel).map_err(|e| {
        bad_selector(
            format!("`--target {sel}` is not a valid glob: {e}"),
            "use * and ? as wildcards, e.g. orders-*",
        )
    })
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
            let pattern = pattern(sel)?;
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

/// A selection of globs (and names) whose matches are worked on as the
/// region's listing pages arrive, rather than after the last page: twenty
/// pages for a thousand functions would otherwise stand between an alarm
/// and the first deny (issue 15: harm stopped under a second at any N).
pub struct Streamed {
    pages: FunctionPages,
    /// Every page received, for the targets' plans (`RunContext::listed_function`).
    listed: std::sync::Arc<ListedPages>,
    patterns: Vec<glob::Pattern>,
    /// Names and ARNs given as they are: handed out before any page.
    given: Vec<String>,
    seen: HashSet<String>,
    /// Every match so far, in the order handed out.
    matched: Vec<String>,
    max: u32,
    /// AccountUsage.FunctionCount when the run began: no more than `max`.
    pub function_count: u64,
}

/// Whether `selectors` may be streamed (`Streamed`), and if so starts the
/// listing. Only globs and names (a tag costs a ListTags call a function
/// anyway), only if the listing was not read already, and only when the
/// region holds no more functions than `max` (GetAccountSettings, asked
/// while the first page is read): then no page can take the selection
/// past `--max-targets`, which would otherwise refuse the run after some
/// targets were changed. Anything else (the account larger than `max`,
/// GetAccountSettings denied) is `None`: the whole listing is read and
/// counted first, as `expand` does.
pub async fn stream(
    session: &Session,
    selectors: &[String],
    max: u32,
) -> Result<Option<Streamed>, EngineError> {
    if !selectors.iter().any(|s| is_glob(s)) || selectors.iter().any(|s| s.starts_with("tag:")) {
        return Ok(None);
    }
    if session.run.functions_listed() {
        return Ok(None);
    }
    let patterns = selectors
        .iter()
        .filter(|s| is_glob(s))
        .map(|sel| pattern(sel))
        .collect::<Result<Vec<_>, _>>()?;
    // The first page is asked for alongside GetAccountSettings: a round
    // trip less before the first target. Whatever the count says, the
    // listing is the run's one listing (`expand` waits for the same one).
    let pages = session.run.stream_functions(&session.aws);
    let function_count = match session.aws.lambda.get_account_settings().send().await {
        Ok(out) => out
            .account_usage()
            .map(|u| u64::try_from(u.function_count()).unwrap_or(u64::MAX))
            .unwrap_or(u64::MAX),
        Err(e) => {
            tracing::debug!(
                "GetAccountSettings failed; listing every function before the first target: {}",
                classify(
                    "GetAccountSettings",
                    "lambda:GetAccountSettings",
                    "the account",
                    e
                )
            );
            return Ok(None);
        }
    };
    if function_count > u64::from(max) {
        return Ok(None);
    }
    let mut given: Vec<String> = selectors.iter().filter(|s| !is_glob(s)).cloned().collect();
    given.sort();
    given.dedup();
    Ok(Some(Streamed {
        pages,
        listed: session.run.listed_pages(),
        patterns,
        given,
        seen: HashSet::new(),
        matched: Vec::new(),
        max,
        function_count,
    }))
}

impl Streamed {
    /// The next functions to work on: the names given, then each page's
    /// matches not handed out before; `None` once the listing is over.
    /// A failed page, or more matches than `max` (functions created while
    /// the region was listed), ends it with the error: nothing more is
    /// handed out.
    pub async fn next(&mut self) -> Option<Result<Vec<String>, EngineError>> {
        if !self.given.is_empty() {
            let given = std::mem::take(&mut self.given);
            return Some(Ok(self.take_new(given)));
        }
        let page = match self.pages.recv().await? {
            Ok(page) => page,
            Err(e) => {
                self.pages.close();
                return Some(Err(bad_selector(e.to_string(), e.hint())));
            }
        };
        // Kept before any of the page's targets starts: its plan may take
        // what the page says of its function (`Action::listed_outputs`).
        self.listed.add(&page);
        let matches: Vec<String> = page
            .into_iter()
            .filter(|f| self.patterns.iter().any(|p| p.matches(&f.name)))
            .map(|f| f.name)
            .collect();
        let new = self.take_new(matches);
        if self.matched.len() as u64 > u64::from(self.max) {
            self.pages.close();
            let over = self.matched.len();
            return Some(Err(EngineError::Targets {
                message: format!(
                    "{over} functions match, more than max_targets {}: functions were created while the region was listed (it held {} when the run began); no further function was started",
                    self.max, self.function_count
                ),
                hint: "check what created them, then run again (the targets already contained stay contained)".into(),
                refused: true,
            }));
        }
        Some(Ok(new))
    }

    fn take_new(&mut self, names: Vec<String>) -> Vec<String> {
        let new: Vec<String> = names
            .into_iter()
            .filter(|n| self.seen.insert(n.clone()))
            .collect();
        self.matched.extend(new.iter().cloned());
        new
    }

    /// Every function handed out, sorted: the selection's match.
    pub fn matched(&self) -> Vec<String> {
        let mut m = self.matched.clone();
        m.sort();
        m
    }
}
