//! The scorecard as one self-contained HTML page: inline CSS, the
//! timeline as inline SVG (attack, alarm, containment, evidence, recovery
//! on one time axis), no script and no external URL except the links to
//! each technique's public description.

use std::fmt::Write;

use super::super::score::{Scorecard, LANES};
use super::verdict;
use crate::render::timeline::{escape, seconds, svg, Point, CSS};

pub fn render(s: &Scorecard) -> String {
    let mut o = String::new();
    let cls = if s.passed { "pass" } else { "fail" };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Drill scorecard: {name}</title><style>{CSS}</style></head><body>\n<h1>Drill scorecard: {name}</h1>\n<p class=\"muted\">{desc}</p>\n<p id=\"verdict\" class=\"verdict {cls}\">{verdict}</p>\n<p class=\"muted\">scenario <code>{scenario}</code> · playbook <code>{pb}</code> · incident <code>{inc}</code> · account {acct} · started {start}</p>\n",
        name = escape(&s.drill),
        desc = escape(s.description.trim()),
        verdict = escape(&verdict(s)),
        scenario = escape(&s.scenario),
        pb = escape(&s.playbook),
        inc = escape(&s.incident),
        acct = escape(&s.account),
        start = escape(&s.started_at),
    );
    let points: Vec<Point<'_>> = s
        .timeline
        .iter()
        .map(|m| Point {
            at_ms: m.at_ms,
            lane: m.lane,
            label: &m.label,
        })
        .collect();
    let _ = write!(o, "<h2>Timeline</h2>\n{}", svg(&points, &LANES));
    let _ = writeln!(o, "<ol class=\"key\">");
    for m in &s.timeline {
        let _ = writeln!(
            o,
            "<li>+{} <b>{}</b> {}</li>",
            seconds(m.at_ms),
            escape(m.lane),
            escape(&m.label)
        );
    }
    let _ = writeln!(o, "</ol>");
    let missed: Vec<_> = s.checks.iter().filter(|c| !c.passed).collect();
    if !missed.is_empty() {
        let _ = writeln!(o, "<h2>What was missed</h2><ul id=\"missed\">");
        for c in missed {
            let _ = writeln!(
                o,
                "<li><b>{}</b>{}: {}<br><span class=\"muted\">read: {}</span></li>",
                escape(&c.check),
                c.subject
                    .as_ref()
                    .map(|x| format!(" ({})", escape(x)))
                    .unwrap_or_default(),
                escape(c.missed.as_deref().unwrap_or("")),
                escape(&c.observed)
            );
        }
        let _ = writeln!(o, "</ul>");
    }
    let _ = writeln!(o, "<h2>Timings</h2><table id=\"timings\"><tr><th>timing</th><th>from → to</th><th>actual</th><th>target</th><th></th></tr>");
    for t in &s.timings {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            t.name,
            escape(t.span),
            t.actual_ms.map_or("not reached".into(), seconds),
            seconds(t.target_ms),
            if t.passed { "pass" } else { "fail" },
            if t.passed { "ok" } else { "over" }
        );
    }
    let _ = writeln!(o, "</table><h2>Checks</h2><table id=\"checks\"><tr><th>phase</th><th>check</th><th>subject</th><th>result</th><th>read</th></tr>");
    for c in &s.checks {
        let _ = writeln!(
            o,
            "<tr class=\"check\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            c.phase,
            escape(&c.check),
            escape(c.subject.as_deref().unwrap_or("-")),
            if c.passed { "pass" } else { "fail" },
            if c.passed { "pass" } else { "FAIL" },
            escape(&c.observed)
        );
    }
    let _ = writeln!(o, "</table><h2>Attack</h2><table id=\"attack\"><tr><th>#</th><th>technique</th><th>source</th></tr>");
    for (i, a) in s.attack.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td><code>{}</code> {}</td><td><a href=\"{}\">{}</a></td></tr>",
            i + 1,
            escape(a.technique),
            escape(a.title),
            escape(a.url),
            escape(a.source)
        );
    }
    let _ = writeln!(o, "</table></body></html>");
    o
}
