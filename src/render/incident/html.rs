//! The incident report as one self-contained HTML page (inline CSS and
//! SVG, no script, no external URL): status and what is left to do for a
//! manager, then the exact record for an auditor: the timeline drawn on
//! one axis, every change with before → after, findings, evidence with
//! S3 keys and SHA-256, secrets rotated (names only), decisions pending.

use std::fmt::Write;

use super::IncidentView;
use crate::render::text::status_words;
use crate::render::timeline::{escape, svg, Point, CSS};
use crate::report::{brief, IncidentReport};
use crate::state::AuditEvent;

pub struct Html;

const LANES: [&str; 6] = ["trigger", "change", "check", "evidence", "recover", "other"];

fn lane(event: AuditEvent, recovering: bool, step: Option<&str>, what: &str) -> &'static str {
    match event {
        AuditEvent::Triggered => "trigger",
        AuditEvent::Applied | AuditEvent::Confirmed if recovering => "recover",
        AuditEvent::Applied | AuditEvent::Confirmed
            if what.contains("evidence:")
                || step.is_some_and(|s| s.starts_with("preserve") || s.starts_with("collect")) =>
        {
            "evidence"
        }
        AuditEvent::Applied | AuditEvent::Confirmed => "change",
        AuditEvent::Verification => "check",
        _ => "other",
    }
}

impl IncidentView for Html {
    fn render(&self, r: &IncidentReport) -> String {
        let mut o = String::new();
        let status = r
            .status
            .map(status_words)
            .unwrap_or("no containing run recorded");
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Incident report: {id}</title><style>{CSS}</style></head><body>\n<h1>Incident report: {id}</h1>\n<p id=\"status\" class=\"verdict {cls}\">{status}</p>\n<p class=\"muted\">accounts {acc} · regions {reg} · first activity {first} · last activity {last} · generated {gen}</p>\n<p id=\"integrity\" class=\"{icls}\">audit trail <code>{trail}</code>: {records} record(s), {chain}</p>\n",
            id = escape(&r.incident),
            cls = if r.open_items.is_empty() { "pass" } else { "fail" },
            status = escape(status),
            acc = escape(&r.accounts.join(", ")),
            reg = escape(&r.regions.join(", ")),
            first = escape(r.first_activity.as_deref().unwrap_or("-")),
            last = escape(r.last_activity.as_deref().unwrap_or("-")),
            gen = escape(&r.generated_at),
            icls = if r.integrity.intact { "pass" } else { "fail" },
            trail = escape(&r.integrity.trail),
            records = r.integrity.records,
            chain = if r.integrity.intact {
                "hash chain intact".to_string()
            } else {
                format!("BROKEN at line {}: {}", r.integrity.broken_line.unwrap_or(0), escape(r.integrity.problem.as_deref().unwrap_or("")))
            },
        );

        let _ = writeln!(o, "<h2>What is left to do</h2>");
        if r.open_items.is_empty() {
            let _ = writeln!(o, "<p>Nothing.</p>");
        } else {
            let _ = writeln!(o, "<ul id=\"to-do\">");
            for i in &r.open_items {
                let _ = writeln!(
                    o,
                    "<li>{}<br><span class=\"muted\">{}</span></li>",
                    escape(&i.what),
                    escape(&i.how)
                );
            }
            let _ = writeln!(o, "</ul>");
        }
        let _ = writeln!(o, "<h2>Decisions pending</h2>");
        if r.decisions_pending.is_empty() {
            let _ = writeln!(o, "<p>None.</p>");
        } else {
            let _ = writeln!(o, "<ul id=\"decisions\">");
            for d in &r.decisions_pending {
                let _ = writeln!(
                    o,
                    "<li>step <code>{}</code> {}: <code>{}</code></li>",
                    escape(&d.step),
                    escape(d.target.as_deref().unwrap_or("")),
                    escape(&serde_json::to_string(&d.decision).unwrap_or_default())
                );
            }
            let _ = writeln!(o, "</ul>");
        }

