//! The time window events are collected for.
//!
//! By default it runs from 24 h before the incident started until "now",
//! and "now" is fixed the first time the step looks: a re-run (after a
//! crash, or a day later) finds the end in this incident's journal, where
//! every planned change carries its window, and so asks the same question,
//! writes under the same keys and, finding them stored, writes nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::collect::CollectArgs;
use crate::action::{ActionError, StepContext};

/// Before the incident: the default look-back.
pub const DEFAULT_LOOKBACK_HOURS: i64 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    /// Inclusive, like LookupEvents' `EndTime`.
    pub end: DateTime<Utc>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2026-11-23T08:00:00Z ({e})"))
}

/// Static check of a literal `start`/`end`.
pub fn check_time(v: &Value) -> Result<(), String> {
    match v.as_str() {
        Some(s) if s.contains("${") => Ok(()),
        Some(s) => parse_time(s).map(|_| ()),
        None => Ok(()), // the type check reports it
    }
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t <= self.end
    }

    /// `20261122T080000Z_20261123T081500Z`: the window's folder in the bucket.
    pub fn stamp(&self) -> String {
        format!(
            "{}_{}",
            self.start.format("%Y%m%dT%H%M%SZ"),
            self.end.format("%Y%m%dT%H%M%SZ")
        )
    }

    pub fn to_json(&self) -> Value {
        json!({"start": rfc3339(self.start), "end": rfc3339(self.end)})
    }

    pub fn describe(&self) -> String {
        format!("{} → {}", rfc3339(self.start), rfc3339(self.end))
    }

    /// The UTC days whose trail folders can hold events of the window: a
    /// log file is filed under the day it was written, up to `delivery`
    /// after its last event, so the day after the end may hold some.
    pub fn days(&self, delivery: Duration) -> Vec<NaiveDate> {
        let mut days = Vec::new();
        let mut d = self.start.date_naive();
        let last = (self.end + delivery).date_naive();
        while d <= last {
            days.push(d);
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        days
    }
}

/// The end chosen the first time, per incident, step and target, for the
/// observations of one process (plan, then the re-observation before
/// apply) that come before anything is journaled.
#[derive(Default)]
struct ChosenEnds(Mutex<HashMap<String, DateTime<Utc>>>);

/// The window of this step for `target`: `start`/`end` when given, the
/// journal's when an earlier run fixed it, else fixed now.
pub fn resolve(
    cx: &StepContext<'_>,
    args: &CollectArgs,
    action: &str,
    target: &str,
) -> Result<Window, ActionError> {
    let arg_time =
        |name: &str, given: Option<&str>| -> Result<Option<DateTime<Utc>>, ActionError> {
            match given {
                None => Ok(None),
                Some(s) => parse_time(s).map(Some).map_err(|e| {
                    ActionError::input(
                        format!("`{name}`: {e}"),
                        "give the time in UTC, e.g. 2026-11-23T08:00:00Z",
                    )
                }),
            }
        };
    let start = match arg_time("start", args.start.as_deref())? {
        Some(t) => t,
        None => {
            let started = parse_time(cx.incident_started_at).map_err(|e| {
                ActionError::input(
                    format!("the incident's start time is unreadable: {e}"),
                    "the incident's meta.json was edited or damaged; give `start` explicitly",
                )
            })?;
            started - Duration::hours(DEFAULT_LOOKBACK_HOURS)
        }
    };
    let end = match arg_time("end", args.end.as_deref())? {
        Some(t) => t,
        None => fixed_end(cx, action, target, start),
    };
    if end <= start {
        return Err(ActionError::input(
            format!(
                "the window is empty: it ends ({}) before it starts ({})",
                rfc3339(end),
                rfc3339(start)
            ),
            "give `start` before `end` (both RFC 3339, UTC)",
        ));
    }
    Ok(Window { start, end })
}

fn fixed_end(
    cx: &StepContext<'_>,
    action: &str,
    target: &str,
    start: DateTime<Utc>,
) -> DateTime<Utc> {
    let start_text = rfc3339(start);
    let journaled = cx.history.iter().find_map(|r| {
        let w = &r.change.after["window"];
        (r.action == action && r.change.target == target && w["start"] == start_text.as_str())
            .then(|| w["end"].as_str().and_then(|e| parse_time(e).ok()))
            .flatten()
    });
    let memo_key = format!("{}\n{}\n{target}\n{start_text}", cx.incident_id, cx.step_id);
    let chosen = cx.run.slot::<ChosenEnds>();
    let mut memo = chosen.0.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(end) = journaled {
        memo.insert(memo_key, end);
        return end;
    }
    *memo.entry(memo_key).or_insert_with(|| {
        // Whole seconds: the end is written into keys and the journal.
        let now = Utc::now();
        DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap_or_default()
    }

    #[test]
    fn days_cover_the_window_and_late_delivery() {
        let w = Window {
            start: t("2026-11-22T08:00:00Z"),
            end: t("2026-11-23T23:30:00Z"),
        };
        let days: Vec<String> = w
            .days(Duration::hours(1))
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(days, ["2026-11-22", "2026-11-23", "2026-11-24"]);
        assert_eq!(w.stamp(), "20261122T080000Z_20261123T233000Z");
        assert!(w.contains(t("2026-11-23T23:30:00Z")));
        assert!(!w.contains(t("2026-11-22T07:59:59Z")));
    }

    #[test]
    fn times_must_be_rfc3339() {
        assert!(check_time(&json!("2026-11-23T08:00:00Z")).is_ok());
        assert!(check_time(&json!("${params.since}")).is_ok());
        let e = check_time(&json!("yesterday")).unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
    }
}
