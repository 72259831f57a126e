//! Raw → validated routes. Every problem is collected and points at its
//! place in the file; the playbooks the routes name are loaded and the
//! route's params checked against them, so a route that would fail at
//! 3 a.m. fails at review instead.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use glob::Pattern;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::raw::{RawAllow, RawMatch, RawRoute, RawRoutes};
use super::{
    Allow, EventSource, Match, Route, Routes, TargetRef, DEFAULT_MAX_TARGETS, DEFAULT_PHASES,
};
use crate::engine::params::check_typed;
use crate::playbook::diagnostics::{choices_hint, Problem};
use crate::playbook::source::{Pos, Source};
use crate::playbook::validate::API_VERSION;
use crate::playbook::{self, LoadError, Phase};
use crate::respond::names;

struct V {
    source: Arc<Source>,
    problems: Vec<Problem>,
}

impl V {
    fn pos<T>(&self, s: &Spanned<T>) -> Pos {
        Pos::from_location(&s.referenced, &self.source)
    }

    fn problem<T>(&mut self, at: &Spanned<T>, message: impl Into<String>, hint: impl Into<String>) {
        let pos = self.pos(at);
        self.problems
            .push(Problem::new(pos, message).label("here").hint(hint));
    }
}

pub fn validate(
    raw: RawRoutes,
    source: Arc<Source>,
    sha256: String,
    base: &Path,
) -> Result<Routes, Vec<Problem>> {
    let mut v = V {
        source: source.clone(),
        problems: Vec::new(),
    };
    if raw.api_version.value != API_VERSION {
        v.problem(
            &raw.api_version,
            format!("unsupported apiVersion `{}`", raw.api_version.value),
            format!("write `apiVersion: {API_VERSION}`"),
        );
    }
    if raw.kind.value != "Routes" {
        v.problem(
            &raw.kind,
            format!("unknown kind `{}`", raw.kind.value),
            "a routes file has `kind: Routes` (a playbook has `kind: Playbook`)",
        );
    }
    let allow = allow(&mut v, &raw.allow.value);
    if raw.routes.value.is_empty() {
        v.problem(
            &raw.routes,
            "no routes",
            "add at least one route; docs/alarms.md has examples",
        );
    }
    let mut seen = HashSet::new();
    let mut routes = Vec::new();
    for r in &raw.routes.value {
        if !seen.insert(r.name.value.clone()) {
            v.problem(
                &r.name,
                format!("route `{}` is defined twice", r.name.value),
                "give each route its own name",
            );
        }
        if let Some(route) = route(&mut v, r, &allow, base) {
            routes.push(route);
        }
    }
    if v.problems.is_empty() {
        Ok(Routes {
            allow,
            routes,
            source,
            sha256,
        })
    } else {
        Err(v.problems)
    }
}

fn non_empty<T>(v: &mut V, list: &Spanned<Vec<T>>, what: &str) {
    if list.value.is_empty() {
        v.problem(
            list,
            format!("`allow.{what}` is empty, so nothing could ever be acted on"),
            format!("list the {what} the responder may act on"),
        );
    }
}

