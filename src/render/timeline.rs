//! One time axis drawn as inline SVG (no script, no external reference):
//! a lane per kind of moment, a dot per moment with its label as a
//! tooltip (`<title>`) and a numbered key below. Shared by the drill
//! scorecard and the incident report's HTML.

/// One moment: ms from the start of the axis, its lane, a label.
pub struct Point<'a> {
    pub at_ms: u64,
    pub lane: &'a str,
    pub label: &'a str,
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1.234 s`, `2 min 03 s`.
pub fn seconds(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// The SVG (id `timeline`), each dot a `circle.mark` with `data-lane`.
pub fn svg(points: &[Point<'_>], lanes: &[&str]) -> String {
    let (left, width, lane_h, top) = (110.0, 860.0, 40.0, 30.0);
    let end = points.iter().map(|p| p.at_ms).max().unwrap_or(0).max(1000);
    let height = top + lane_h * lanes.len() as f64 + 40.0;
    let x = |ms: u64| left + (ms as f64 / end as f64) * (width - left - 20.0);
    let mut s = format!(
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\" aria-label=\"incident timeline\">\n"
    );
    for (i, lane) in lanes.iter().enumerate() {
        let y = top + lane_h * i as f64 + lane_h / 2.0;
        s += &format!(
            "<g class=\"lane\" data-lane=\"{l}\"><text x=\"8\" y=\"{ty}\" class=\"lane-label\">{l}</text><line x1=\"{left}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" class=\"lane-line\"/></g>\n",
            l = escape(lane),
            ty = y + 4.0,
            x2 = width - 20.0
        );
    }
    // The axis: five ticks.
    let axis_y = top + lane_h * lanes.len() as f64 + 10.0;
    s += &format!(
        "<line x1=\"{left}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" class=\"axis\"/>\n",
        width - 20.0
    );
    for k in 0..=4u64 {
        let ms = end * k / 4;
        s += &format!(
            "<text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>\n",
            x(ms),
            axis_y + 16.0,
            seconds(ms)
        );
    }
    for (n, p) in points.iter().enumerate() {
        let i = lanes.iter().position(|l| *l == p.lane).unwrap_or(0);
        let y = top + lane_h * i as f64 + lane_h / 2.0;
        s += &format!(
            "<g class=\"mark\" data-lane=\"{lane}\"><circle class=\"mark {lane}\" cx=\"{cx:.1}\" cy=\"{y}\" r=\"6\"><title>{n1}. {t} · {label}</title></circle><text x=\"{cx:.1}\" y=\"{ty}\" class=\"num\" text-anchor=\"middle\">{n1}</text></g>\n",
            lane = escape(p.lane),
            cx = x(p.at_ms),
            n1 = n + 1,
            t = seconds(p.at_ms),
            label = escape(p.label),
            ty = y - 10.0
        );
    }
    s += "</svg>\n";
    s
}

/// The stylesheet both pages share (inline; no external resource).
pub const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1000px;color:#1d2433;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #dde;padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f4f6fa}
.pass{color:#176c2f;font-weight:600}.fail{color:#b3261e;font-weight:600}.muted{color:#667}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;font-weight:700}.verdict.pass{background:#e3f4e8}.verdict.fail{background:#fbe4e2}
code{font-size:.85em;background:#f4f6fa;padding:0 .2em}
svg .lane-line{stroke:#ccd;stroke-width:1}svg .axis{stroke:#889}svg .tick,svg .lane-label{font-size:12px;fill:#445}svg .num{font-size:9px;fill:#445}
svg circle.mark{stroke:#fff;stroke-width:1.5}svg .attack{fill:#b3261e}svg .alarm{fill:#c77700}svg .contain{fill:#1b5fbf}svg .evidence{fill:#6b3fa0}svg .recover{fill:#176c2f}svg .trigger{fill:#c77700}svg .change{fill:#1b5fbf}svg .check{fill:#0b7285}svg .other{fill:#889}
ol.key{font-size:.85rem;columns:2}ol.key li{overflow-wrap:anywhere}td{overflow-wrap:anywhere}";
