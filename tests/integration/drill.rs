//! `firebreak drill run`: every shipped scenario against LocalStack, side
//! by side (each in its own account); the deliberate-gap scenario reports
//! exactly its gap; a drill run twice in a row passes both times; the
//! scorecards are pinned by snapshots (times and ids filtered); the HTML
//! scorecard and incident report load in headless Chromium and show the
//! timeline; a drill refuses any endpoint that is not local.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{crate_root, Run, TestContext};

const SCENARIOS: [&str; 5] = [
    "compromised-function",
    "stolen-secret",
    "cost-abuse",
    "persistence-layer-code",
    "shared-role-blast-radius",
];

fn scenario(name: &str) -> PathBuf {
    crate_root().join("drills").join(format!("{name}.yaml"))
}

/// `drill run` with JSON output; the scorecard's files land in `out`.
fn drill(cx: &TestContext, name: &str, out: &str) -> std::process::Child {
    cx.firebreak()
        .args(["--output", "json", "drill", "run"])
        .arg(scenario(name))
        .args(["--out", out])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn drill")
}

fn finish(child: std::process::Child) -> (Run, Value) {
    let run = Run::from(child.wait_with_output().expect("drill output"));
    let card = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "not a scorecard ({e})\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        )
    });
    (run, card)
}