fn allow(v: &mut V, raw: &RawAllow) -> Allow {
    non_empty(v, &raw.accounts, "accounts");
    non_empty(v, &raw.regions, "regions");
    non_empty(v, &raw.functions, "functions");
    for a in &raw.accounts.value {
        if !names::is_account(&a.value) {
            v.problem(
                a,
                format!("`{}` is not an AWS account id", a.value),
                "an account id is 12 digits, quoted so YAML keeps it a string",
            );
        }
    }
    for r in &raw.regions.value {
        if !names::is_region(&r.value) {
            v.problem(
                r,
                format!("`{}` is not an AWS region name", r.value),
                "write region codes such as `us-east-1`",
            );
        }
    }
    let mut functions = Vec::new();
    for f in &raw.functions.value {
        match glob_of(&f.value) {
            Ok(p) => functions.push(p),
            Err(e) => v.problem(
                f,
                format!("`{}` is not a function name glob: {e}", f.value),
                "use letters, digits, `-`, `_` and the wildcards `*`, `?`, `[...]`",
            ),
        }
    }
    let accounts: Vec<String> = raw.accounts.value.iter().map(|a| a.value.clone()).collect();
    let regions: Vec<String> = raw.regions.value.iter().map(|r| r.value.clone()).collect();
    let mut sns_topics = Vec::new();
    for t in raw.sns_topics.iter().flat_map(|t| &t.value) {
        match check_topic(&t.value, &accounts, &regions) {
            Ok(()) => sns_topics.push(t.value.clone()),
            Err(why) => v.problem(
                t,
                why,
                "name an SNS topic ARN in an allowed account and region",
            ),
        }
    }
    Allow {
        accounts,
        regions,
        functions,
        sns_topics,
    }
}

fn glob_of(s: &str) -> Result<Pattern, String> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_*?[]!".contains(c))
    {
        return Err("only letters, digits, `-`, `_` and wildcards may appear".into());
    }
    Pattern::new(s).map_err(|e| e.msg.to_string())
}

