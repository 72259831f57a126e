//! Indicators of compromise (issue 13): what the attacker changed, judged
//! against a baseline when one is given (`drift`) and by heuristics that
//! need none otherwise, attributed with CloudTrail where it can be read.
//!
//! `assess` is the library entry: the identify step (`lambda.indicators`),
//! the evidence writer (`evidence.snapshot_indicators`), containment
//! (`lambda.contain_rogue_functions`, `iam.quarantine_role`'s
//! `attacker_functions`) and `recover` all call it with the same
//! arguments, so they judge the same way. While a plan is made the
//! assessment is read once and shared (`RunContext::planned_read`).
//!
//! Read-only: every call is on the dry-run guard's read list.

pub mod action;
pub mod attribution;
pub mod drift;
pub mod facts;
pub mod heuristics;
pub mod model;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::function::{self, FunctionArg};
use crate::action::cloudtrail::lookup::{self, Query, Settings};
use crate::action::cloudtrail::window::{parse_time, Window};
use crate::action::iam::role;
use crate::action::spec::{ParamDef, ValueType};
use crate::action::{ActionError, StepContext};
pub use model::{Assessment, Indicator, Kind, Source};

/// The look-back before the incident's start, by default.
pub const DEFAULT_WINDOW_HOURS: i64 = 24;

/// The parameters every indicator-reading action takes (the same in each,
/// so that identify, evidence, containment and recover judge alike).
pub const PARAMS: [ParamDef; 7] = [
    ParamDef::new("function", ValueType::String, "the compromised function (name or ARN)")
        .check(function::check_literal)
        .parts(function::check_part),
    ParamDef::new("window_hours", ValueType::Integer, "the incident window starts this many hours before the incident started (default 24)")
        .optional()
        .range(1, 24 * 90),
    ParamDef::new("since", ValueType::String, "the incident window's start as an RFC 3339 time (overrides `window_hours`; empty: not given)")
        .optional()
        .check(check_since),
    ParamDef::new("users", ValueType::List, "IAM users whose access keys created inside the window are indicators")
        .optional()
        .parts(role::check_name_part),
    ParamDef::new("deployers", ValueType::List, "principals (ARNs, or user or role names) whose changes are expected; a change CloudTrail attributes to anyone else is suspicious")
        .optional(),
    ParamDef::new("lookup_api", ValueType::Boolean, "name who made each change from CloudTrail LookupEvents (default true; a failed lookup is reported, never fatal)")
        .optional(),
    ParamDef::new("baseline_store", ValueType::String, "a baseline store (DIR or s3://BUCKET/PREFIX): the drift from the function's newest baseline taken before the incident started is reported, each item suspicious or expected (empty: heuristics only)")
        .optional(),
];

/// The IAM actions `assess` needs, followed by an action's own: one list
/// for the three actions that assess, so that they cannot drift apart.
macro_rules! indicator_iam_actions {
    ($($own:literal),* $(,)?) => {
        &[
            "lambda:GetFunction",
            "lambda:ListVersionsByFunction",
            "lambda:ListAliases",
            "lambda:ListFunctionUrlConfigs",
            "lambda:GetPolicy",
            "lambda:ListEventSourceMappings",
            "lambda:ListFunctions",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:ListAccessKeys",
            "events:ListRuleNamesByTarget",
            "events:DescribeRule",
            "cloudtrail:LookupEvents",
            $($own),*
        ]
    };
}
pub(crate) use indicator_iam_actions;

#[derive(Debug, Clone, Deserialize)]
pub struct IndicatorArgs {
    pub function: FunctionArg,
    #[serde(default)]
    pub window_hours: Option<i64>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub deployers: Vec<String>,
    #[serde(default = "yes")]
    pub lookup_api: bool,
    /// Where baselines are kept; empty or absent: heuristics only.
    #[serde(default)]
    pub baseline_store: Option<String>,
}

fn yes() -> bool {
    true
}

/// `since` is an RFC 3339 time, or empty (a playbook param's default).
fn check_since(v: &Value) -> Result<(), String> {
    match v.as_str() {
        Some("") => Ok(()),
        _ => crate::action::cloudtrail::window::check_time(v),
    }
}

/// Only the indicator parameters of a step's arguments (other actions add
/// their own): what `recover` re-reads from the trail.
pub fn indicator_args(args: &Map<String, Value>) -> Map<String, Value> {
    PARAMS
        .iter()
        .filter_map(|p| args.get(p.name).map(|v| (p.name.to_string(), v.clone())))
        .collect()
}

/// The start of the incident window.
pub fn since(cx: &StepContext<'_>, args: &IndicatorArgs) -> Result<DateTime<Utc>, ActionError> {
    if let Some(s) = args.since.as_deref().filter(|s| !s.is_empty()) {
        return parse_time(s).map_err(|e| {
            ActionError::input(
                format!("`since`: {e}"),
                "give the window's start in UTC, e.g. 2026-11-23T08:00:00Z",
            )
        });
    }
    let started = parse_time(cx.incident_started_at).map_err(|e| {
        ActionError::input(
            format!("the incident's start time is unreadable: {e}"),
            "the incident's metadata was edited or damaged; give `since` explicitly",
        )
    })?;
    Ok(started - Duration::hours(args.window_hours.unwrap_or(DEFAULT_WINDOW_HOURS)))
}

