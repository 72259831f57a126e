//! The LocalStack the suite runs against: what our executor plugin's
//! patches to it (localstack/executor) must keep working.

use std::time::Duration;

use tokio::time::Instant;

use crate::common::TestContext;

/// The lines CloudWatch Logs holds for `function` (none before its group
/// exists: LocalStack creates it with the first lines).
async fn log_lines(logs: &aws_sdk_cloudwatchlogs::Client, function: &str) -> Vec<String> {
    match logs
        .filter_log_events()
        .log_group_name(format!("/aws/lambda/{function}"))
        .send()
        .await
    {
        Ok(o) => o
            .events()
            .iter()
            .filter_map(|e| e.message().map(str::to_string))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A version's log thread starts on its first log lines
/// (`lazy_start.py`), not when the version goes Active: each
/// invocation's START and END lines must still reach CloudWatch Logs, the
/// first one's included.
#[tokio::test]
async fn every_invocations_log_lines_reach_cloudwatch_logs_though_the_log_thread_starts_late() {
    let cx = TestContext::new().await;
    let f = cx.unique("logs");
    cx.create_function(&f).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let out = cx
            .lambda
            .invoke()
            .function_name(&f)
            .send()
            .await
            .expect("invoke");
        let payload: serde_json::Value =
            serde_json::from_slice(out.payload().expect("payload").as_ref()).expect("json");
        assert_eq!(payload["firebreak_executor"], true, "{payload}");
        ids.push(
            payload["request_id"]
                .as_str()
                .expect("request id")
                .to_string(),
        );
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&cx.sdk_config().await);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = log_lines(&logs, &f).await;
        let logged = |kind: &str, id: &str| {
            let prefix = format!("{kind} RequestId: {id}");
            lines.iter().any(|l| l.starts_with(&prefix))
        };
        if ids
            .iter()
            .all(|id| logged("START", id) && logged("END", id))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no START and END lines for {ids:?} within 30 s: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
