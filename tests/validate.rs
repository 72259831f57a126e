//! `firebreak validate` end to end: every broken playbook in
//! tests/playbooks/invalid/ is reported at the right `file:line:col` with a
//! message pinned by an insta snapshot; the shipped playbooks are valid; the
//! JSON output has the documented shape; and hostile inputs (alias bomb,
//! oversized file, deep nesting) are refused quickly with a clear message.
//!
//! Add a case by dropping `NN-short-name.yaml` into tests/playbooks/invalid/
//! and running `INSTA_UPDATE=always cargo test --test validate`, then read
//! the new snapshot in tests/snapshots/.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const INVALID_DIR: &str = "tests/playbooks/invalid";

/// Runs the built binary from the crate root, so that paths in messages are
/// relative (`tests/playbooks/...`) and snapshots are the same everywhere.
/// NO_COLOR keeps escape codes out of stderr even if it were a terminal.
fn firebreak<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(args)
        .current_dir(crate_root())
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("FIREBREAK_STATE_DIR")
        .output()
        .expect("run the firebreak binary")
}

/// The crate's directory at run time (see tests/integration/common.rs: a
/// compile-time path goes stale when a shared target directory is reused).
fn crate_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Files in a directory of the crate (relative path), sorted by name.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let abs = crate_root().join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&abs)
        .unwrap_or_else(|e| panic!("read {}: {e}", abs.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension() == Some(OsStr::new("yaml")))
        .map(|p| Path::new(dir).join(p.file_name().expect("file name")))
        .collect();
    files.sort();
    files
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

#[test]
fn every_invalid_playbook_is_reported_at_its_position() {
    let files = yaml_files(INVALID_DIR);
    assert!(
        files.len() >= 18,
        "expected at least 18 invalid playbooks in {INVALID_DIR}, found {}",
        files.len()
    );

    for file in files {
        let name = file
            .file_stem()
            .and_then(OsStr::to_str)
            .expect("UTF-8 name");
        let out = firebreak([OsStr::new("validate"), file.as_os_str()]);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{}:\n{stderr}", file.display());

        // Every problem starts with `file:line:col:`; the snapshot pins the
        // numbers, this checks the shape in case a snapshot is accepted blindly.
        let prefix = format!("{}:", file.display());
        let located = stderr.lines().any(|l| {
            l.split_once(&prefix).is_some_and(|(_, rest)| {
                let mut parts = rest.splitn(3, ':');
                let line = parts.next().unwrap_or("");
                let col = parts.next().unwrap_or("");
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                digits(line) && digits(col) && parts.next().is_some()
            })
        });
        assert!(located, "no `{prefix}LINE:COL:` in stderr:\n{stderr}");

        insta::assert_snapshot!(name, stderr);
    }
}

#[test]
fn shipped_drills_and_their_playbooks_are_valid() {
    let mut files = yaml_files("drills");
    files.extend(yaml_files("drills/playbooks"));
    assert!(
        files.len() >= 6,
        "five drills and the gap playbook: {files:?}"
    );
    let mut args = vec![PathBuf::from("validate")];
    args.extend(files.iter().cloned());
    let out = firebreak(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        stderr_of(&out)
    );
    assert_eq!(
        stdout.matches("(drill ").count(),
        files.len() - 1,
        "{stdout}"
    );
}

#[test]
fn shipped_playbooks_are_valid() {
    let files = yaml_files("playbooks");
    assert!(!files.is_empty(), "no playbooks in playbooks/");
    let mut args = vec![PathBuf::from("validate")];
    args.extend(files.iter().cloned());
    let out = firebreak(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        stderr_of(&out)
    );
    for f in &files {
        assert!(
            stdout.contains(&format!("ok: {}", f.display())),
            "{} not reported ok:\n{stdout}",
            f.display()
        );
    }
}

#[test]
fn json_output_lists_problems_with_positions() {
    let file = format!("{INVALID_DIR}/08-negative-concurrency.yaml");
    let out = firebreak(["--output", "json", "validate", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");

    let problem = &v["files"][0]["problems"][0];
    assert_eq!(problem["file"], file.as_str(), "{v:#}");
    assert_eq!(problem["line"], 12, "{v:#}");
    assert_eq!(problem["column"], 16, "{v:#}");
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("at least 0")),
        "{v:#}"
    );
    assert!(
        problem["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "{v:#}"
    );
    assert_eq!(v["files"][0]["valid"], false, "{v:#}");
    assert_eq!(v["summary"]["changes"], 0, "{v:#}");
}

/// The start of a valid playbook whose last step ends in `when:`; resource
/// tests put their hostile value there, where serde reads any YAML value.
const PREFIX: &str = "apiVersion: firebreak/v1
kind: Playbook
name: hostile
phases:
  identify:
    - id: facts
      action: lambda.describe
      with: {function: demo}
";

/// Writes `text` to a temp file, validates it and returns (exit code,
/// lowercased stderr); prints how long it took (informational only).
fn validate_generated(what: &str, text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(format!("{what}.yaml"));
    std::fs::write(&path, text).expect("write playbook");
    let start = Instant::now();
    let out = firebreak([OsStr::new("validate"), path.as_os_str()]);
    eprintln!("{what}: validate took {:?}", start.elapsed());
    let stderr = stderr_of(&out);
    eprintln!("{stderr}");
    (out.status.code(), stderr.to_lowercase())
}

#[test]
fn alias_bomb_is_refused() {
    // "Billion laughs": 9 levels of 9 aliases each would expand to 9^9
    // (~387 million) strings; the node budget must stop it early.
    let mut text = format!("{PREFIX}      when:\n        - &l0 \"lol\"\n");
    for level in 1..=9 {
        let refs = vec![format!("*l{}", level - 1); 9].join(", ");
        writeln!(text, "        - &l{level} [{refs}]").expect("write to string");
    }
    let (code, stderr) = validate_generated("alias-bomb", &text);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("budget") || stderr.contains("alias"),
        "{stderr}"
    );
}

#[test]
fn file_over_one_mib_is_refused() {
    // A valid playbook padded with comments to just over 1 MiB: the size
    // limit applies before parsing, whatever the content.
    let mut text = PREFIX.to_string();
    while text.len() <= 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    let (code, stderr) = validate_generated("too-large", &text);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("1 mib"), "{stderr}");
}

#[test]
fn nesting_deeper_than_64_levels_is_refused() {
    let depth = 100;
    let text = format!(
        "{PREFIX}      when: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let (code, stderr) = validate_generated("too-deep", &text);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("deep") || stderr.contains("depth"),
        "{stderr}"
    );
}
