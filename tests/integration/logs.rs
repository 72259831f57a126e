//! `logs.snapshot` against LocalStack (CloudWatch Logs with paging, S3 with
//! checksums and conditional writes), and with recorded responses for what
//! LocalStack cannot do (a page failing mid-stream, throttling).

use std::io::Read;

use aws_config::BehaviorVersion;
use aws_sdk_cloudwatchlogs::error::ErrorMetadata;
use aws_sdk_cloudwatchlogs::operation::filter_log_events::{
    FilterLogEventsError, FilterLogEventsOutput,
};
use aws_sdk_cloudwatchlogs::types::{FilteredLogEvent, InputLogEvent};
use aws_sdk_lambda::config::{Credentials, Region};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use firebreak::action::logs::stream::{self, Request, StreamError};
use firebreak::action::logs::window::Window;
use firebreak::aws::{Aws, AwsErrorKind, AwsSettings};
use firebreak::evidence::store::ForensicStore;
use firebreak::evidence::verify::MANIFEST_EVENT;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{TestContext, REGION};

async fn aws_for(cx: &TestContext) -> Aws {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&cx.endpoint)
        .credentials_provider(Credentials::new(&cx.account, "test", None, None, "tests"))
        .load()
        .await;
    Aws::from_sdk_config(&sdk, REGION.into(), &AwsSettings::default())
}

async fn bucket(aws: &Aws, name: &str) {
    aws.s3
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("create bucket");
}

/// A message that compresses poorly (hex of a hash), so a few tens of
/// thousands of events fill several 1 MiB parts.
fn message(i: usize) -> String {
    let noise = hex::encode(Sha256::digest(i.to_le_bytes()));
    let level = if i.is_multiple_of(10) {
        "ERROR"
    } else {
        "INFO"
    };
    format!("{level} request {i} {noise}{noise}")
}

/// Seeds `n` events, one millisecond apart, ending a minute ago.
async fn seed(aws: &Aws, group: &str, n: usize) {
    aws.logs
        .create_log_group()
        .log_group_name(group)
        .send()
        .await
        .expect("create log group");
    aws.logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name("2026/11/23/[$LATEST]seed")
        .send()
        .await
        .expect("create stream");
    let base = chrono::Utc::now().timestamp_millis() - 60_000 - n as i64;
    let all: Vec<usize> = (0..n).collect();
    for batch in all.chunks(5_000) {
        let events: Vec<InputLogEvent> = batch
            .iter()
            .map(|&i| {
                InputLogEvent::builder()
                    .timestamp(base + i as i64)
                    .message(message(i))
                    .build()
                    .expect("event")
            })
            .collect();
        aws.logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name("2026/11/23/[$LATEST]seed")
            .set_log_events(Some(events))
            .send()
            .await
            .expect("put events");
    }
}

async fn keys(aws: &Aws, bucket: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pages = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("list");
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    out.sort();
    out
}

async fn object(aws: &Aws, bucket: &str, key: &str) -> Vec<u8> {
    aws.s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

fn gunzip_lines(bytes: &[u8]) -> Vec<Value> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("gzip");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

const PLAYBOOK: &str = r#"apiVersion: firebreak/v1
kind: Playbook
name: logs
description: Preserve the function's logs.
params:
  function: {type: string, required: true}
  forensic_bucket: {type: string, required: true}
  filter: {type: string, default: ""}
phases:
  identify:
    - id: logs
      action: logs.snapshot
      with:
        function: "${params.function}"
        bucket: "${params.forensic_bucket}"
        part_size_mib: 1
        requests_per_second: 25
"#;

const EVENTS: usize = 30_000;

struct Setup {
    cx: TestContext,
    aws: Aws,
    bucket: String,
    function: String,
}

async fn setup(events: usize) -> Setup {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx).await;
    let function = cx.unique("logsnap");
    seed(&aws, &format!("/aws/lambda/{function}"), events).await;
    let bucket_name = format!("fb-logs-{}", cx.account);
    bucket(&aws, &bucket_name).await;
    std::fs::write(cx.path("pb.yaml"), PLAYBOOK).expect("write playbook");
    Setup {
        cx,
        aws,
        bucket: bucket_name,
        function,
    }
}