        // The timeline on one axis, from the first record.
        let start = r
            .timeline
            .first()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(&e.time).ok());
        let recover_runs = r.recover_runs();
        let marks: Vec<(u64, &'static str, &str)> = r
            .timeline
            .iter()
            .filter(|e| !matches!(e.event, AuditEvent::RunStarted | AuditEvent::RunFinished))
            .filter_map(|e| {
                let t = chrono::DateTime::parse_from_rfc3339(&e.time).ok()?;
                let at = u64::try_from((t - start?).num_milliseconds()).ok()?;
                let lane = lane(
                    e.event,
                    recover_runs.contains(&e.run.as_str()),
                    e.step.as_deref(),
                    &e.what,
                );
                Some((at, lane, e.what.as_str()))
            })
            .collect();
        let points: Vec<Point<'_>> = marks
            .iter()
            .map(|(at, lane, label)| Point {
                at_ms: *at,
                lane,
                label,
            })
            .collect();
        let _ = write!(o, "<h2>Timeline</h2>\n{}", svg(&points, &LANES));
        let _ = writeln!(o, "<table id=\"timeline-table\"><tr><th>time</th><th>event</th><th>step</th><th>what</th></tr>");
        for e in &r.timeline {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.time),
                e.event.as_str(),
                escape(e.step.as_deref().unwrap_or("")),
                escape(&e.what)
            );
        }
        let _ = writeln!(o, "</table>");

        let _ = writeln!(o, "<h2>Changes</h2><table id=\"changes\"><tr><th>time</th><th>step</th><th>target</th><th>attribute</th><th>before → after</th><th>status</th></tr>");
        for c in &r.changes {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td></tr>",
                escape(&c.time),
                escape(&c.step),
                escape(&c.target),
                escape(&c.attribute),
                escape(&brief(&c.before)),
                escape(&brief(&c.after)),
                escape(
                    &serde_json::to_value(c.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                )
            );
        }
        let _ = writeln!(o, "</table>");

        let _ = writeln!(o, "<h2>Secrets rotated (names only)</h2>");
        if r.secrets_rotated.is_empty() {
            let _ = writeln!(o, "<p>None.</p>");
        } else {
            let _ = writeln!(o, "<ul id=\"rotated\">");
            for s in &r.secrets_rotated {
                let _ = writeln!(
                    o,
                    "<li>{} <code>{}</code> ({})</li>",
                    s.kind,
                    escape(&s.resource),
                    escape(&s.time)
                );
            }
            let _ = writeln!(o, "</ul>");
        }
        if !r.indicators.is_empty() {
            let _ = writeln!(o, "<h2>Indicators of compromise</h2><table id=\"indicators\"><tr><th>function</th><th></th><th>kind</th><th>subject</th><th>what</th><th>why</th><th>who, when</th><th>source</th></tr>");
            for f in &r.indicators {
                for i in &f.indicators {
                    let who = [i.actor.as_deref(), i.when.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" at ");
                    let source = serde_json::to_value(i.source)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let _ = writeln!(
                        o,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(&f.function),
                        if i.suspicious { "<b>SUSPICIOUS</b>" } else { "expected" },
                        escape(&i.kind),
                        escape(&i.subject),
                        escape(&i.detail),
                        if i.active { "" } else { " (no longer in effect)" },
                        escape(&i.why),
                        escape(&who),
                        escape(&source)
                    );
                }
            }
            let _ = writeln!(o, "</table>");
        }
        let _ = writeln!(o, "<h2>Findings</h2>");
        for f in &r.findings {
            let names = |xs: &[crate::report::Found]| {
                xs.iter()
                    .map(|x| escape(&x.resource))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                o,
                "<p><b>{}</b> (observed {}): secrets {}; parameters {}; plaintext variables {}</p>",
                escape(&f.function),
                escape(&f.observed_at),
                names(&f.secrets),
                names(&f.parameters),
                f.plaintext_variables
                    .iter()
                    .map(|v| escape(&v.variable))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(o, "<h2>Evidence</h2><table id=\"evidence\"><tr><th>function</th><th>artifact</th><th>S3 key</th><th>SHA-256</th><th>bytes</th></tr>");
        for a in &r.evidence.artifacts {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td><code>s3://{}/{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&a.function),
                escape(&a.name),
                escape(&a.bucket),
                escape(&a.key),
                escape(&a.sha256),
                a.size
            );
        }
        for m in &r.evidence.manifests {
            let _ = writeln!(o, "<tr><td>{}</td><td>manifest</td><td><code>s3://{}/{}</code></td><td><code>{}</code></td><td>{}</td></tr>", escape(&m.function), escape(&m.bucket), escape(&m.key), escape(&m.sha256), m.size);
        }
        let _ = writeln!(o, "</table><h2>Runs</h2><table id=\"runs\"><tr><th>run</th><th>command</th><th>started</th><th>finished</th><th>caller</th></tr>");
        for run in &r.runs {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&run.run),
                escape(&run.command),
                escape(&run.started_at),
                escape(run.finished_at.as_deref().unwrap_or("not recorded")),
                escape(run.caller.as_deref().unwrap_or(""))
            );
        }
        let _ = writeln!(o, "</table></body></html>");
        o
    }
}
