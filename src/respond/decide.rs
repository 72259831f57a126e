//! From a parsed event to what to do: the route it selects, the one
//! function it names, the incident it belongs to. Only the allowlist and
//! the route decide; the event merely selects among them.

use glob::MatchOptions;
use sha2::{Digest, Sha256};

use super::event::{Event, EventKind, Refusal};
use super::names;
use super::routes::{EventSource, Route, Routes, TargetRef, GLOB};
use crate::state::IncidentId;

/// What an event asks for, before the source of truth is re-read.
#[derive(Debug)]
pub struct Decision<'r> {
    pub route: &'r Route,
    pub function: String,
    pub incident: IncidentId,
}

/// Finding types contain `:` and `/`; a `*` must cross them.
const TYPE_GLOB: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

pub fn decide<'r>(routes: &'r Routes, event: &Event) -> Result<Decision<'r>, Refusal> {
    let (account, region) = (event.account(), event.region());
    if !routes.allow.accounts.iter().any(|a| a == account) {
        return Err(Refusal::new(
            "account_not_allowed",
            format!(
                "account {} is not in the routes' `allow.accounts`",
                short(account)
            ),
        ));
    }
    if !routes.allow.regions.iter().any(|r| r == region) {
        return Err(Refusal::new(
            "region_not_allowed",
            format!(
                "region {} is not in the routes' `allow.regions`",
                short(region)
            ),
        ));
    }
    if let EventKind::Alarm(a) = &event.kind {
        if a.state != "ALARM" {
            return Err(Refusal::new(
                "not_in_alarm",
                format!(
                    "alarm {} went to {}, not ALARM: nothing to respond to",
                    a.name,
                    short(&a.state)
                ),
            ));
        }
    }
    let route = routes
        .routes
        .iter()
        .find(|r| matches(r, event))
        .ok_or_else(|| {
            Refusal::new("no_route", format!("no route matches {}", event.describe()))
        })?;
    let function = target_of(route, event)?;
    if !routes.allow.function_allowed(&function) {
        return Err(Refusal::new(
            "function_not_allowed",
            format!("function {function} is not in the routes' `allow.functions`"),
        ));
    }
    Ok(Decision {
        route,
        function,
        incident: incident_id(event)?,
    })
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

fn matches(route: &Route, event: &Event) -> bool {
    let m = &route.matches;
    match (&event.kind, m.source) {
        (EventKind::Alarm(a), EventSource::CloudWatchAlarm) => m
            .alarm
            .as_ref()
            .is_none_or(|p| p.matches_with(&a.name, GLOB)),
        (EventKind::GuardDuty(f), EventSource::GuardDuty)
        | (EventKind::SecurityHub(f), EventSource::SecurityHub) => {
            m.finding_type
                .as_ref()
                .is_none_or(|p| f.types.iter().any(|t| p.matches_with(t, TYPE_GLOB)))
                && m.min_severity.is_none_or(|min| f.severity >= min)
        }
        _ => false,
    }
}

/// The function the route's `target` names in this event: one name, in
/// the event's own account and region.
pub fn target_of(route: &Route, event: &Event) -> Result<String, Refusal> {
    let raw = match (&route.target, &event.kind) {
        (TargetRef::Literal(name), _) => name.clone(),
        (TargetRef::AlarmDimension(dim), EventKind::Alarm(a)) => a
            .dimensions
            .iter()
            .find(|(n, _)| n == dim)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                Refusal::new(
                    "no_target",
                    format!(
                        "alarm {} has no dimension `{dim}` to name a function",
                        a.name
                    ),
                )
            })?,
        (TargetRef::FindingFunction, EventKind::GuardDuty(f) | EventKind::SecurityHub(f)) => {
            f.function.clone()
        }
        _ => {
            return Err(Refusal::new(
                "no_target",
                format!(
                    "route `{}` cannot name a target in {}",
                    route.name,
                    event.describe()
                ),
            ))
        }
    };
    names::function_from_event(&raw, event.account(), event.region()).map_err(|why| {
        Refusal::new(
            "bad_target",
            format!(
                "the event names {:?} as the function, which cannot be a target: {why}",
                raw.chars().take(80).collect::<String>()
            ),
        )
    })
}

/// One incident per alarm state change or per finding, whichever path
/// delivered it and however often: a redelivery resumes the incident.
pub fn incident_id(event: &Event) -> Result<IncidentId, Refusal> {
    let (prefix, label, key) = match &event.kind {
        EventKind::Alarm(a) => (
            "alarm",
            a.name.as_str(),
            format!("{}|{}", a.arn, a.changed_at),
        ),
        EventKind::GuardDuty(f) => ("guardduty", "", format!("{}|{}", f.arn, f.id)),
        EventKind::SecurityHub(f) => (
            "securityhub",
            "",
            format!("{}|{}|{}", f.arn, f.id, f.function),
        ),
    };
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    // The alarm's name makes the id readable; only its safe characters,
    // and short enough that the id stays within 64.
    let label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    let id = if label.is_empty() {
        format!("{prefix}-{}", &hash[..20])
    } else {
        format!("{prefix}-{label}-{}", &hash[..16])
    };
    IncidentId::parse(&id).map_err(|e| Refusal::new("bad_field", e.to_string()))
}