impl Setup {
    fn args<'a>(&'a self, head: &[&'a str], incident: &'a str) -> Vec<String> {
        let mut v: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        v.extend(
            [
                "pb.yaml",
                "--incident",
                incident,
                "-p",
                &format!("function={}", self.function),
                "-p",
                &format!("forensic_bucket={}", self.bucket),
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        v
    }

    fn run(&self, head: &[&str], incident: &str) -> crate::common::Run {
        let args = self.args(head, incident);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cx.run(&refs)
    }

    fn verify(&self, incident: &str) -> crate::common::Run {
        self.cx.run(&[
            "evidence",
            "verify",
            "--incident",
            incident,
            "--bucket",
            &self.bucket,
        ])
    }

    async fn manifest(&self, keys: &[String]) -> Value {
        let key = keys
            .iter()
            .filter(|k| k.contains("/manifest"))
            .max()
            .expect("a manifest");
        let bytes = object(&self.aws, &self.bucket, key).await;
        serde_json::from_slice(&bytes).expect("manifest json")
    }
}

#[tokio::test]
async fn a_log_window_is_preserved_whole_verified_and_never_collected_twice() {
    let s = setup(EVENTS).await;
    let group = format!("/aws/lambda/{}", s.function);

    // Plan: shows the group, the window and where it goes; writes nothing.
    let plan = s.run(&["--output", "json", "plan"], "INC-LOGS");
    plan.expect_code(2);
    assert!(keys(&s.aws, &s.bucket).await.is_empty(), "plan wrote");
    let plan = plan.json();
    let step = &plan["targets"][0]["steps"][0];
    let change = &step["changes"][0];
    assert_eq!(change["attribute"], "evidence:logs");
    assert_eq!(change["after"]["log_group"], group.as_str());
    let prefix = format!(
        "INC-LOGS/{}/{REGION}/{}/logs/%2Faws%2Flambda%2F{}/",
        s.cx.account, s.function, s.function
    );
    assert!(
        change["after"]["key_prefix"]
            .as_str()
            .is_some_and(|k| k.starts_with(&prefix)),
        "{change}"
    );
    let reason = change["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains(&group) && reason.contains(" to "),
        "{reason}"
    );
    assert_eq!(step["changes"][1]["attribute"], "evidence:manifest");

    // Run: parts, then the summary, then the manifest.
    s.run(&["run", "--yes"], "INC-LOGS").expect_code(0);
    let stored = keys(&s.aws, &s.bucket).await;
    let parts: Vec<&String> = stored.iter().filter(|k| k.ends_with(".jsonl.gz")).collect();
    assert!(parts.len() >= 2, "expected several 1 MiB parts: {stored:?}");
    // The parts, the summary, the manifest and the audit trail's copy.
    assert_eq!(
        stored.len(),
        parts.len() + 3,
        "parts, summary, manifest: {stored:?}"
    );

    // Every event once, in order, and every artifact's hash matches.
    let manifest = s.manifest(&stored).await;
    let artifacts = manifest["artifacts"].as_array().expect("artifacts");
    assert_eq!(artifacts.len(), parts.len() + 1);
    let mut messages = Vec::new();
    for a in artifacts {
        let key = a["key"].as_str().expect("key");
        let bytes = object(&s.aws, &s.bucket, key).await;
        assert_eq!(hex::encode(Sha256::digest(&bytes)), a["sha256"], "{key}");
        assert_eq!(bytes.len() as u64, a["size"].as_u64().unwrap_or(0), "{key}");
        if key.ends_with(".jsonl.gz") {
            assert_eq!(a["source"], "logs:FilterLogEvents");
            messages.extend(
                gunzip_lines(&bytes)
                    .into_iter()
                    .map(|l| l["message"].as_str().map(str::to_string)),
            );
        }
    }
    let want: Vec<Option<String>> = (0..EVENTS).map(|i| Some(message(i))).collect();
    assert!(
        messages == want,
        "the parts do not hold exactly the seeded events in order ({} lines)",
        messages.len()
    );
    let summary_key = stored
        .iter()
        .find(|k| k.ends_with("/summary.json"))
        .expect("summary");
    let summary: Value =
        serde_json::from_slice(&object(&s.aws, &s.bucket, summary_key).await).expect("json");
    assert_eq!(summary["events"], EVENTS);
    assert_eq!(summary["log_group"], group.as_str());
    assert_eq!(summary["parts"].as_array().map(Vec::len), Some(parts.len()));
    assert!(summary["first_timestamp"].as_str().is_some() && summary["start"].as_str().is_some());

    let verify = s.verify("INC-LOGS");
    verify.expect_code(0);
    assert!(
        // Parts and summary, plus the audit trail's copy.
        verify.stdout.contains(&format!(
            "{} artifact(s) checked, 0 mismatch(es)",
            parts.len() + 2
        )),
        "{}",
        verify.stdout
    );

    // A second plan and run: nothing to do, nothing written.
    s.run(&["plan"], "INC-LOGS").expect_code(0);
    s.run(&["run", "--yes"], "INC-LOGS").expect_code(0);
    assert_eq!(keys(&s.aws, &s.bucket).await, stored);
    let receipts =
        s.cx.audit("INC-LOGS")
            .iter()
            .filter(|r| r["event"] == MANIFEST_EVENT)
            .count();
    assert_eq!(receipts, 1);
}

#[tokio::test]
async fn a_sigkill_mid_snapshot_then_a_rerun_completes_it_without_duplicates() {
    let s = setup(EVENTS).await;
    let args = s.args(&["run", "--yes"], "INC-LOGKILL");
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();

    // Killed right after the first part reached S3.
    crate::crash::kill_at(&s.cx, &refs, "logs_part_stored:logs");
    let early = keys(&s.aws, &s.bucket).await;
    assert_eq!(early.len(), 1, "{early:?}");
    assert!(early[0].ends_with("/part-00001.jsonl.gz"), "{early:?}");
    // Incomplete: no summary, no manifest, so nothing claims completeness.
    s.verify("INC-LOGKILL").expect_code(1);

    s.cx.run(&refs).expect_code(0);
    let done = keys(&s.aws, &s.bucket).await;
    let parts = done.iter().filter(|k| k.ends_with(".jsonl.gz")).count();
    assert!(parts >= 2, "{done:?}");
    // The parts, the summary, the manifest and the audit trail's copy.
    assert_eq!(done.len(), parts + 3, "no duplicate parts: {done:?}");
    assert!(done.contains(&early[0]));
    // The re-run asked for the same window: the first part was found identical.
    let summary_key = done
        .iter()
        .find(|k| k.ends_with("/summary.json"))
        .expect("summary");
    assert!(summary_key.starts_with(early[0].trim_end_matches("part-00001.jsonl.gz")));
    let summary: Value =
        serde_json::from_slice(&object(&s.aws, &s.bucket, summary_key).await).expect("json");
    assert_eq!(summary["events"], EVENTS);
    s.verify("INC-LOGKILL").expect_code(0);
}

#[tokio::test]
async fn a_text_filter_keeps_only_matching_events_in_its_own_place() {
    let s = setup(2_000).await;
    let pb = PLAYBOOK.replace(
        "requests_per_second: 25",
        "requests_per_second: 25\n        filter: ERROR",
    );
    std::fs::write(s.cx.path("pb.yaml"), pb).expect("write");
    s.run(&["run", "--yes"], "INC-LOGF").expect_code(0);
    let stored = keys(&s.aws, &s.bucket).await;
    let part = stored
        .iter()
        .find(|k| k.ends_with("part-00001.jsonl.gz"))
        .expect("part");
    assert!(part.contains("-filter-"), "{part}");
    let lines = gunzip_lines(&object(&s.aws, &s.bucket, part).await);
    // LocalStack ignores filterPattern: this is firebreak's own filter.
    assert_eq!(lines.len(), 200);
    assert!(lines.iter().all(|l| l["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("ERROR"))));
    s.verify("INC-LOGF").expect_code(0);
}

#[tokio::test]
async fn a_missing_log_group_or_bucket_is_a_clear_error_in_plan() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx).await;
    let name = format!("fb-logs-none-{}", cx.account);
    bucket(&aws, &name).await;
    std::fs::write(cx.path("pb.yaml"), PLAYBOOK).expect("write");
    let f = cx.unique("nologs");
    let (pf, pb) = (format!("function={f}"), format!("forensic_bucket={name}"));
    let r = cx.run(&[
        "plan",
        "pb.yaml",
        "--incident",
        "INC-NOLOG",
        "-p",
        &pf,
        "-p",
        &pb,
    ]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains(&format!("log group /aws/lambda/{f} does not exist")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("describe-log-groups"), "{}", r.stderr);

    seed(&aws, &format!("/aws/lambda/{f}"), 10).await;
    let nb = "forensic_bucket=fb-logs-no-such-bucket-x";
    let r = cx.run(&[
        "plan",
        "pb.yaml",
        "--incident",
        "INC-NOLOG",
        "-p",
        &pf,
        "-p",
        nb,
    ]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("does not exist") && r.stderr.contains("create it first"),
        "{}",
        r.stderr
    );
}

// ---- recorded responses -------------------------------------------------

fn event(i: i64) -> FilteredLogEvent {
    FilteredLogEvent::builder()
        .timestamp(1_763_900_000_000 + i)
        .ingestion_time(1_763_900_000_100 + i)
        .log_stream_name("s")
        .event_id(i.to_string())
        .message(message(i as usize))
        .build()
}

fn page(from: i64, n: i64, next: Option<&'static str>) -> Rule {
    mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events).then_output(move || {
        FilterLogEventsOutput::builder()
            .set_events(Some((from..from + n).map(event).collect()))
            .set_next_token(next.map(str::to_string))
            .build()
    })
}

fn failing(code: &'static str) -> Rule {
    mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events).then_error(move || {
        FilterLogEventsError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("recorded")
                .build(),
        )
    })
}

fn mocked_logs(rules: &[&Rule]) -> aws_sdk_cloudwatchlogs::Client {
    mock_client!(aws_sdk_cloudwatchlogs, RuleMode::Sequential, rules, |b| b
        .retry_config(
            aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled()
        ))
}

fn request(dir: &str) -> Request<'_> {
    Request {
        log_group: "/aws/lambda/victim",
        window: Window {
            start_ms: 1_763_800_000_000,
            end_ms: 1_764_000_000_000,
        },
        filter: None,
        // Small parts: the first page alone completes some.
        part_limit: 64 * 1024,
        dir,
        step_id: "logs",
    }
}