fn failures(card: &Value) -> Vec<(String, String)> {
    card["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["passed"] == false)
        .map(|c| {
            (
                c["check"].as_str().unwrap_or("").to_string(),
                c["missed"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn snapshot(name: &str, suffix: &str, md: &str) {
    // The run's own suffix, exactly: a pattern for "six letters after a
    // dash" also ate `-orders` and `-worker`.
    let md = &md.replace(suffix, "[SFX]");
    let mut settings = insta::Settings::clone_current();
    for (re, with) in [
        // The scenario file, wherever the checkout is.
        (r"`[^`\n]*drills/([a-z-]+\.yaml)`", "`drills/$1`"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "[UUID]",
        ),
        (r"\b[AL]KIA[A-Z0-9]{16}\b", "[KEY-ID]"),
        (r"\b[0-9a-f]{16,64}\b", "[HEX]"),
        (r"\b\d{12}\b", "[ACCOUNT]"),
        (r"\d+\.\d s|\d+ min \d\d s", "[DURATION]"),
        (r"audit\.\d+\.jsonl", "audit.[N].jsonl"),
        (r"\d+ object\(s\)", "[N] object(s)"),
        (r"\d+ record\(s\)", "[N] record(s)"),
        (
            r"\d+ manifest\(s\), \d+ artifact\(s\)",
            "[N] manifest(s), [N] artifact(s)",
        ),
        (r"part-\d+\.jsonl\.gz", "part-[N].jsonl.gz"),
        (
            r"/\d{8}T\d{6}(?:\.\d{3})?Z_\d{8}T\d{6}(?:\.\d{3})?Z/",
            "/[WINDOW]/",
        ),
    ] {
        settings.add_filter(re, with);
    }
    let text = md.split("\n## Timeline").next().unwrap_or(md).to_string();
    settings.bind(|| insta::assert_snapshot!(format!("drill_{name}"), text));
}

#[tokio::test]
async fn every_shipped_scenario_runs_side_by_side_and_only_the_gap_fails() {
    let cx = TestContext::new().await;
    let out = cx.path("drills");
    let out = out.to_str().expect("utf8");
    // All five at once, plus a second copy of the flagship at the same
    // time: each run has its own account and suffix, so none sees another.
    let mut children: Vec<(&str, std::process::Child)> =
        SCENARIOS.iter().map(|s| (*s, drill(&cx, s, out))).collect();
    children.push((
        "compromised-function#2",
        drill(&cx, "compromised-function", out),
    ));
    let mut cards = std::collections::BTreeMap::new();
    for (name, child) in children {
        let (run, card) = finish(child);
        let fails = failures(&card);
        if name == "cost-abuse" {
            run.expect_code(7);
            assert_eq!(fails.len(), 1, "exactly the deliberate gap: {fails:?}");
            assert_eq!(fails[0].0, "artifacts_contained");
            assert_eq!(
                fails[0].1,
                "the playbook `cost-guard` has no step that disables event source mappings (action `lambda.disable_event_sources`)"
            );
            assert_eq!(card["summary"]["timings_over_target"], 0, "{card:#}");
        } else {
            assert!(fails.is_empty(), "{name}: {fails:?}\n{}", run.stderr);
            run.expect_code(0);
        }
        assert_eq!(card["cleaned_up"], true, "{name} left resources behind");
        cards.insert(name.to_string(), card);
    }
    let (a, b) = (
        &cards["compromised-function"],
        &cards["compromised-function#2"],
    );
    assert_ne!(a["account"], b["account"], "two runs, two accounts");
    assert_ne!(a["incident"], b["incident"]);
    for name in SCENARIOS {
        let card = &cards[name];
        let suffix = card["suffix"].as_str().expect("suffix");
        let dir = Path::new(out).join(format!("{name}-{suffix}"));
        let md = std::fs::read_to_string(dir.join("scorecard.md")).expect("scorecard.md");
        assert!(
            !md.contains("\"SecretString\""),
            "no secret value in a scorecard"
        );
        snapshot(name, suffix, &md);
    }
}

fn chromium() -> PathBuf {
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        if let Ok(out) = Command::new("which").arg(name).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("Chromium is not installed: the HTML scorecard and report are checked in a real headless browser; run the tests with scripts/test.sh (which installs it: apt-get install -y chromium)");
}

/// The DOM Chromium built from `file` (it loaded and parsed the page), and
/// a screenshot of it.
fn render_in_chromium(file: &Path, shot: &Path) -> String {
    let url = format!("file://{}", file.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
    ];
    let dom = Command::new(chromium())
        .args(common)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium --dump-dom");
    assert!(
        dom.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let shot_arg = format!("--screenshot={}", shot.display());
    let s = Command::new(chromium())
        .args(common)
        .args([shot_arg.as_str(), "--window-size=1100,1400"])
        .arg(&url)
        .output()
        .expect("chromium --screenshot");
    assert!(
        s.status.success(),
        "screenshot failed: {}",
        String::from_utf8_lossy(&s.stderr)
    );
    let png = std::fs::read(shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[tokio::test]
async fn a_drill_passes_twice_in_a_row_and_its_pages_render_in_chromium() {
    let cx = TestContext::new().await;
    let out = cx.path("drills");
    let out = out.to_str().expect("utf8");
    let mut last = Value::Null;
    for round in 0..2 {
        let (run, card) = finish(drill(&cx, "compromised-function", out));
        let fails = failures(&card);
        assert!(fails.is_empty(), "round {round}: {fails:?}");
        run.expect_code(0);
        last = card;
    }
    let dir = Path::new(out).join(format!(
        "compromised-function-{}",
        last["suffix"].as_str().expect("suffix")
    ));
    let html = dir.join("scorecard.html");
    let text = std::fs::read_to_string(&html).expect("scorecard.html");
    assert!(
        !text.contains("<script") && !text.contains("src=\"http") && !text.contains("<link"),
        "self-contained"
    );
    let dom = render_in_chromium(&html, &cx.path("scorecard.png"));
    assert!(
        dom.contains("<svg id=\"timeline\""),
        "the timeline is drawn"
    );
    for lane in ["attack", "alarm", "contain", "evidence", "recover"] {
        assert!(
            dom.contains(&format!("<g class=\"mark\" data-lane=\"{lane}\">")),
            "a {lane} moment on the timeline"
        );
    }
    assert!(
        dom.contains("id=\"verdict\" class=\"verdict pass\""),
        "verdict shown"
    );
    assert!(dom.trim_end().ends_with("</html>"), "the whole page loaded");

    // The incident's own report, from its audit trail, in HTML.
    let incident = last["incident"].as_str().expect("incident");
    let report = cx.run(&["report", "--incident", incident, "--format", "html"]);
    report.expect_code(0);
    let page = cx.path("report.html");
    std::fs::write(&page, &report.stdout).expect("write report");
    let dom = render_in_chromium(&page, &cx.path("report.png"));
    for id in ["timeline", "changes", "evidence", "rotated"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "report section {id}");
    }
    assert!(
        dom.contains("class=\"mark"),
        "moments on the report's timeline"
    );
    assert!(
        dom.contains("firebreak-quarantine"),
        "the containment changes are listed"
    );
}

#[tokio::test]
async fn a_drill_refuses_an_endpoint_that_is_not_local() {
    let cx = TestContext::new().await;
    for endpoint in [
        "https://lambda.us-east-1.amazonaws.com",
        "http://10.1.2.3:4566",
    ] {
        let r = Run::from(
            cx.firebreak()
                .env("AWS_ENDPOINT_URL", endpoint)
                .args(["drill", "run"])
                .arg(scenario("compromised-function"))
                .output()
                .expect("run"),
        );
        r.expect_code(3);
        assert!(
            r.stderr.contains("drills run only against LocalStack"),
            "{}",
            r.stderr
        );
    }
    let r = Run::from(
        cx.firebreak()
            .env_remove("AWS_ENDPOINT_URL")
            .args(["drill", "run"])
            .arg(scenario("cost-abuse"))
            .output()
            .expect("run"),
    );
    r.expect_code(3);
    assert!(r.stderr.contains("no endpoint is set"), "{}", r.stderr);
}

#[tokio::test]
async fn drill_list_names_every_shipped_scenario() {
    let cx = TestContext::new().await;
    let dir = crate_root().join("drills");
    let r = cx.run(&["drill", "list", "--dir", dir.to_str().expect("utf8")]);
    r.expect_code(0);
    for s in SCENARIOS {
        assert!(
            r.stdout.lines().any(|l| l.starts_with(s)),
            "{s} listed:\n{}",
            r.stdout
        );
    }
    assert_eq!(r.stdout.lines().count(), SCENARIOS.len());
}

/// A drift recovery cannot undo fails `recovered_to_baseline` with what
/// differs and why: the attacker's wrapper variable on a function with no
/// published version (no version holds the baseline's values to restore)
/// is held for a human, so containment stays. The rogue-function checks,
/// which the shipped playbook satisfies, pass, and recovery still removed
/// the rogue function.
#[tokio::test]
async fn a_drift_left_after_recovery_fails_recovered_to_baseline_with_its_reason() {
    let cx = TestContext::new().await;
    let playbook = crate_root().join("playbooks/lambda-compromise.yaml");
    let file = cx.path("rogue.yaml");
    std::fs::write(
        &file,
        format!(
            r#"apiVersion: firebreak/v1
kind: Drill
name: rogue-on-shared-role
description: A rogue function on a shared role and a wrapper on a function without versions.
setup:
  roles: [{{name: shared-role}}]
  functions: [{{name: api, role: shared-role, env: {{STAGE: prod}}}}]
  alarm: {{function: api}}
attack:
  - technique: rogue_function
    role: shared-role
    name: sync
  - technique: exec_wrapper
    function: api
  - technique: set_alarm
respond:
  playbook: {playbook}
  function: api
  params: {{scope: role, collect_logs: false}}
expect:
  contained:
    - check: function_throttled
      function: api
    - check: artifacts_contained
    - check: rogue_functions_throttled
    - check: rogue_rules_disabled
  recovered:
    - check: recovered_to_baseline
      function: api
"#,
            playbook = playbook.display()
        ),
    )
    .expect("scenario");
    let out = cx.path("out");
    let r = Run::from(
        cx.firebreak()
            .args(["--output", "json", "drill", "run"])
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("drill"),
    );
    r.expect_code(7);
    let card: Value = serde_json::from_str(&r.stdout).expect("scorecard");
    let fails = failures(&card);
    let names: Vec<&str> = fails.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["recovered_to_baseline"], "{fails:?}");
    let check = card["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["check"] == "recovered_to_baseline")
        .expect("the check");
    let observed = check["observed"].as_str().expect("observed");
    // What differs, item by item, read back from AWS: the wrapper, and
    // firebreak's own quarantine, which stays while drift remains.
    assert!(
        observed.contains(":environment.AWS_LAMBDA_EXEC_WRAPPER (baseline: absent; now: "),
        "{observed}"
    );
    assert!(
        observed.contains(":firebreak-quarantine (baseline: absent"),
        "{observed}"
    );
    assert!(
        !observed.contains("role_function:"),
        "the rogue function was removed: {observed}"
    );
    // Why: what recovery held, and what that leaves in place.
    let why = fails[0].1.as_str();
    assert!(
        why.contains("`recover --to-baseline` held: no published version holds the baseline's environment values"),
        "{why}"
    );
    assert!(why.contains("containment kept"), "{why}");
    assert_eq!(card["cleaned_up"], true, "the drill left resources behind");
}
