//! The scorecard as data: every check with what was read and, when it
//! failed, what was missed and why; the timings against the scenario's
//! targets; the attack, the artifacts and one timeline (drill clock and
//! audit trail on one axis). The renderers only format it.

use serde::Serialize;

use super::attack::{Artifact, Executed};
use super::checks::CheckResult;
use super::model::Drill;
use crate::playbook::Phase;
use crate::report::IncidentReport;
use crate::state::AuditEvent;

#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    pub drill: String,
    pub description: String,
    pub scenario: String,
    pub playbook: String,
    pub via: super::model::Via,
    pub incident: String,
    pub account: String,
    pub suffix: String,
    pub started_at: String,
    pub passed: bool,
    pub summary: Summary,
    pub checks: Vec<CheckResult>,
    pub timings: Vec<Timing>,
    pub attack: Vec<Executed>,
    pub artifacts: Vec<Artifact>,
    pub timeline: Vec<Mark>,
    /// Resources removed after the run (`false` with `--keep`).
    pub cleaned_up: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub checks: usize,
    pub passed: usize,
    pub failed: usize,
    pub timings_over_target: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub name: &'static str,
    /// From what to what, in words.
    pub span: &'static str,
    pub actual_ms: Option<u64>,
    pub target_ms: u64,
    pub passed: bool,
}

/// One moment on the timeline, in ms since the drill started.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub at_ms: u64,
    pub lane: &'static str,
    pub label: String,
}

pub const LANES: [&str; 5] = ["attack", "alarm", "contain", "evidence", "recover"];

/// Moments the runner measured (ms since the drill started).
#[derive(Debug, Default, Clone)]
pub struct Clock {
    pub alarm_set: Option<u64>,
    pub alarm_received: Option<u64>,
    pub recover_started: Option<u64>,
    pub recover_finished: Option<u64>,
}

pub struct ScoreInput<'a> {
    pub drill: &'a Drill,
    pub incident: &'a str,
    pub account: &'a str,
    pub suffix: &'a str,
    pub started: chrono::DateTime<chrono::Utc>,
    pub attack: &'a [Executed],
    pub artifacts: &'a [Artifact],
    pub checks: Vec<CheckResult>,
    pub report: Option<&'a IncidentReport>,
    pub clock: Clock,
}

pub fn ms_since(start: chrono::DateTime<chrono::Utc>, time: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    u64::try_from((t.with_timezone(&chrono::Utc) - start).num_milliseconds()).ok()
}

