//! The Lambda responder's handler, in-process against LocalStack: an
//! EventBridge alarm event contains its function; an SQS batch reports
//! exactly its unsettled records in `batchItemFailures`; state in S3.

use std::sync::Arc;

use firebreak::aws::{Aws, AwsSettings};
use firebreak::lambda::{Handler, HandlerError};
use firebreak::respond::{routes, Responder};
use firebreak::state::{IncidentId, LeaseTerms, S3Location, S3Store, StateStore};
use serde_json::{json, Value};

use crate::common::{crate_root, TestContext, REGION};
use crate::respond::{event_file, AlarmPath};

/// The handler as the Lambda binary builds it, but on this test's
/// account: routes loaded once, state in an S3 bucket of its own.
async fn handler(cx: &TestContext, p: &AlarmPath) -> (Handler, Arc<S3Store>) {
    let sdk = cx.sdk_config().await;
    let bucket = format!("fb-lambda-{}", cx.account);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("state bucket");
    let client = firebreak::aws::state_s3_client_from(&sdk).expect("state client");
    let location = S3Location::parse(&format!("s3://{bucket}/incidents")).expect("location");
    let store = Arc::new(
        S3Store::with_client(
            location,
            client,
            LeaseTerms::new(std::time::Duration::from_secs(60)),
        )
        .expect("store"),
    );
    let settings = AwsSettings {
        endpoint_url: Some(cx.endpoint.clone()),
        region: Some(REGION.into()),
        ..AwsSettings::default()
    };
    let aws = Aws::from_sdk_config(&sdk, REGION.into(), &settings);
    let caller = aws.caller().await.expect("caller");
    let routes = routes::load(&p.routes).expect("routes");
    let responder = Responder::new(routes, store.clone(), settings)
        .with_connection(REGION, aws, caller)
        .await;
    (Handler::new(responder), store)
}

/// Puts the alarm in ALARM and keeps it there. LocalStack evaluates
/// alarms on a schedule, and one without data would go to
/// INSUFFICIENT_DATA (the re-read then rightly refuses): the alarm is
/// defined again, as `alarm_path` made it, but with missing data counted
/// as breaching, so that every evaluation agrees with ALARM.
async fn alarm_up(cx: &TestContext, p: &AlarmPath) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
    cx.cloudwatch()
        .await
        .put_metric_alarm()
        .alarm_name(&p.alarm)
        .metric_name("Errors")
        .namespace("AWS/Lambda")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .dimensions(
            Dimension::builder()
                .name("FunctionName")
                .value(&p.function)
                .build(),
        )
        .alarm_actions(&p.topic)
        .treat_missing_data("breaching")
        .send()
        .await
        .expect("alarm");
    cx.set_alarm(&p.alarm, StateValue::Alarm).await;
}

fn event(cx: &TestContext, p: &AlarmPath, rel: &str) -> String {
    let path = event_file(cx, &crate_root().join(rel), p, &[]);
    std::fs::read_to_string(path).expect("event")
}

fn record(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("handle-{id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:firebreak-events",
        "awsRegion": REGION,
    })
}

#[tokio::test]
async fn an_eventbridge_alarm_event_contains_its_function_in_process() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    alarm_up(&cx, &p).await;
    let (handler, store) = handler(&cx, &p).await;
    let payload: Value = serde_json::from_str(&event(
        &cx,
        &p,
        "tests/events/accepted/alarm-eventbridge.json",
    ))
    .expect("json");

    let out = handler.handle(&payload, None).await.expect("handled");
    let o = &out["outcomes"][0];
    assert_eq!(o["outcome"], "responded", "{out}");
    assert_eq!(o["function"], p.function.as_str());
    assert_eq!(o["status"], "ok", "{out}");
    assert_eq!(cx.concurrency(&p.function).await, Some(0), "contained");
    let incident = IncidentId::parse(o["incident"].as_str().expect("id")).expect("id");
    assert!(
        store.exists(&incident).expect("exists"),
        "incident state in S3"
    );

    // One event, not settled: the invocation fails, so that EventBridge
    // (or Lambda's async retries) deliver it again. GuardDuty is not in
    // LocalStack: its re-read cannot be made.
    let finding: Value = serde_json::from_str(&event(
        &cx,
        &p,
        "tests/events/accepted/guardduty-finding.json",
    ))
    .expect("json");
    match handler.handle(&finding, None).await {
        Err(HandlerError::Deferred { reasons }) => {
            assert!(reasons[0].contains("re-read"), "{reasons:?}")
        }
        other => panic!("expected a deferred error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_sqs_batch_reports_exactly_its_unsettled_records() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    alarm_up(&cx, &p).await;
    let (handler, store) = handler(&cx, &p).await;
    // The alarm's own notification, as SNS delivered it to the queue.
    let (good_id, good) = cx.receive_one(&p.queue_url).await;
    // From a topic outside `allow.sns_topics`: refused for good.
    let refused = event(
        &cx,
        &p,
        "tests/events/refused/11-untrusted_topic-other-topic.json",
    );
    // A GuardDuty finding whose re-read cannot be made: deferred.
    let deferred = event(&cx, &p, "tests/events/accepted/guardduty-finding.json");
    let batch = json!({"Records": [
        record(&good_id, &good),
        record("refused-1", &refused),
        record("deferred-1", &deferred),
    ]});

    let out = handler.handle(&batch, None).await.expect("handled");
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "deferred-1"}]}),
        "only the deferred record comes back"
    );
    assert_eq!(cx.concurrency(&p.function).await, Some(0), "contained");
    // The refusal is in today's refusals log, in S3.
    let log = firebreak::respond::refusals::log_id().expect("log id");
    assert!(store.exists(&log).expect("exists"), "refusals log in S3");

    // Delivered again (the deferred one by SQS, the others by accident):
    // the good record resumes its incident and changes nothing.
    let again = handler.handle(&batch, None).await.expect("handled");
    assert_eq!(again["batchItemFailures"].as_array().map(Vec::len), Some(1));

    // A record to keep without a messageId cannot be named: the whole
    // batch is retried.
    let mut anonymous = record("x", &deferred);
    anonymous
        .as_object_mut()
        .expect("object")
        .remove("messageId");
    let err = handler
        .handle(&json!({"Records": [anonymous]}), None)
        .await
        .expect_err("whole batch");
    assert!(matches!(err, HandlerError::Unidentified), "{err}");

    // Records not started before the deadline come back unhandled.
    let late = handler
        .handle(
            &json!({"Records": [record("late-1", &refused)]}),
            Some(std::time::Instant::now()),
        )
        .await
        .expect("handled");
    assert_eq!(
        late,
        json!({"batchItemFailures": [{"itemIdentifier": "late-1"}]})
    );
}
