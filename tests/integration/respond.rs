//! `firebreak respond`: alarms and findings in, containment or a refusal
//! out. Every malformed or malicious event under `tests/events/refused/`
//! is refused with the code its file name gives, and no mutating call.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{crate_root, TestContext, REGION};

/// An alarm wired to an SNS topic that feeds an SQS queue: the real path.
pub struct AlarmPath {
    pub function: String,
    pub alarm: String,
    pub topic: String,
    pub queue_url: String,
    pub routes: PathBuf,
}

impl TestContext {
    pub async fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk_config().await)
    }

    pub async fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk_config().await)
    }

    /// A function `orders-...`, an alarm `...-errors` on its Errors metric
    /// notifying a topic, the topic subscribed by a queue, and a routes
    /// file allowing exactly that (with `playbook`).
    pub async fn alarm_path(&self, playbook: &Path, params: &str) -> AlarmPath {
        let function = self.unique("orders-api");
        self.create_function(&function).await;
        let alarm = format!("{function}-errors");
        let (topic, queue_url) = self.topic_into_queue("lambda-alarms").await;
        self.put_alarm(&alarm, &function, &topic).await;
        let routes = self.path("routes.yaml");
        std::fs::write(
            &routes,
            format!(
                r#"apiVersion: firebreak/v1
kind: Routes
allow:
  accounts: ["{account}"]
  regions: [{REGION}]
  functions: ["orders-*"]
  sns_topics: ["{topic}"]
routes:
  - name: lambda-errors
    match: {{source: cloudwatch-alarm, alarm: "*-errors"}}
    playbook: {playbook}
    target: {{function: "${{alarm.dimensions.FunctionName}}"}}
    params: {{{params}}}
  - name: guardduty-lambda
    match: {{source: guardduty, finding_type: "*:Lambda/*", min_severity: 5}}
    playbook: {playbook}
    target: {{function: "${{finding.lambda.function_name}}"}}
  - name: securityhub-lambda
    match: {{source: securityhub, min_severity: 40}}
    playbook: {playbook}
    target: {{function: "${{finding.lambda.function_name}}"}}
"#,
                account = self.account,
                playbook = playbook.display(),
            ),
        )
        .expect("routes");
        AlarmPath {
            function,
            alarm,
            topic,
            queue_url,
            routes,
        }
    }

    /// An SNS topic subscribed by a new SQS queue: (topic ARN, queue URL).
    pub async fn topic_into_queue(&self, prefix: &str) -> (String, String) {
        let sns = self.sns().await;
        let topic = sns
            .create_topic()
            .name(self.unique(prefix))
            .send()
            .await
            .expect("topic")
            .topic_arn()
            .expect("arn")
            .to_string();
        let sqs = self.sqs();
        let queue_url = sqs
            .create_queue()
            .queue_name(self.unique(prefix))
            .send()
            .await
            .expect("queue")
            .queue_url()
            .expect("url")
            .to_string();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("attrs")
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .send()
            .await
            .expect("subscribe");
        (topic, queue_url)
    }

    /// An alarm on `function`'s Errors metric notifying `topic`.
    pub async fn put_alarm(&self, alarm: &str, function: &str, topic: &str) {
        self.cloudwatch()
            .await
            .put_metric_alarm()
            .alarm_name(alarm)
            .metric_name("Errors")
            .namespace("AWS/Lambda")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
            )
            .dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name("FunctionName")
                    .value(function)
                    .build(),
            )
            .alarm_actions(topic)
            .send()
            .await
            .expect("alarm");
    }

    pub async fn set_alarm(&self, alarm: &str, state: aws_sdk_cloudwatch::types::StateValue) {
        self.cloudwatch()
            .await
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(state)
            .state_reason("test")
            .send()
            .await
            .expect("set alarm state");
    }

    /// Waits for one message on the queue and returns its body.
    pub async fn receive_one(&self, queue_url: &str) -> (String, String) {
        for _ in 0..20 {
            let out = self
                .sqs()
                .receive_message()
                .queue_url(queue_url)
                .wait_time_seconds(1)
                .max_number_of_messages(1)
                .send()
                .await
                .expect("receive");
            if let Some(m) = out.messages().first() {
                return (
                    m.message_id().unwrap_or_default().to_string(),
                    m.body().unwrap_or_default().to_string(),
                );
            }
        }
        panic!("no message arrived on {queue_url}");
    }
}

