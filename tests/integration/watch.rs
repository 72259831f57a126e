//! `firebreak watch`: the real alarm → SNS → SQS path, duplicates, and a
//! fleet of watchers sharing S3 state, one of them killed mid-incident.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::StateValue;
use serde_json::Value;

use crate::common::TestContext;

async fn queue_depth(cx: &TestContext, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = cx
        .sqs()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let get = |a: A| {
        out.attributes()
            .and_then(|m| m.get(&a))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (
        get(A::ApproximateNumberOfMessages),
        get(A::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Every JSON line a watcher printed about a message.
fn handled(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("message_id").is_some())
        .collect()
}

#[tokio::test]
async fn an_alarm_reaches_watch_through_sns_and_sqs_and_a_duplicate_changes_nothing() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    cx.set_alarm(&p.alarm, StateValue::Alarm).await;
    // The same notification delivered twice (SQS is at-least-once).
    let (_, body) = cx.receive_one(&p.queue_url).await;
    for _ in 0..2 {
        cx.sqs()
            .send_message()
            .queue_url(&p.queue_url)
            .message_body(&body)
            .send()
            .await
            .expect("send");
    }
    let routes = p.routes.to_str().expect("utf8");
    let r = cx.run(&[
        "--output",
        "json",
        "watch",
        "--routes",
        routes,
        "--queue",
        &p.queue_url,
        "--until-idle",
        "2",
        "--wait",
        "1",
        "--concurrency",
        "1",
    ]);
    r.expect_code(0);
    let lines = handled(&r.stdout);
    // `receive_one` holds the original delivery in flight; the two copies
    // are what this watcher saw.
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(lines.iter().all(|l| l["deleted"] == true), "{}", r.stdout);
    let incidents: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l["outcomes"][0]["incident"].as_str())
        .collect();
    assert_eq!(
        incidents.len(),
        1,
        "one incident: {incidents:?}\n{}",
        r.stdout
    );
    let applied: u64 = lines
        .iter()
        .map(|l| l["outcomes"][0]["summary"]["applied"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(applied, 1, "one change, not one per delivery: {}", r.stdout);
    assert_eq!(cx.concurrency(&p.function).await, Some(0), "contained");
    let stats = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["kind"] == "watch")
        .expect("stats line");
    assert_eq!(stats["stats"]["kept"], 0);
    // Both copies deleted once settled: none is visible again.
    let (visible, _) = queue_depth(&cx, &p.queue_url).await;
    assert_eq!(visible, 0);
}

#[tokio::test]
async fn watch_stops_cleanly_on_sigterm() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    let routes = p.routes.to_str().expect("utf8");
    let mut child = cx
        .firebreak()
        .args([
            "--output",
            "json",
            "watch",
            "--routes",
            routes,
            "--queue",
            &p.queue_url,
            "--wait",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "watch did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"kind\":\"watch\""), "{stdout}");
}

fn spawn_watcher(
    cx: &TestContext,
    args: &[&str],
    pause: Option<(&str, &std::path::Path)>,
) -> Child {
    let mut c = cx.firebreak();
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some((at, marker)) = pause {
        c.env("FIREBREAK_TEST_PAUSE_AT", at)
            .env("FIREBREAK_TEST_PAUSE_MARKER", marker);
    }
    c.spawn().expect("spawn watcher")
}

#[tokio::test]
async fn three_watchers_share_s3_state_and_finish_an_incident_one_of_them_died_in() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    // Nine more functions and alarms on the same topic: ten incidents.
    let more: Vec<String> = (0..9).map(|_| cx.unique("orders-fleet")).collect();
    cx.create_functions(&more).await;
    let mut alarms = vec![(p.alarm.clone(), p.function.clone())];
    for f in &more {
        let alarm = format!("{f}-errors");
        cx.put_alarm(&alarm, f, &p.topic).await;
        alarms.push((alarm, f.clone()));
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&cx.sdk_config().await)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("fb-fleet-{}", cx.account);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("state bucket");
    let state = format!("s3://{bucket}/incidents");
    let routes = p.routes.to_str().expect("utf8").to_string();
    let common = |idle: &'static str, conc: &'static str| -> Vec<String> {
        [
            "--output",
            "json",
            "--state",
            &state,
            "--state-lease",
            "3",
            "watch",
            "--routes",
            &routes,
            "--queue",
            &p.queue_url,
            "--wait",
            "1",
            "--visibility",
            "10",
            "--until-idle",
            idle,
            "--concurrency",
            conc,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    // The first watcher takes the first alarm and dies after its change
    // reached AWS, before the change was recorded.
    let marker = cx.path("paused");
    let a_args = common("600", "1");
    let a_refs: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let mut a = spawn_watcher(&cx, &a_refs, Some(("after_apply:throttle", &marker)));
    cx.set_alarm(&alarms[0].0, StateValue::Alarm).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the first watcher never paused");
        std::thread::sleep(Duration::from_millis(50));
    }
    let b_args = common("25", "2");
    let b_refs: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let b = spawn_watcher(&cx, &b_refs, None);
    let c = spawn_watcher(&cx, &b_refs, None);
    for (alarm, _) in &alarms[1..] {
        cx.set_alarm(alarm, StateValue::Alarm).await;
    }
    a.kill().expect("SIGKILL");
    let _ = a.wait();

    let mut lines = Vec::new();
    for w in [b, c] {
        let out = w.wait_with_output().expect("watcher");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines.extend(handled(&String::from_utf8_lossy(&out.stdout)));
    }
    // Every function is contained (read back from Lambda).
    for (_, f) in &alarms {
        assert_eq!(cx.concurrency(f).await, Some(0), "{f} contained");
    }
    // Each incident's change was made once: applied by a survivor, or
    // confirmed by one (the incident the first watcher died in).
    let mut changes: BTreeMap<String, u64> = BTreeMap::new();
    for l in &lines {
        for o in l["outcomes"].as_array().into_iter().flatten() {
            if o["outcome"] == "responded" {
                let n = o["summary"]["applied"].as_u64().unwrap_or(0)
                    + o["summary"]["confirmed"].as_u64().unwrap_or(0);
                *changes
                    .entry(o["function"].as_str().unwrap_or("").to_string())
                    .or_default() += n;
            }
        }
    }
    for (_, f) in &alarms {
        assert_eq!(
            changes.get(f),
            Some(&1),
            "{f} changed exactly once: {changes:?}"
        );
    }
    let first = &alarms[0].1;
    let resumed = lines
        .iter()
        .flat_map(|l| l["outcomes"].as_array().cloned().unwrap_or_default())
        .any(|o| {
            o["function"] == first.as_str()
                && o["summary"]["confirmed"] == 1
                && o["resumed"] == true
        });
    assert!(resumed, "a survivor resumed the dead watcher's incident");
    let (visible, in_flight) = queue_depth(&cx, &p.queue_url).await;
    assert_eq!((visible, in_flight), (0, 0), "every message deleted");
}
