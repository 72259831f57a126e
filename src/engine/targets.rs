//! `--target`: which functions a playbook runs against. A selector is a
//! function name or ARN, a glob over the region's function names
//! (`orders-*`), or `tag:KEY=VALUE`.

use crate::action::ActionError;
use crate::aws::error::classify;
use crate::aws::Aws;

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Every function matching any selector, sorted, without duplicates.
pub async fn expand(aws: &Aws, selectors: &[String]) -> Result<Vec<String>, ActionError> {
    let needs_listing = selectors
        .iter()
        .any(|s| is_glob(s) || s.starts_with("tag:"));
    let mut all: Vec<(String, String)> = Vec::new();
    if needs_listing {
        let mut pages = aws.lambda.list_functions().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| classify("ListFunctions", "lambda:ListFunctions", "functions", e))?;
            all.extend(page.functions().iter().filter_map(|f| {
                Some((
                    f.function_name()?.to_string(),
                    f.function_arn()?.to_string(),
                ))
            }));
        }
    }
    let mut out = Vec::new();
    for sel in selectors {
        if let Some(tag) = sel.strip_prefix("tag:") {
            let (key, value) = tag.split_once('=').ok_or_else(|| {
                ActionError::input(
                    format!("`--target {sel}` is not tag:KEY=VALUE"),
                    "e.g. --target tag:team=payments",
                )
            })?;
            for (name, arn) in &all {
                let tags = aws
                    .lambda
                    .list_tags()
                    .resource(arn)
                    .send()
                    .await
                    .map_err(|e| classify("ListTags", "lambda:ListTags", arn, e))?;
                if tags.tags().and_then(|t| t.get(key)).map(String::as_str) == Some(value) {
                    out.push(name.clone());
                }
            }
        } else if is_glob(sel) {
            let pattern = glob::Pattern::new(sel).map_err(|e| {
                ActionError::input(
                    format!("`--target {sel}` is not a valid glob: {e}"),
                    "use * and ? as wildcards, e.g. orders-*",
                )
            })?;
            out.extend(
                all.iter()
                    .filter(|(n, _)| pattern.matches(n))
                    .map(|(n, _)| n.clone()),
            );
        } else {
            out.push(sel.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
