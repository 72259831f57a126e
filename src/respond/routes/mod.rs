//! Routes: which events the responder acts on, against what, with which
//! playbook. The file is trusted (it is reviewed like code); the events are
//! not, so everything an event may influence is bounded here: the allowlist
//! of accounts, regions and functions, and the one field each route reads
//! from an event to name its target.

mod load;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use glob::{MatchOptions, Pattern};
use serde_json::{Map, Value};

use crate::playbook::source::{Pos, Source};
use crate::playbook::{Phase, Playbook};

pub use load::{load, looks_like_routes, parse};

/// A validated routes file.
#[derive(Debug)]
pub struct Routes {
    pub allow: Allow,
    pub routes: Vec<Route>,
    pub source: Arc<Source>,
    pub sha256: String,
}

/// Nothing outside these is ever acted on.
#[derive(Debug)]
pub struct Allow {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub functions: Vec<Pattern>,
    /// Topics whose notifications are read; a notification from any other
    /// topic is refused before its message is parsed.
    pub sns_topics: Vec<String>,
}

/// Where an event comes from, as a route names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    CloudWatchAlarm,
    GuardDuty,
    SecurityHub,
}

impl EventSource {
    pub const NAMES: [&'static str; 3] = ["cloudwatch-alarm", "guardduty", "securityhub"];

    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::CloudWatchAlarm => "cloudwatch-alarm",
            EventSource::GuardDuty => "guardduty",
            EventSource::SecurityHub => "securityhub",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cloudwatch-alarm" => Some(EventSource::CloudWatchAlarm),
            "guardduty" => Some(EventSource::GuardDuty),
            "securityhub" => Some(EventSource::SecurityHub),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Match {
    pub source: EventSource,
    /// A glob over the alarm's name.
    pub alarm: Option<Pattern>,
    /// A glob over the finding's type (`*:Lambda/*`).
    pub finding_type: Option<Pattern>,
    /// In the source's own scale: GuardDuty 0-10, Security Hub's
    /// normalized 0-100.
    pub min_severity: Option<f64>,
}

/// The one place a route reads its target from an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    /// `${alarm.dimensions.NAME}`.
    AlarmDimension(String),
    /// `${finding.lambda.function_name}`.
    FindingFunction,
    /// A fixed function name.
    Literal(String),
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub matches: Match,
    pub playbook_path: PathBuf,
    pub playbook: Playbook,
    pub target: TargetRef,
    /// Typed and checked against the playbook, defaults filled in; never
    /// `function` (the target sets it).
    pub params: Map<String, Value>,
    pub phases: Vec<Phase>,
    pub max_targets: u32,
    /// Account id → the role assumed to act there.
    pub assume_role: BTreeMap<String, String>,
    /// An SNS topic told the incident summary.
    pub notify: Option<String>,
    pub pos: Pos,
}

/// Globs match whole names, case-sensitively, `*` never crossing `/`.
pub(crate) const GLOB: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Allow {
    pub fn function_allowed(&self, name: &str) -> bool {
        self.functions.iter().any(|p| p.matches_with(name, GLOB))
    }
}

impl Routes {
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }
}

/// The default when a route names no phases: recovery is never automatic.
pub const DEFAULT_PHASES: [Phase; 2] = [Phase::Identify, Phase::Contain];

/// A route's `max_targets` when it sets none: an alarm names one function.
pub const DEFAULT_MAX_TARGETS: u32 = 1;