#[tokio::test]
async fn a_page_failing_mid_stream_leaves_nothing_that_looks_complete_and_a_rerun_resumes() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx).await;
    let name = format!("fb-logs-mock-{}", cx.account);
    bucket(&aws, &name).await;
    let store = ForensicStore::open(aws.s3.clone(), &name, None)
        .await
        .expect("open");
    let dir = "INC-M/111122223333/us-east-1/victim/logs/g/w";

    let (p1, broken) = (page(0, 3_000, Some("t1")), failing("ExpiredTokenException"));
    let logs = mocked_logs(&[&p1, &broken]);
    let err = match stream::stream(&logs, &store, &request(dir)).await {
        Err(StreamError::Aws(e)) => e,
        other => panic!("a failed page was not an error: {other:?}"),
    };
    assert_eq!(err.kind, AwsErrorKind::AccessDenied);
    assert!(
        err.message.contains("page 2")
            && err.message.contains("after 3000 events")
            && err.message.contains("incomplete"),
        "{}",
        err.message
    );
    assert!(err.hint.contains("logs:FilterLogEvents"), "{}", err.hint);
    let partial = keys(&aws, &name).await;
    assert!(
        !partial.is_empty(),
        "the first page should have filled a part"
    );
    assert!(
        partial.iter().all(|k| k.ends_with(".jsonl.gz")),
        "{partial:?}"
    );

    // The same pages again, now whole: stored parts are found identical.
    let (a, b) = (page(0, 3_000, Some("t1")), page(3_000, 3_000, None));
    let logs = mocked_logs(&[&a, &b]);
    let done = stream::stream(&logs, &store, &request(dir))
        .await
        .expect("resumed");
    assert_eq!(done.events, 6_000);
    assert_eq!(done.already_stored, partial.len());
    assert_eq!(keys(&aws, &name).await.len(), done.parts.len());
}

