//! The scorecard in Markdown: verdict, what was missed and why, timings,
//! every check, the attack with its sources, the timeline.

use std::fmt::Write;

use super::super::score::Scorecard;
use super::verdict;
use crate::render::timeline::seconds;

pub fn render(s: &Scorecard) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Drill scorecard: {}\n", s.drill);
    if !s.description.is_empty() {
        let _ = writeln!(o, "{}\n", s.description.trim());
    }
    let _ = writeln!(o, "**{}**\n", verdict(s));
    let _ = writeln!(
        o,
        "- scenario: `{}`\n- playbook: `{}`, via {}\n- incident: `{}` (account {}, names suffixed `-{}`)\n- started: {}\n- cleaned up: {}\n",
        s.scenario,
        s.playbook,
        match s.via {
            super::super::model::Via::Alarm => "the alarm path (SetAlarmState → SNS → SQS → watch)",
            super::super::model::Via::Direct => "a direct run",
        },
        s.incident,
        s.account,
        s.suffix,
        s.started_at,
        if s.cleaned_up { "yes" } else { "no (--keep, or a removal failed)" }
    );
    let missed: Vec<_> = s.checks.iter().filter(|c| !c.passed).collect();
    if !missed.is_empty() {
        let _ = writeln!(o, "## What was missed\n");
        for c in missed {
            let _ = writeln!(
                o,
                "- **{}**{}: {}\n  - read: {}",
                c.check,
                c.subject
                    .as_ref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default(),
                c.missed.as_deref().unwrap_or(""),
                c.observed
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "## Timings\n\n| timing | from → to | actual | target | |\n| --- | --- | --- | --- | --- |"
    );
    for t in &s.timings {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            t.name,
            t.span,
            t.actual_ms.map_or("not reached".into(), seconds),
            seconds(t.target_ms),
            if t.passed { "ok" } else { "OVER" }
        );
    }
    let _ = writeln!(o, "\n## Checks\n\n| phase | check | subject | result | read |\n| --- | --- | --- | --- | --- |");
    for c in &s.checks {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            c.phase,
            c.check,
            c.subject.as_deref().unwrap_or("-"),
            if c.passed { "pass" } else { "FAIL" },
            c.observed.replace('|', "\\|")
        );
    }
    let _ = writeln!(
        o,
        "\n## Attack\n\n| # | technique | source |\n| --- | --- | --- |"
    );
    for (i, a) in s.attack.iter().enumerate() {
        let _ = writeln!(
            o,
            "| {} | {}: {} | [{}]({}) |",
            i + 1,
            a.technique,
            a.title,
            a.source,
            a.url
        );
    }
    let _ = writeln!(o, "\n## Timeline\n");
    for m in &s.timeline {
        let _ = writeln!(o, "- +{} [{}] {}", seconds(m.at_ms), m.lane, m.label);
    }
    o
}
