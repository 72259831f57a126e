//! The qualifiers of a function: `$LATEST` (the unqualified function), each
//! alias and each published version. A function URL, a resource-policy
//! statement or an event source mapping can hang on any of them, so actions
//! that close access read every one, and name in their changes which one a
//! change is about.
//!
//! Attribute names: the function itself keeps the names journals have
//! always used (`BASE`, `BASE:KEY`); an alias or version adds its name after
//! the base (`BASE:QUALIFIER`, `BASE:QUALIFIER:KEY`). Neither a qualifier nor
//! a Sid or mapping UUID can contain `:`, so the two forms cannot be confused.

use std::collections::BTreeMap;
use std::fmt;

use super::function::FunctionRef;
use crate::action::StepContext;
use crate::aws::error::classify;
use crate::aws::AwsError;

/// Where something hangs: the function itself or one alias or version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Qualifier {
    /// The unqualified function, which is also what `$LATEST` names.
    Latest,
    /// An alias (never all digits) or a published version (all digits).
    Named(String),
}

impl Qualifier {
    /// `$LATEST` means the unqualified function: Lambda keeps one policy and
    /// one URL for both.
    pub fn from_label(s: &str) -> Self {
        if s == "$LATEST" {
            Qualifier::Latest
        } else {
            Qualifier::Named(s.to_string())
        }
    }

    /// The `Qualifier` parameter of a Lambda call.
    pub fn param(&self) -> Option<String> {
        match self {
            Qualifier::Latest => None,
            Qualifier::Named(q) => Some(q.clone()),
        }
    }

    /// How a responder reads it: "$LATEST", "alias live", "version 1".
    pub fn describe(&self) -> String {
        match self {
            Qualifier::Latest => "$LATEST".into(),
            Qualifier::Named(q) if q.chars().all(|c| c.is_ascii_digit()) => {
                format!("version {q}")
            }
            Qualifier::Named(q) => format!("alias {q}"),
        }
    }

    /// The qualifier a (possibly qualified) ARN names, when it is an ARN of
    /// function `f`; `None` for another function (`demo-2` is not `demo`).
    pub fn of_arn(f: &FunctionRef, arn: &str) -> Option<Self> {
        let rest = arn.strip_prefix(f.arn.as_str())?;
        if rest.is_empty() {
            return Some(Qualifier::Latest);
        }
        let q = rest.strip_prefix(':')?;
        (!q.is_empty() && !q.contains(':')).then(|| Qualifier::from_label(q))
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Latest => f.write_str("$LATEST"),
            Qualifier::Named(q) => f.write_str(q),
        }
    }
}

/// `BASE`, `BASE:KEY`, `BASE:QUALIFIER` or `BASE:QUALIFIER:KEY`.
pub fn attribute(base: &str, q: &Qualifier, key: Option<&str>) -> String {
    match (q, key) {
        (Qualifier::Latest, None) => base.to_string(),
        (Qualifier::Latest, Some(k)) => format!("{base}:{k}"),
        (Qualifier::Named(q), None) => format!("{base}:{q}"),
        (Qualifier::Named(q), Some(k)) => format!("{base}:{q}:{k}"),
    }
}

/// The inverse of `attribute` for a base without a key.
pub fn parse_unkeyed(attr: &str, base: &str) -> Option<Qualifier> {
    let rest = attr.strip_prefix(base)?;
    if rest.is_empty() {
        return Some(Qualifier::Latest);
    }
    let q = rest.strip_prefix(':')?;
    (!q.is_empty() && !q.contains(':')).then(|| Qualifier::from_label(q))
}

/// The inverse of `attribute` for a base with a key.
pub fn parse_keyed<'a>(attr: &'a str, base: &str) -> Option<(Qualifier, &'a str)> {
    let rest = attr.strip_prefix(base)?.strip_prefix(':')?;
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [key] if !key.is_empty() => Some((Qualifier::Latest, key)),
        [q, key] if !q.is_empty() && !key.is_empty() => Some((Qualifier::from_label(q), key)),
        _ => None,
    }
}

/// Every qualifier of a function as listed now: `$LATEST`, the aliases (by
/// name) and the published versions (in numeric order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qualifiers {
    /// Alias name → the version it points at.
    pub aliases: BTreeMap<String, String>,
    pub versions: Vec<String>,
    /// Every version as listed (`$LATEST` included): what indicators
    /// judge new code by.
    pub listed: Vec<ListedVersion>,
}

/// One entry of ListVersionsByFunction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedVersion {
    pub version: String,
    pub arn: String,
    pub code_sha256: String,
    /// Lambda's `LastModified`, as it reports it.
    pub last_modified: Option<String>,
}

impl Qualifiers {
    pub fn all(&self) -> Vec<Qualifier> {
        let mut out = vec![Qualifier::Latest];
        out.extend(self.aliases.keys().cloned().map(Qualifier::Named));
        out.extend(self.versions.iter().cloned().map(Qualifier::Named));
        out
    }

    /// "$LATEST, live, 1, 2": what a check says it read.
    pub fn names(&self) -> String {
        join(&self.all())
    }
}