pub fn build(i: ScoreInput<'_>) -> Scorecard {
    let pb = &i.drill.respond.playbook;
    let action_of = |step: &str| {
        pb.steps
            .iter()
            .find(|s| s.id == step)
            .map(|s| (s.action.spec().name, s.phase))
    };
    let mut timeline: Vec<Mark> = Vec::new();
    for s in i.attack {
        let lane = if s.technique == "set_alarm" {
            "alarm"
        } else {
            "attack"
        };
        timeline.push(Mark {
            at_ms: s.started_ms,
            lane,
            label: s.technique.to_string(),
        });
    }
    if let Some(t) = i.clock.alarm_received {
        timeline.push(Mark {
            at_ms: t,
            lane: "alarm",
            label: "alarm reaches the responder".into(),
        });
    }
    let mut throttle_confirmed = None;
    let mut evidence_complete = None;
    if let Some(r) = i.report {
        let recover_runs = r.recover_runs();
        let respond_run = r.runs.iter().find(|x| x.contains());
        for e in &r.timeline {
            let Some(at) = ms_since(i.started, &e.time) else {
                continue;
            };
            let step = e.step.as_deref().unwrap_or("");
            let recovering = recover_runs.contains(&e.run.as_str());
            match e.event {
                AuditEvent::Applied | AuditEvent::Confirmed if recovering => {
                    timeline.push(Mark {
                        at_ms: at,
                        lane: "recover",
                        label: e.what.clone(),
                    });
                }
                AuditEvent::Applied | AuditEvent::Confirmed => {
                    let lane = match action_of(step) {
                        Some((_, Phase::Identify)) => "evidence",
                        Some((a, _))
                            if a.starts_with("evidence.")
                                || a.starts_with("logs.")
                                || a.starts_with("cloudtrail.") =>
                        {
                            "evidence"
                        }
                        _ => "contain",
                    };
                    timeline.push(Mark {
                        at_ms: at,
                        lane,
                        label: format!("{step}: {}", e.what),
                    });
                }
                AuditEvent::Verification if !recovering => {
                    let throttle =
                        action_of(step).is_some_and(|(a, _)| a == "lambda.set_concurrency");
                    if throttle
                        && e.what.starts_with("check passed")
                        && throttle_confirmed.is_none()
                    {
                        throttle_confirmed = Some(at);
                        timeline.push(Mark {
                            at_ms: at,
                            lane: "contain",
                            label: "throttle confirmed (Invoke refused)".into(),
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some(run) = respond_run {
            if let Some(end) = run
                .finished_at
                .as_deref()
                .and_then(|t| ms_since(i.started, t))
            {
                evidence_complete = Some(end);
                timeline.push(Mark {
                    at_ms: end,
                    lane: "evidence",
                    label: "evidence complete (trail sealed in the bucket)".into(),
                });
            }
        }
    }
    if let (Some(a), Some(b)) = (i.clock.recover_started, i.clock.recover_finished) {
        timeline.push(Mark {
            at_ms: a,
            lane: "recover",
            label: "recover starts".into(),
        });
        timeline.push(Mark {
            at_ms: b,
            lane: "recover",
            label: "recover done".into(),
        });
    }
    timeline.sort_by_key(|m| m.at_ms);

    let attack_start = i.attack.first().map(|s| s.started_ms);
    // Detection starts at the attack; containment and evidence at the
    // moment the alarm reached the responder (or the direct run's start).
    let trigger = i
        .clock
        .alarm_received
        .or(i.clock.alarm_set)
        .or(i.attack.last().map(|s| s.finished_ms));
    let diff = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let t = &i.drill.targets;
    let row = |name, span, actual: Option<u64>, target: std::time::Duration| {
        let target_ms = u64::try_from(target.as_millis()).unwrap_or(u64::MAX);
        Timing {
            name,
            span,
            actual_ms: actual,
            target_ms,
            passed: actual.is_some_and(|a| a <= target_ms),
        }
    };
    let mut timings = Vec::new();
    if i.drill.respond.via == super::model::Via::Alarm {
        timings.push(row(
            "time_to_detect",
            "first attack step → alarm at the responder",
            diff(attack_start, i.clock.alarm_received),
            t.detect,
        ));
    }
    timings.push(row(
        "time_to_contain",
        "alarm → throttle confirmed",
        diff(trigger, throttle_confirmed),
        t.contain,
    ));
    timings.push(row(
        "time_to_evidence",
        "alarm → evidence complete",
        diff(trigger, evidence_complete),
        t.evidence,
    ));
    if !i.drill.recovered.is_empty() {
        timings.push(row(
            "time_to_recover",
            "recover start → recover done",
            diff(i.clock.recover_started, i.clock.recover_finished),
            t.recover,
        ));
    }
    let failed = i.checks.iter().filter(|c| !c.passed).count();
    let over = timings.iter().filter(|t| !t.passed).count();
    Scorecard {
        drill: i.drill.name.clone(),
        description: i.drill.description.clone(),
        scenario: i.drill.source.display_path(),
        playbook: pb.name.clone(),
        via: i.drill.respond.via,
        incident: i.incident.to_string(),
        account: i.account.to_string(),
        suffix: i.suffix.to_string(),
        started_at: i
            .started
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        passed: failed == 0 && over == 0,
        summary: Summary {
            checks: i.checks.len(),
            passed: i.checks.len() - failed,
            failed,
            timings_over_target: over,
        },
        checks: i.checks,
        timings,
        attack: i.attack.to_vec(),
        artifacts: i.artifacts.to_vec(),
        timeline,
        cleaned_up: false,
    }
}