fn check_topic(arn: &str, accounts: &[String], regions: &[String]) -> Result<(), String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "sns", region, account, name]
            if names::is_partition(partition) && !name.is_empty() =>
        {
            if !accounts.iter().any(|a| a == account) {
                Err(format!(
                    "topic `{arn}` is in account {account}, which `allow.accounts` does not list"
                ))
            } else if !regions.iter().any(|r| r == region) {
                Err(format!(
                    "topic `{arn}` is in {region}, which `allow.regions` does not list"
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(format!("`{arn}` is not an SNS topic ARN")),
    }
}

fn route(v: &mut V, r: &RawRoute, allow: &Allow, base: &Path) -> Option<Route> {
    let before = v.problems.len();
    if !names::is_route_name(&r.name.value) {
        v.problem(
            &r.name,
            format!("`{}` is not a route name", r.name.value),
            "use lowercase letters, digits and `-` (at most 64)",
        );
    }
    let matches = matcher(v, &r.matches.value);
    let playbook_path = base.join(&r.playbook.value);
    let playbook = match playbook::load(&playbook_path) {
        Ok(p) => Some(p),
        Err(e) => {
            let (message, hint) = match &e {
                LoadError::Invalid(errs) => (
                    format!("playbook `{}` is invalid: {errs}", r.playbook.value),
                    format!("run `firebreak validate {}`", playbook_path.display()),
                ),
                other => (other.to_string(), other.hint().to_string()),
            };
            v.problem(&r.playbook, message, hint);
            None
        }
    };
    let target = target(v, r, matches.as_ref(), allow);
    let phases = phases(v, r);
    let max_targets = match &r.max_targets {
        None => DEFAULT_MAX_TARGETS,
        Some(m) => match m.value.as_u64() {
            Some(n @ 1..=1000) => n as u32,
            _ => {
                v.problem(m, "`max_targets` must be an integer from 1 to 1000", "an alarm usually names one function: leave it out, or set how many one event may select");
                DEFAULT_MAX_TARGETS
            }
        },
    };
    let mut assume_role = BTreeMap::new();
    for (account, role) in r.assume_role.iter().flat_map(|m| &m.value) {
        if !allow.accounts.contains(&account.value) {
            v.problem(
                account,
                format!("account {} is not in `allow.accounts`", account.value),
                "assume roles only in accounts the routes allow",
            );
        } else if !names::is_role_arn_in(&role.value, &account.value) {
            v.problem(
                role,
                format!(
                    "`{}` is not an IAM role ARN in account {}",
                    role.value, account.value
                ),
                format!("write `arn:aws:iam::{}:role/NAME`", account.value),
            );
        } else {
            assume_role.insert(account.value.clone(), role.value.clone());
        }
    }
    let notify = r.notify.as_ref().and_then(|t| {
        match check_topic(&t.value, &allow.accounts, &allow.regions) {
            Ok(()) => Some(t.value.clone()),
            Err(why) => {
                v.problem(
                    t,
                    why,
                    "name an SNS topic ARN in an allowed account and region",
                );
                None
            }
        }
    });
    let params = match &playbook {
        Some(pb) => params(v, r, pb),
        None => Map::new(),
    };
    if v.problems.len() > before {
        return None;
    }
    Some(Route {
        name: r.name.value.clone(),
        matches: matches?,
        playbook_path,
        playbook: playbook?,
        target: target?,
        params,
        phases,
        max_targets,
        assume_role,
        notify,
        pos: v.pos(&r.name),
    })
}

fn matcher(v: &mut V, m: &RawMatch) -> Option<Match> {
    let Some(source) = EventSource::parse(&m.source.value) else {
        v.problem(
            &m.source,
            format!("unknown event source `{}`", m.source.value),
            choices_hint(&m.source.value, &EventSource::NAMES),
        );
        return None;
    };
    let pattern = |v: &mut V, s: &Spanned<String>| match Pattern::new(&s.value) {
        Ok(p) => Some(p),
        Err(e) => {
            v.problem(
                s,
                format!("`{}` is not a glob: {}", s.value, e.msg),
                "see docs/alarms.md for the glob syntax",
            );
            None
        }
    };
    let alarm = match (&m.alarm, source) {
        (Some(a), EventSource::CloudWatchAlarm) => pattern(v, a),
        (Some(a), _) => {
            v.problem(
                a,
                "`alarm` only applies to `source: cloudwatch-alarm`",
                "match findings with `finding_type`",
            );
            None
        }
        (None, _) => None,
    };
    let finding_type = match (&m.finding_type, source) {
        (Some(f), EventSource::CloudWatchAlarm) => {
            v.problem(
                f,
                "`finding_type` only applies to findings (guardduty, securityhub)",
                "match alarms with `alarm`",
            );
            None
        }
        (Some(f), _) => pattern(v, f),
        (None, _) => None,
    };
    let max = match source {
        EventSource::GuardDuty => 10.0,
        EventSource::SecurityHub => 100.0,
        EventSource::CloudWatchAlarm => 0.0,
    };
    let min_severity = match &m.min_severity {
        None => None,
        Some(s) if source == EventSource::CloudWatchAlarm => {
            v.problem(
                s,
                "`min_severity` only applies to findings",
                "remove it from this alarm route",
            );
            None
        }
        Some(s) => {
            match s.value.as_f64() {
                Some(x) if (0.0..=max).contains(&x) => Some(x),
                _ => {
                    v.problem(
                    s,
                    format!("`min_severity` must be a number from 0 to {max} for {}", source.as_str()),
                    "GuardDuty rates findings 0-10; Security Hub's normalized severity is 0-100",
                );
                    None
                }
            }
        }
    };
    Some(Match {
        source,
        alarm,
        finding_type,
        min_severity,
    })
}

const ALARM_DIMENSION: &str = "alarm.dimensions.";
const FINDING_FUNCTION: &str = "finding.lambda.function_name";

fn target(v: &mut V, r: &RawRoute, m: Option<&Match>, allow: &Allow) -> Option<TargetRef> {
    let t = &r.target.value.function;
    let text = t.value.trim();
    let reference = text
        .strip_prefix("${")
        .and_then(|x| x.strip_suffix('}'))
        .map(str::trim);
    let source = m.map(|m| m.source);
    match reference {
        Some(rf) => {
            if let Some(dim) = rf.strip_prefix(ALARM_DIMENSION) {
                if source.is_some_and(|s| s != EventSource::CloudWatchAlarm) {
                    v.problem(
                        t,
                        "an alarm dimension names the target only for `source: cloudwatch-alarm`",
                        format!("findings name their function with `${{{FINDING_FUNCTION}}}`"),
                    );
                    return None;
                }
                if dim.is_empty() || !dim.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    v.problem(
                        t,
                        format!("`{dim}` is not a dimension name"),
                        "write `${alarm.dimensions.FunctionName}`",
                    );
                    return None;
                }
                Some(TargetRef::AlarmDimension(dim.to_string()))
            } else if rf == FINDING_FUNCTION {
                if source == Some(EventSource::CloudWatchAlarm) {
                    v.problem(
                        t,
                        "a finding's function names the target only for findings",
                        "alarms name their function with `${alarm.dimensions.FunctionName}`",
                    );
                    return None;
                }
                Some(TargetRef::FindingFunction)
            } else {
                v.problem(
                    t,
                    format!("`${{{rf}}}` cannot name a target"),
                    format!("use `${{{ALARM_DIMENSION}NAME}}` for alarms or `${{{FINDING_FUNCTION}}}` for findings: nothing else of an event is read"),
                );
                None
            }
        }
        None if text.contains("${") => {
            v.problem(
                t,
                "a target is one reference or one function name, not a mix",
                "write `${alarm.dimensions.FunctionName}` or a plain function name",
            );
            None
        }
        None => {
            if !names::is_function_name(text) {
                v.problem(
                    t,
                    format!("`{text}` is not a function name"),
                    "letters, digits, `-` and `_`, at most 64",
                );
                None
            } else if !allow.function_allowed(text) {
                v.problem(
                    t,
                    format!("function `{text}` is not in `allow.functions`"),
                    "add it to the allowlist or target another function",
                );
                None
            } else {
                Some(TargetRef::Literal(text.to_string()))
            }
        }
    }
}

fn phases(v: &mut V, r: &RawRoute) -> Vec<Phase> {
    let Some(list) = &r.phases else {
        return DEFAULT_PHASES.to_vec();
    };
    let mut out = Vec::new();
    for p in &list.value {
        match Phase::parse(&p.value) {
            Some(Phase::Recover) => v.problem(
                p,
                "`recover` is never automatic",
                "recover after a human has looked: `firebreak recover --incident ID`",
            ),
            Some(phase) if !out.contains(&phase) => out.push(phase),
            Some(_) => v.problem(
                p,
                format!("phase `{}` is listed twice", p.value),
                "list each phase once",
            ),
            None => v.problem(
                p,
                format!("unknown phase `{}`", p.value),
                choices_hint(&p.value, &["identify", "contain"]),
            ),
        }
    }
    if list.value.is_empty() {
        v.problem(
            list,
            "no phases",
            "leave `phases` out for identify and contain",
        );
    }
    out.sort_by_key(|p| Phase::ALL.iter().position(|x| x == p));
    out
}

fn params(v: &mut V, r: &RawRoute, pb: &playbook::Playbook) -> Map<String, Value> {
    if pb.param("function").is_none() {
        v.problem(
            &r.playbook,
            format!(
                "playbook `{}` has no `function` param, so a route cannot give it a target",
                pb.name
            ),
            "declare `function: {type: string, required: true}` in the playbook",
        );
        return Map::new();
    }
    let mut given = Map::new();
    for (k, val) in r.params.iter().flat_map(|m| &m.value) {
        if k.value == "function" {
            v.problem(
                k,
                "`function` is set by the route's `target`, not by params",
                "remove it from `params`",
            );
            continue;
        }
        given.insert(k.value.clone(), val.value.clone());
    }
    match check_typed(pb, &given, &["function"]) {
        Ok(p) => p,
        Err(e) => {
            let at = r
                .params
                .as_ref()
                .map_or_else(|| v.pos(&r.playbook), |p| v.pos(p));
            for problem in e.problems {
                v.problems
                    .push(Problem::new(at, problem).label("here").hint(e.hint.clone()));
            }
            Map::new()
        }
    }
}