/// An event file with this test's names filled in.
pub fn event_file(cx: &TestContext, path: &Path, p: &AlarmPath, extra: &[(&str, &str)]) -> PathBuf {
    let mut bytes = std::fs::read(path).expect("event file");
    let defaults = vec![
        ("__ACCOUNT__", cx.account.clone()),
        ("__FUNCTION__", p.function.clone()),
        ("__ALARM__", p.alarm.clone()),
        ("__TOPIC__", p.topic.clone()),
        // The alarm changed state just now: the re-read finds it in its
        // history even if it has already been evaluated back.
        (
            "__TIME__",
            chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string(),
        ),
        ("__DECOY__", format!("{}-decoy", p.function)),
        (
            "__FINDING__",
            "5ec7fb8e1ad4f2e0a9f8c6e1b2d3a4f5".to_string(),
        ),
        (
            "__SHFINDING__",
            format!(
                "arn:aws:securityhub:{REGION}:{}:finding/5ec7fb8e",
                cx.account
            ),
        ),
    ];
    // Given values first: a placeholder replaced once is gone.
    let pairs: Vec<(&str, String)> = extra
        .iter()
        .map(|(a, b)| (*a, b.to_string()))
        .chain(defaults)
        .collect();
    // Only valid UTF-8 files carry placeholders; the non-UTF-8 one is sent
    // as it is.
    if let Ok(mut text) = String::from_utf8(bytes.clone()) {
        for (k, v) in &pairs {
            text = text.replace(k, v);
        }
        bytes = text.into_bytes();
    }
    let out = cx.path(&format!(
        "event-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("event")
    ));
    std::fs::write(&out, bytes).expect("write event");
    out
}

fn respond(cx: &TestContext, routes: &Path, event: &Path) -> (i32, Value) {
    let r = cx.run(&[
        "--output",
        "json",
        "respond",
        "--routes",
        routes.to_str().expect("utf8"),
        "--event",
        event.to_str().expect("utf8"),
    ]);
    let json: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("respond printed no JSON ({e}): {}\n{}", r.stdout, r.stderr));
    (r.code, json)
}

#[tokio::test]
async fn every_malicious_or_malformed_event_is_refused_without_a_mutating_call() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    cx.set_alarm(&p.alarm, aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    let dir = crate_root().join("tests/events/refused");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("events dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "at least 20 refused events ({})",
        files.len()
    );
    let mut mutating = 0;
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        // `NN-code-description.json`: the code the refusal must carry.
        let code = name.split('-').nth(1).expect("code in the file name");
        let event = event_file(&cx, file, &p, &[]);
        let (exit, out) = respond(&cx, &p.routes, &event);
        assert_eq!(exit, 3, "{name}: refused is exit 3: {out}");
        let outcome = &out["outcomes"][0];
        assert_eq!(outcome["outcome"], "refused", "{name}: {out}");
        assert_eq!(outcome["code"], code, "{name}: {out}");
        assert!(
            !outcome["reason"].as_str().unwrap_or_default().is_empty(),
            "{name}: a refusal says why"
        );
        mutating += out["api_calls"]["mutating"].as_u64().expect("api_calls");
        // Beyond the re-read's reads, nothing was asked of AWS.
        for op in out["api_calls"]["by_operation"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            assert!(
                [
                    "sts:GetCallerIdentity",
                    "monitoring:DescribeAlarms",
                    "cloudwatch:DescribeAlarms"
                ]
                .contains(&op.as_str()),
                "{name}: unexpected call {op}"
            );
        }
    }
    assert_eq!(mutating, 0, "no refused event led to a mutating call");
    // Read back from AWS: the function was never touched.
    assert_eq!(cx.concurrency(&p.function).await, None, "not throttled");
    // Every refusal is in the refusals log, in the audit trail's format.
    let log = format!("refusals-{}", chrono::Utc::now().format("%Y%m%d"));
    let records = cx.audit(&log);
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "event_refused")
        .collect();
    assert_eq!(refused.len(), files.len(), "one record per refusal");
    assert!(refused.iter().all(|r| r["data"]["event"]["sha256"]
        .as_str()
        .is_some_and(|h| h.len() == 64)));
    cx.run(&["audit", "verify", "--incident", &log])
        .expect_code(0);
}