/// The assessment a step's changes were planned from: in the re-read
/// right before those changes, the one planning made (which functions,
/// rules and statements are the attacker's is the plan's judgement, and
/// what evidence records is what the plan saw, before any change of the
/// run); the step re-reads afresh only what it changes. A full
/// re-assessment there reads every function on the role again, for every
/// target: N² reads for a fleet of N on one role. Anywhere else `assess`.
pub async fn assess_as_planned(
    cx: &StepContext<'_>,
    args: &IndicatorArgs,
) -> Result<Assessment, ActionError> {
    if cx.fresh && !cx.verifying {
        let planning = StepContext {
            fresh: false,
            ..*cx
        };
        return Box::pin(assess(&planning, args)).await;
    }
    Box::pin(assess(cx, args)).await
}

/// Reads and judges everything once (shared while planning).
pub async fn assess(cx: &StepContext<'_>, args: &IndicatorArgs) -> Result<Assessment, ActionError> {
    let f = args.function.resolve(cx)?;
    let since = since(cx, args)?;
    let store = args.baseline_store.as_deref().filter(|s| !s.is_empty());
    let key = format!(
        "indicators {} {} {:?} {:?} {} {:?}",
        f.arn, since, args.users, args.deployers, args.lookup_api, store
    );
    cx.shared_read(key, async {
            let facts = facts::read(cx, &f, &args.users).await?;
            let heuristic = heuristics::evaluate(&facts, since);
            let (mut indicators, flagged, baseline) = match store {
                None => (heuristic, Vec::new(), String::new()),
                Some(store) => match read_baseline(cx, store, &f.name).await {
                    Ok(Some(b)) => {
                        let place = drift::Place {
                            account: &facts.account,
                            function_arn: &facts.function_arn,
                            role_arn: facts.role_arn.as_deref(),
                        };
                        let (i, flagged) = drift::judge(&b, heuristic, &place, cx.history);
                        let note = format!(
                            "taken at {} (in {}): {} drift item(s)",
                            b.taken_at,
                            b.store,
                            b.drift.len()
                        );
                        (i, flagged, note)
                    }
                    Ok(None) => (
                        heuristic,
                        Vec::new(),
                        format!(
                            "none in {store} taken before the incident started ({}): judged by heuristics",
                            cx.incident_started_at
                        ),
                    ),
                    // Like CloudTrail below: an unreadable baseline leaves
                    // the heuristics, never an unidentified function.
                    Err(e) => (
                        heuristic,
                        Vec::new(),
                        format!("not read: {e} (hint: {}); judged by heuristics", e.hint()),
                    ),
                },
            };
            // What the baseline already had is known-good: only the drift
            // (listed first by `judge`) and, without a baseline, every
            // heuristic finding is attributed.
            let attributable = if flagged.is_empty() {
                indicators.len()
            } else {
                indicators
                    .iter()
                    .take_while(|i| i.source == Source::Baseline)
                    .count()
            };
            let cloudtrail = if !args.lookup_api {
                "not read (`lookup_api: false`)".to_string()
            } else if attributable == 0 {
                "not needed: nothing to attribute".to_string()
            } else {
                match events(cx, &f.name, &facts, &indicators[..attributable], since).await {
                    Ok(events) => {
                        attribution::attribute(
                            &mut indicators[..attributable],
                            &events,
                            &args.deployers,
                        );
                        format!("LookupEvents read: {} event(s) in the window", events.len())
                    }
                    // A failed read for attribution is reported, never a
                    // reason to stop identifying (contract 14).
                    Err(e) => format!("not read: {e} (hint: {})", e.hint()),
                }
            };
            drift::keep_suspicious(&mut indicators, &flagged);
            Ok(Assessment {
                function_arn: f.arn.clone(),
                since: since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                indicators,
                cloudtrail,
                facts: facts::to_json(&facts),
                baseline,
            })
        })
        .await
}

/// The drift from the newest baseline before the incident started, read
/// by the reader the engine gave the run (`drift` says why a port).
async fn read_baseline(
    cx: &StepContext<'_>,
    store: &str,
    function: &str,
) -> Result<Option<drift::BaselineDrift>, ActionError> {
    let Some(reader) = cx.run.baselines() else {
        return Err(ActionError::input(
            "this entry point reads no baselines",
            "run the playbook with `firebreak run` (or the responder), which reads them",
        ));
    };
    reader
        .read(
            cx.aws,
            &cx.caller.account,
            store,
            function,
            cx.incident_started_at,
        )
        .await
}

/// LookupEvents for every resource an indicator names, over the window.
async fn events(
    cx: &StepContext<'_>,
    function: &str,
    facts: &facts::Facts,
    indicators: &[Indicator],
    since: DateTime<Utc>,
) -> Result<Vec<Value>, ActionError> {
    use aws_sdk_cloudtrail::types::LookupAttributeKey as K;
    let mut names = vec![function.to_string()];
    for i in indicators {
        let n = attribution::resource_name(i);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if let Some(r) = &facts.role_arn {
        let n = role::from_arn(r).name;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let queries: Vec<Query> = names
        .into_iter()
        .map(|n| Query::new(K::ResourceName, n))
        .collect();
    let window = Window {
        start: since,
        end: Utc::now(),
    };
    let found = lookup::lookup(&cx.aws.cloudtrail, &queries, &window, &Settings::default()).await?;
    Ok(found.events)
}

/// What an observation records of an assessment: the arguments (so that
/// `recover` asks the same question later) and the findings.
pub fn observed(cx: &StepContext<'_>, a: &Assessment) -> Value {
    json!({"args": indicator_args(cx.args), "assessment": a})
}
