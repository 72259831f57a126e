//! The time window of a log snapshot, and where it goes in the bucket.
//!
//! The window's end ("now") is fixed the first time a step plans it and
//! reused after that: within a run (plan, then the re-observation right
//! before apply) from memory, across runs from this incident's journal.
//! A re-run after a crash therefore asks for exactly the same events and
//! finds each part already stored under the same key with the same hash.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;

pub const DEFAULT_HOURS_BEFORE: i64 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive, milliseconds since the epoch (FilterLogEvents' unit).
    pub start_ms: i64,
    /// Inclusive.
    pub end_ms: i64,
}

impl Window {
    pub fn start(&self) -> String {
        rfc3339(self.start_ms)
    }

    pub fn end(&self) -> String {
        rfc3339(self.end_ms)
    }

    /// `20261123T120000Z_20261124T120000Z`: a key part that sorts by time.
    pub fn key_part(&self) -> String {
        format!("{}_{}", compact(self.start_ms), compact(self.end_ms))
    }
}

pub fn rfc3339(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) if ms % 1000 == 0 => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

fn compact(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) if ms % 1000 == 0 => t.format("%Y%m%dT%H%M%SZ").to_string(),
        Some(t) => t.format("%Y%m%dT%H%M%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

pub fn parse_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

/// Param check: an RFC 3339 time (`2026-11-23T12:00:00Z`).
pub fn check_time(v: &Value) -> Result<(), String> {
    match v.as_str() {
        None => Ok(()),
        Some(s) if s.contains("${") => Ok(()),
        Some(s) if parse_ms(s).is_some() => Ok(()),
        Some(s) => Err(format!(
            "`{s}` is not an RFC 3339 time: write it like 2026-11-23T12:00:00Z"
        )),
    }
}

/// Param check: CloudWatch Logs' own rule for log group names.
pub fn check_log_group(v: &Value) -> Result<(), String> {
    let Some(s) = v.as_str() else {
        return Ok(());
    };
    if s.contains("${") {
        return Ok(());
    }
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'));
    if (1..=512).contains(&s.len()) && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a log group name (1-512 letters, digits and . - _ / #)"
        ))
    }
}

/// Part check for `log_group` in text around references.
pub fn check_log_group_part(part: &str) -> Result<(), String> {
    crate::action::spec::part_chars(
        part,
        |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'),
        "a log group name (letters, digits and . - _ / #)",
    )
}

/// Part check for a time in text around references
/// (`2026-11-${params.day}T00:00:00Z`).
pub fn check_time_part(part: &str) -> Result<(), String> {
    crate::action::spec::part_chars(
        part,
        |c| c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | '+' | 'T' | 'Z' | 't' | 'z'),
        "an RFC 3339 time (digits, `-`, `:`, `.`, `+`, `T`, `Z`)",
    )
}

/// A log group name as one key part: `/` becomes `%2F` (`%` cannot occur
/// in a log group name, so two groups never share a key part).
pub fn group_key_part(group: &str) -> String {
    group.replace('/', "%2F")
}

/// The `filterPattern` to send for a plain-text filter, when it can be
/// expressed as one: a quoted term matches events containing it. Text with
/// quotes or backslashes is filtered on our side only.
pub fn filter_pattern(text: &str) -> Option<String> {
    (!text.is_empty() && !text.contains(['"', '\\'])).then(|| format!("\"{text}\""))
}

/// Resolves the window from the step's arguments. `end` is either the
/// explicit `end`, the end fixed earlier (`fixed_end`), or `now`.
pub fn resolve(
    start: Option<&str>,
    end: Option<&str>,
    hours_before: Option<i64>,
    incident_started_at: &str,
    fixed_end: Option<i64>,
    now_ms: i64,
) -> Result<Window, String> {
    if start.is_some() && hours_before.is_some() {
        return Err("give either `start` or `hours_before`, not both".into());
    }
    let end_ms = match end {
        Some(e) => parse_ms(e).ok_or_else(|| format!("`end` `{e}` is not an RFC 3339 time"))?,
        // The exact moment, not rounded down to the second: an attacker's
        // line written a few hundred milliseconds before the responder fixed
        // the window would otherwise fall outside it (seen in drills, where
        // the alarm follows the attack within the same second).
        None => fixed_end.unwrap_or(now_ms),
    };
    let start_ms = match start {
        Some(s) => parse_ms(s).ok_or_else(|| format!("`start` `{s}` is not an RFC 3339 time"))?,
        None => {
            let anchor = parse_ms(incident_started_at).ok_or_else(|| {
                format!("the incident's start time `{incident_started_at}` is not an RFC 3339 time")
            })?;
            anchor - hours_before.unwrap_or(DEFAULT_HOURS_BEFORE) * 3_600_000
        }
    };
    if start_ms >= end_ms {
        return Err(format!(
            "the window is empty: start {} is not before end {}",
            rfc3339(start_ms),
            rfc3339(end_ms)
        ));
    }
    Ok(Window { start_ms, end_ms })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STARTED: &str = "2026-11-23T12:00:00Z";

    #[test]
    fn the_default_window_is_a_day_before_the_incident_until_now() {
        let now = parse_ms("2026-11-23T13:30:15.250Z").expect("t");
        let w = resolve(None, None, None, STARTED, None, now).expect("window");
        assert_eq!(w.start(), "2026-11-22T12:00:00Z");
        // Up to the millisecond: nothing written before "now" is left out.
        assert_eq!(w.end(), "2026-11-23T13:30:15.250Z");
        assert_eq!(w.key_part(), "20261122T120000Z_20261123T133015.250Z");
        assert!(w.end_ms >= now);
    }

    #[test]
    fn an_end_fixed_earlier_wins_over_now_and_explicit_times_win_over_both() {
        let fixed = parse_ms("2026-11-23T12:10:00Z");
        let w = resolve(None, None, Some(2), STARTED, fixed, i64::MAX / 2).expect("w");
        assert_eq!(
            (w.start().as_str(), w.end().as_str()),
            ("2026-11-23T10:00:00Z", "2026-11-23T12:10:00Z")
        );
        let w = resolve(
            Some("2026-11-01T00:00:00Z"),
            Some("2026-11-02T00:00:00.5Z"),
            None,
            STARTED,
            fixed,
            0,
        )
        .expect("w");
        assert_eq!(w.end(), "2026-11-02T00:00:00.500Z");
        assert_eq!(w.key_part(), "20261101T000000Z_20261102T000000.500Z");
    }

    #[test]
    fn contradictory_or_empty_windows_are_refused_with_the_reason() {
        let e = resolve(Some(STARTED), None, Some(3), STARTED, None, 0).unwrap_err();
        assert!(e.contains("either `start` or `hours_before`"), "{e}");
        let e = resolve(Some(STARTED), Some(STARTED), None, STARTED, None, 0).unwrap_err();
        assert!(e.contains("window is empty"), "{e}");
    }

    #[test]
    fn params_are_checked_before_any_call() {
        assert!(check_time(&json!("2026-11-23T12:00:00+01:00")).is_ok());
        assert!(check_time(&json!("yesterday")).is_err());
        assert!(check_log_group(&json!("/aws/lambda/fn-1_a.b#c")).is_ok());
        assert!(check_log_group(&json!("/aws/lambda/f n")).is_err());
        assert!(check_log_group(&json!("")).is_err());
        assert_eq!(group_key_part("/aws/lambda/fn"), "%2Faws%2Flambda%2Ffn");
        assert_eq!(filter_pattern("ERROR").as_deref(), Some("\"ERROR\""));
        assert_eq!(filter_pattern("say \"hi\""), None);
    }
}