#[tokio::test]
async fn an_alarm_through_sns_and_sqs_contains_its_function_once() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    cx.set_alarm(&p.alarm, aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    let (id, body) = cx.receive_one(&p.queue_url).await;
    let sqs_event =
        serde_json::json!({"Records": [{"messageId": id, "body": body, "eventSource": "aws:sqs"}]});
    let file = cx.path("delivered.json");
    std::fs::write(&file, sqs_event.to_string()).expect("write");
    let (exit, out) = respond(&cx, &p.routes, &file);
    assert_eq!(exit, 0, "{out}");
    let r = &out["outcomes"][0];
    assert_eq!(r["outcome"], "responded", "{out}");
    assert_eq!(r["function"], p.function.as_str());
    assert_eq!(r["resumed"], false);
    assert_eq!(cx.concurrency(&p.function).await, Some(0), "contained");
    // The time to contain is split and ends within the run.
    let t = &r["timing"];
    let to_contain = &t["to_contain"];
    let n = |v: &Value| v.as_u64().expect("a number of ms");
    assert!(n(&to_contain["elapsed_ms"]) <= n(&t["handled_ms"]), "{t}");
    assert!(
        n(&to_contain["aws_ms"]) > 0,
        "the re-read and the throttle went to AWS: {t}"
    );
    // Each part is rounded down to whole ms on its own.
    // Every millisecond is waiting on AWS (queued or in flight) or ours.
    let parts = n(&to_contain["waiting_ms"]) + n(&to_contain["own_ms"]);
    assert!(n(&to_contain["elapsed_ms"]).abs_diff(parts) <= 2, "{t}");
    let incident = r["incident"].as_str().expect("incident").to_string();
    assert!(incident.starts_with("alarm-"), "{incident}");
    let trail = cx.audit(&incident);
    let trigger = trail
        .iter()
        .find(|x| x["event"] == "triggered")
        .expect("triggered record");
    assert_eq!(trigger["data"]["route"], "lambda-errors");
    assert_eq!(trigger["data"]["reread"]["state"], "ALARM");

    // Delivered again: the same incident, resumed, nothing changed twice.
    let (exit, again) = respond(&cx, &p.routes, &file);
    assert_eq!(exit, 0, "{again}");
    let r2 = &again["outcomes"][0];
    assert_eq!(
        r2["incident"],
        incident.as_str(),
        "dedup by alarm and change time"
    );
    assert_eq!(r2["resumed"], true);
    assert_eq!(r2["summary"]["applied"], 0, "{again}");
    assert!(
        r2["timing"].get("to_contain").is_none(),
        "nothing changed: {again}"
    );
    assert_eq!(
        again["api_calls"]["by_operation"]["lambda:PutFunctionConcurrency"],
        Value::Null
    );
    let dirs = std::fs::read_dir(cx.path(".firebreak/incidents"))
        .expect("state")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("alarm-"))
        .count();
    assert_eq!(dirs, 1, "one incident");
}

#[tokio::test]
async fn an_eventbridge_alarm_event_is_contained_and_an_alarm_back_in_ok_is_refused() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    let accepted = crate_root().join("tests/events/accepted/alarm-eventbridge.json");
    // The alarm is not in ALARM (yet): the event lies, the re-read says so.
    cx.set_alarm(&p.alarm, aws_sdk_cloudwatch::types::StateValue::Ok)
        .await;
    let event = event_file(&cx, &accepted, &p, &[]);
    let (exit, out) = respond(&cx, &p.routes, &event);
    assert_eq!(exit, 3, "{out}");
    assert_eq!(out["outcomes"][0]["code"], "not_in_alarm", "{out}");
    assert_eq!(out["api_calls"]["mutating"], 0);
    assert_eq!(cx.concurrency(&p.function).await, None);

    cx.set_alarm(&p.alarm, aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    let event = event_file(&cx, &accepted, &p, &[]);
    let (exit, out) = respond(&cx, &p.routes, &event);
    assert_eq!(exit, 0, "{out}");
    assert_eq!(out["outcomes"][0]["outcome"], "responded", "{out}");
    assert_eq!(cx.concurrency(&p.function).await, Some(0));
}

#[tokio::test]
async fn routes_with_mistakes_are_refused_at_validation_with_positions() {
    let cx = TestContext::new().await;
    let routes = cx.path("bad-routes.yaml");
    std::fs::write(
        &routes,
        format!(
            r#"apiVersion: firebreak/v1
kind: Routes
allow:
  accounts: ["12345"]
  regions: [us-east-1]
  functions: ["orders-*"]
routes:
  - name: r1
    match: {{source: cloudwatch-alarm, alarm: "*-errors"}}
    playbook: {}
    target: {{function: "${{alarm.name}}"}}
    phases: [identify, recover]
"#,
            TestContext::throttle_playbook().display()
        ),
    )
    .expect("write");
    let r = cx.run(&[
        "--output",
        "json",
        "validate",
        routes.to_str().expect("utf8"),
    ]);
    r.expect_code(1);
    let problems = r.json()["files"][0]["problems"].clone();
    let at: Vec<(u64, String)> = problems
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["line"].as_u64().unwrap_or(0),
                p["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        at.iter()
            .any(|(l, m)| *l == 4 && m.contains("not an AWS account id")),
        "{at:?}"
    );
    assert!(
        at.iter()
            .any(|(l, m)| *l == 11 && m.contains("cannot name a target")),
        "{at:?}"
    );
    assert!(
        at.iter()
            .any(|(l, m)| *l == 12 && m.contains("never automatic")),
        "{at:?}"
    );
    // And `respond` refuses to start with them, before reading any event.
    let r = cx.run(&[
        "respond",
        "--routes",
        routes.to_str().expect("utf8"),
        "--event",
        "-",
    ]);
    r.expect_code(1);
    assert!(r.stderr.contains("bad-routes.yaml:4:"), "{}", r.stderr);
}

