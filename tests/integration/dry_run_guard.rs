//! Contract 2: in dry-run the clients refuse every mutating operation at
//! the SDK layer. Requests are counted at the interceptor itself.

use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::{Credentials, Region};
use firebreak::aws::{Aws, AwsErrorKind, AwsSettings};
use firebreak::engine::Session;
use firebreak::playbook::{self, Phase};
use firebreak::state::{Incident, IncidentId};
use serde_json::{Map, Value};

use crate::common::{TestContext, REGION};

async fn aws_for(cx: &TestContext, dry_run: bool) -> Aws {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&cx.endpoint)
        .credentials_provider(Credentials::new(&cx.account, "test", None, None, "tests"))
        .load()
        .await;
    let settings = AwsSettings {
        dry_run,
        ..AwsSettings::default()
    };
    Aws::from_sdk_config(&sdk, REGION.into(), &settings)
}

/// Values for the params of every shipped playbook. A new playbook with a
/// param this table does not know fails here, so it cannot skip the check.
fn params_for(pb: &playbook::Playbook, function: &str, bucket: &str) -> Map<String, Value> {
    let given: Vec<String> = pb
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| match p.name.as_str() {
            "function" => format!("function={function}"),
            "forensic_bucket" => format!("forensic_bucket={bucket}"),
            other => panic!(
                "dry_run_guard.rs: give a test value for param `{other}` of {}",
                pb.name
            ),
        })
        .chain(
            pb.params
                .iter()
                .filter(|p| p.name == "collect_cloudtrail")
                .map(|_| "collect_cloudtrail=false".to_string()),
        )
        .collect();
    firebreak::engine::params::resolve(pb, &given).expect("params")
}

#[tokio::test]
async fn planning_every_shipped_playbook_sends_no_mutating_request() {
    let cx = TestContext::new().await;
    let f = cx.unique("guard");
    let role = cx.seed_role(&format!("{f}-role")).await;
    cx.create_function_with_role(&f, &role).await;
    // Every evidence step is planned too (CloudTrail aside: LocalStack has
    // no LookupEvents; cloudtrail.rs shows the guard lets it through), so
    // the function needs a log group and there is a bucket.
    let bucket = cx.evidence_params().await[0]
        .trim_start_matches("forensic_bucket=")
        .to_string();
    let logs = aws_for(&cx, false).await.logs;
    logs.create_log_group()
        .log_group_name(format!("/aws/lambda/{f}"))
        .send()
        .await
        .expect("log group");
    let dir = crate::common::crate_root().join("playbooks");
    let mut planned = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let pb = playbook::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for phases in [
            vec![Phase::Identify, Phase::Contain],
            vec![Phase::Identify, Phase::Recover],
        ] {
            let aws = aws_for(&cx, true).await;
            let caller = aws.caller().await.expect("caller");
            let id = IncidentId::parse(&format!("GUARD-{planned}")).unwrap();
            let incident = Incident::open(&cx.path("state"), &id, "run-test", "test").unwrap();
            let session = Session::new(aws, caller, incident);
            let plan = session
                .build_plan(&pb, &params_for(&pb, &f, &bucket), &phases)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!plan.steps.is_empty());
            let sent = session.aws.calls.sent();
            assert!(
                sent.iter().any(|c| c.operation == "GetFunction"),
                "{sent:?}"
            );
            assert_eq!(
                session.aws.calls.mutating_sent(),
                vec![],
                "{}: plan sent a mutating request",
                path.display()
            );
            assert_eq!(
                session.aws.calls.refused(),
                vec![],
                "{}: plan attempted a write",
                path.display()
            );
            planned += 1;
        }
    }
    assert!(
        planned >= 2,
        "no shipped playbooks found in {}",
        dir.display()
    );
    assert_eq!(cx.concurrency(&f).await, None);
}

#[tokio::test]
async fn a_write_in_dry_run_is_refused_before_it_is_sent() {
    let cx = TestContext::new().await;
    let f = cx.unique("refuse");
    cx.create_function(&f).await;
    let aws = aws_for(&cx, true).await;
    let err = aws
        .lambda
        .put_function_concurrency()
        .function_name(&f)
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect_err("dry-run must refuse PutFunctionConcurrency");
    assert!(firebreak::aws::error::is_dry_run_refusal(&err), "{err:?}");
    let classified = firebreak::aws::error::classify(
        "PutFunctionConcurrency",
        "lambda:PutFunctionConcurrency",
        &f,
        err,
    );
    assert_eq!(classified.kind, AwsErrorKind::DryRunRefused);
    // Invoke runs code: it is not a read either.
    assert!(aws.lambda.invoke().function_name(&f).send().await.is_err());
    let refused: Vec<String> = aws
        .calls
        .refused()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(refused, ["PutFunctionConcurrency", "Invoke"]);
    assert!(aws.calls.sent().is_empty(), "nothing may leave the process");
    assert_eq!(cx.concurrency(&f).await, None);
}

#[tokio::test]
async fn the_counter_sees_mutations_when_they_are_allowed() {
    // Proves the zero above is a real zero: the same counter counts writes.
    let cx = TestContext::new().await;
    let f = cx.unique("count");
    cx.create_function(&f).await;
    let aws = aws_for(&cx, false).await;
    aws.lambda
        .put_function_concurrency()
        .function_name(&f)
        .reserved_concurrent_executions(2)
        .send()
        .await
        .expect("put");
    let mutating: Vec<String> = aws
        .calls
        .mutating_sent()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(mutating, ["PutFunctionConcurrency"]);
    assert_eq!(cx.concurrency(&f).await, Some(2));
}