pub fn join(qs: &[Qualifier]) -> String {
    qs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// ListAliases and ListVersionsByFunction, every page: two calls for most
/// functions whatever their number of qualifiers. While planning (not
/// `cx.fresh`) the versions come from the run's ListFunctions pages when
/// they hold the function (`RunContext::versions`), one call fewer a
/// function out of the control-plane quota; verification likewise from
/// pages read after every change; the re-read before a change always
/// lists them again. While planning, read once in the run whoever asks
/// (identify's indicators, public access, evidence).
pub async fn list(cx: &StepContext<'_>, f: &FunctionRef) -> Result<Qualifiers, AwsError> {
    let key = format!("qualifiers {}", f.arn);
    Box::pin(cx.shared_aws_read(key, list_now(cx, f))).await
}

async fn list_now(cx: &StepContext<'_>, f: &FunctionRef) -> Result<Qualifiers, AwsError> {
    let mut out = Qualifiers::default();
    let index = if cx.verifying || !cx.fresh {
        cx.run.versions(cx.aws, cx.verifying).await
    } else {
        None
    };
    let mut pages = cx
        .aws
        .lambda
        .list_aliases()
        .function_name(&f.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListAliases", "lambda:ListAliases", &f.arn, e))?;
        for a in page.aliases() {
            if let Some(name) = a.name() {
                out.aliases.insert(
                    name.to_string(),
                    a.function_version().unwrap_or_default().to_string(),
                );
            }
        }
    }
    if let Some(listed) = index.as_ref().and_then(|i| i.by_function.get(&f.arn)) {
        out.listed = listed.clone();
        out.versions = listed
            .iter()
            .map(|v| v.version.clone())
            .filter(|v| v != "$LATEST")
            .collect();
        out.versions
            .sort_by_key(|v| v.parse::<u64>().unwrap_or(u64::MAX));
        out.versions.dedup();
        return Ok(out);
    }
    let mut pages = cx
        .aws
        .lambda
        .list_versions_by_function()
        .function_name(&f.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                "ListVersionsByFunction",
                "lambda:ListVersionsByFunction",
                &f.arn,
                e,
            )
        })?;
        out.versions.extend(
            page.versions()
                .iter()
                .filter_map(|v| v.version())
                .filter(|v| *v != "$LATEST")
                .map(str::to_string),
        );
        out.listed
            .extend(page.versions().iter().map(|v| ListedVersion {
                version: v.version().unwrap_or("$LATEST").to_string(),
                arn: v.function_arn().unwrap_or(&f.arn).to_string(),
                code_sha256: v.code_sha256().unwrap_or_default().to_string(),
                last_modified: v.last_modified().map(str::to_string),
            }));
    }
    out.versions
        .sort_by_key(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    out.versions.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> FunctionRef {
        FunctionRef {
            name: "demo".into(),
            arn: "arn:aws:lambda:us-east-1:111122223333:function:demo".into(),
        }
    }

    #[test]
    fn the_function_itself_keeps_the_old_attribute_names() {
        let live = Qualifier::Named("live".into());
        assert_eq!(
            attribute("function_url", &Qualifier::Latest, None),
            "function_url"
        );
        assert_eq!(attribute("function_url", &live, None), "function_url:live");
        assert_eq!(
            attribute("policy_statement", &Qualifier::Latest, Some("anyone")),
            "policy_statement:anyone"
        );
        assert_eq!(
            attribute("policy_statement", &live, Some("anyone")),
            "policy_statement:live:anyone"
        );
    }

    #[test]
    fn attributes_parse_back_old_and_new() {
        assert_eq!(
            parse_unkeyed("function_url", "function_url"),
            Some(Qualifier::Latest)
        );
        assert_eq!(
            parse_unkeyed("function_url:live", "function_url"),
            Some(Qualifier::Named("live".into()))
        );
        assert_eq!(
            parse_unkeyed("function_url:$LATEST", "function_url"),
            Some(Qualifier::Latest)
        );
        assert_eq!(parse_unkeyed("function_urls", "function_url"), None);
        assert_eq!(parse_unkeyed("function_url:a:b", "function_url"), None);
        assert_eq!(
            parse_keyed("policy_statement:anyone", "policy_statement"),
            Some((Qualifier::Latest, "anyone"))
        );
        assert_eq!(
            parse_keyed("policy_statement:1:foreign", "policy_statement"),
            Some((Qualifier::Named("1".into()), "foreign"))
        );
        assert_eq!(parse_keyed("policy_statement:", "policy_statement"), None);
        assert_eq!(
            parse_keyed("policy_statement:a:b:c", "policy_statement"),
            None
        );
        assert_eq!(parse_keyed("function_url", "policy_statement"), None);
    }

    #[test]
    fn arns_name_their_qualifier() {
        let f = demo();
        assert_eq!(Qualifier::of_arn(&f, &f.arn), Some(Qualifier::Latest));
        assert_eq!(
            Qualifier::of_arn(&f, &format!("{}:live", f.arn)),
            Some(Qualifier::Named("live".into()))
        );
        assert_eq!(
            Qualifier::of_arn(&f, &format!("{}:$LATEST", f.arn)),
            Some(Qualifier::Latest)
        );
        assert_eq!(Qualifier::of_arn(&f, &format!("{}-2", f.arn)), None);
        assert_eq!(Qualifier::of_arn(&f, &format!("{}-2:live", f.arn)), None);
        assert_eq!(Qualifier::Named("7".into()).describe(), "version 7");
        assert_eq!(Qualifier::Named("live".into()).describe(), "alias live");
        let qs = Qualifiers {
            aliases: [("live".to_string(), "2".to_string())].into(),
            versions: vec!["1".into(), "2".into()],
            listed: vec![],
        };
        assert_eq!(qs.names(), "$LATEST, live, 1, 2");
    }
}