#[tokio::test]
async fn one_alarm_change_delivered_three_ways_is_one_incident() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    cx.set_alarm(&p.alarm, aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    // AWS's own formats (the SNS message names the region in words), all
    // about the same state change: one incident, one change.
    let at = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string();
    let mut incidents = std::collections::BTreeSet::new();
    let mut applied = 0;
    for (i, name) in [
        "alarm-sns.json",
        "alarm-eventbridge.json",
        "alarm-sqs-lambda-event.json",
    ]
    .iter()
    .enumerate()
    {
        let file = crate_root().join("tests/events/accepted").join(name);
        let event = event_file(&cx, &file, &p, &[("__TIME__", at.as_str())]);
        let (exit, out) = respond(&cx, &p.routes, &event);
        assert_eq!(exit, 0, "{name}: {out}");
        let r = &out["outcomes"][0];
        assert_eq!(r["outcome"], "responded", "{name}: {out}");
        assert_eq!(r["resumed"], i > 0, "{name}: {out}");
        incidents.insert(r["incident"].as_str().unwrap_or("").to_string());
        applied += r["summary"]["applied"].as_u64().unwrap_or(0);
    }
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(applied, 1);
    assert_eq!(cx.concurrency(&p.function).await, Some(0));
}

#[tokio::test]
async fn a_responder_in_another_account_assumes_the_routes_role_and_notifies() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    cx.set_alarm(&p.alarm, aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    // The incident summary goes to a topic the on-call queue reads.
    let (oncall_topic, oncall_queue) = cx.topic_into_queue("ir-oncall").await;
    // The responder's own credentials are for another account: without a
    // role to assume there, the event is refused.
    let home = "111111111111";
    let run = |routes: &Path, event: &Path| {
        let r = cx
            .firebreak()
            .env("AWS_ACCESS_KEY_ID", home)
            .args([
                "--output",
                "json",
                "respond",
                "--routes",
                routes.to_str().expect("utf8"),
                "--event",
                event.to_str().expect("utf8"),
            ])
            .output()
            .expect("respond");
        (
            r.status.code().unwrap_or(-1),
            serde_json::from_slice::<Value>(&r.stdout).expect("json"),
        )
    };
    let accepted = crate_root().join("tests/events/accepted/alarm-eventbridge.json");
    let event = event_file(&cx, &accepted, &p, &[]);
    let (exit, out) = run(&p.routes, &event);
    assert_eq!(exit, 3, "{out}");
    assert_eq!(out["outcomes"][0]["code"], "account_mismatch", "{out}");
    assert_eq!(cx.concurrency(&p.function).await, None);

    let role = format!("arn:aws:iam::{}:role/firebreak-responder", cx.account);
    let text = std::fs::read_to_string(&p.routes).expect("routes");
    let text = text.replacen(
        "    params: {}\n",
        &format!(
            "    params: {{}}\n    assume_role: {{\"{}\": \"{role}\"}}\n    notify: {oncall_topic}\n",
            cx.account
        ),
        1,
    );
    let routes = cx.path("routes-assume.yaml");
    std::fs::write(&routes, text).expect("routes");
    let (exit, out) = run(&routes, &event);
    assert_eq!(exit, 0, "{out}");
    let r = &out["outcomes"][0];
    assert_eq!(r["outcome"], "responded", "{out}");
    assert_eq!(r["account"], cx.account.as_str());
    assert!(
        r["notified"]
            .as_str()
            .is_some_and(|n| n.starts_with("sent")),
        "{out}"
    );
    assert_eq!(cx.concurrency(&p.function).await, Some(0), "contained");
    let (_, body) = cx.receive_one(&oncall_queue).await;
    let note: Value = serde_json::from_str(&body).expect("sns envelope");
    let summary: Value =
        serde_json::from_str(note["Message"].as_str().expect("message")).expect("summary");
    assert_eq!(summary["incident"], r["incident"]);
    assert_eq!(summary["function"], p.function.as_str());
    assert_eq!(summary["status"], "ok");
}