#[tokio::test]
async fn throttling_backs_off_and_carries_on_but_not_forever() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx).await;
    let name = format!("fb-logs-thr-{}", cx.account);
    bucket(&aws, &name).await;
    let store = ForensicStore::open(aws.s3.clone(), &name, None)
        .await
        .expect("open");

    let (a, t, b) = (
        page(0, 10, Some("t1")),
        failing("ThrottlingException"),
        page(10, 10, None),
    );
    let logs = mocked_logs(&[&a, &t, &b]);
    let done = stream::stream(&logs, &store, &request("INC-T/1/r/f/logs/g/w"))
        .await
        .expect("after backoff");
    assert_eq!((done.events, done.pages), (20, 2));
    assert_eq!((a.num_calls(), t.num_calls(), b.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn the_dry_run_guard_lets_log_reads_through_and_nothing_else() {
    assert!(firebreak::aws::guard::is_read_operation(
        "CloudWatch Logs",
        "FilterLogEvents"
    ));
    assert!(firebreak::aws::guard::is_read_operation(
        "CloudWatch Logs",
        "DescribeLogGroups"
    ));
    for write in [
        "PutLogEvents",
        "CreateLogGroup",
        "DeleteLogGroup",
        "PutRetentionPolicy",
        "CreateExportTask",
    ] {
        assert!(
            !firebreak::aws::guard::is_read_operation("CloudWatch Logs", write),
            "{write}"
        );
    }
}
