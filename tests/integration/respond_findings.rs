//! GuardDuty and Security Hub findings: LocalStack has neither service, so
//! their re-read (ListDetectors/GetFindings) answers from recorded
//! responses while the function is contained on LocalStack for real.

use std::sync::Arc;

use aws_sdk_guardduty::types::{
    Finding as GdFinding, LambdaDetails, Resource as GdResource, Service,
};
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, RecordState, Resource as ShResource, Severity, Workflow, WorkflowStatus,
};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use firebreak::aws::{Aws, AwsSettings};
use firebreak::respond::{routes, Outcome, Responder};
use firebreak::state::LocalStore;

use crate::common::{crate_root, TestContext, REGION};
use crate::respond::{event_file, AlarmPath};

const FINDING: &str = "5ec7fb8e1ad4f2e0a9f8c6e1b2d3a4f5";

async fn responder(cx: &TestContext, p: &AlarmPath, gd: Vec<Rule>, sh: Vec<Rule>) -> Responder {
    let settings = AwsSettings {
        endpoint_url: Some(cx.endpoint.clone()),
        region: Some(REGION.into()),
        ..AwsSettings::default()
    };
    let sdk = cx.sdk_config().await;
    let aws = Aws::from_sdk_config(&sdk, REGION.into(), &settings);
    let gd_refs: Vec<&Rule> = gd.iter().collect();
    let sh_refs: Vec<&Rule> = sh.iter().collect();
    let aws = aws
        .with_guardduty(mock_client!(
            aws_sdk_guardduty,
            RuleMode::MatchAny,
            &gd_refs
        ))
        .with_securityhub(mock_client!(
            aws_sdk_securityhub,
            RuleMode::MatchAny,
            &sh_refs
        ));
    let caller = aws.caller().await.expect("caller");
    let routes = routes::load(&p.routes).expect("routes");
    let store = Arc::new(LocalStore::new(&cx.path(".firebreak")));
    Responder::new(routes, store, settings)
        .with_connection(REGION, aws, caller)
        .await
}

fn gd_finding(cx: &TestContext, function: &str, archived: bool) -> GdFinding {
    gd_finding_rated(cx, function, archived, 8.0)
}

fn gd_finding_rated(cx: &TestContext, function: &str, archived: bool, severity: f64) -> GdFinding {
    GdFinding::builder()
        .id(FINDING)
        .account_id(&cx.account)
        .region(REGION)
        .r#type("Execution:Lambda/MaliciousFile")
        .severity(severity)
        .resource(
            GdResource::builder()
                .resource_type("Lambda")
                .lambda_details(
                    LambdaDetails::builder()
                        .function_name(function)
                        .function_arn(format!(
                            "arn:aws:lambda:{REGION}:{}:function:{function}",
                            cx.account
                        ))
                        .build(),
                )
                .build(),
        )
        .service(Service::builder().archived(archived).build())
        .build()
}

fn gd_rules(finding: Option<GdFinding>) -> Vec<Rule> {
    vec![
        mock!(aws_sdk_guardduty::Client::list_detectors).then_output(|| {
            aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput::builder()
                .detector_ids("12abc34d567e8fa901bc2d34e56789f0")
                .build()
        }),
        mock!(aws_sdk_guardduty::Client::get_findings)
            .match_requests(|r| r.finding_ids() == [FINDING.to_string()])
            .then_output(move || {
                let mut b =
                    aws_sdk_guardduty::operation::get_findings::GetFindingsOutput::builder();
                if let Some(f) = &finding {
                    b = b.findings(f.clone());
                }
                b.build()
            }),
    ]
}

fn outcome(outcomes: &[Outcome]) -> serde_json::Value {
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    serde_json::to_value(&outcomes[0]).expect("json")
}

#[tokio::test]
async fn a_guardduty_finding_contains_its_function_after_the_reread() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    let event = event_file(
        &cx,
        &crate_root().join("tests/events/accepted/guardduty-finding.json"),
        &p,
        &[],
    );
    let raw = std::fs::read(&event).expect("event");

    // An archived finding is not acted on.
    let r = responder(
        &cx,
        &p,
        gd_rules(Some(gd_finding(&cx, &p.function, true))),
        vec![],
    )
    .await;
    let o = outcome(&r.respond(&raw).await);
    assert_eq!(o["code"], "finding_inactive", "{o}");
    assert_eq!(r.api_calls().await.mutating, 0);
    // Nor one GuardDuty does not have.
    let r = responder(&cx, &p, gd_rules(None), vec![]).await;
    let o = outcome(&r.respond(&raw).await);
    assert_eq!(o["code"], "unknown_finding", "{o}");
    // Nor one about another function than the event says.
    let r = responder(
        &cx,
        &p,
        gd_rules(Some(gd_finding(&cx, "orders-other", false))),
        vec![],
    )
    .await;
    let o = outcome(&r.respond(&raw).await);
    assert_eq!(o["code"], "reread_mismatch", "{o}");
    // Nor one whose real severity is below the route's minimum: the event
    // claims 8, GuardDuty holds 2, and it is routed again on what AWS holds.
    let low = gd_finding_rated(&cx, &p.function, false, 2.0);
    let r = responder(&cx, &p, gd_rules(Some(low)), vec![]).await;
    let o = outcome(&r.respond(&raw).await);
    assert_eq!(o["code"], "reread_mismatch", "{o}");
    assert_eq!(cx.concurrency(&p.function).await, None, "untouched so far");

    let r = responder(
        &cx,
        &p,
        gd_rules(Some(gd_finding(&cx, &p.function, false))),
        vec![],
    )
    .await;
    let o = outcome(&r.respond(&raw).await);
    assert_eq!(o["outcome"], "responded", "{o}");
    assert_eq!(o["route"], "guardduty-lambda");
    assert!(
        o["incident"]
            .as_str()
            .is_some_and(|i| i.starts_with("guardduty-")),
        "{o}"
    );
    assert_eq!(cx.concurrency(&p.function).await, Some(0), "contained");
}

fn sh_rules(
    cx: &TestContext,
    p: &AlarmPath,
    state: RecordState,
    status: WorkflowStatus,
) -> Vec<Rule> {
    let id = format!(
        "arn:aws:securityhub:{REGION}:{}:finding/5ec7fb8e",
        cx.account
    );
    let arn = format!(
        "arn:aws:lambda:{REGION}:{}:function:{}",
        cx.account, p.function
    );
    let want = id.clone();
    vec![mock!(aws_sdk_securityhub::Client::get_findings)
        .match_requests(move |r| {
            r.filters()
                .map(|f| f.id().iter().any(|x| x.value() == Some(want.as_str())))
                .unwrap_or(false)
        })
        .then_output(move || {
            aws_sdk_securityhub::operation::get_findings::GetFindingsOutput::builder()
                .findings(
                    AwsSecurityFinding::builder()
                        .id(&id)
                        .types("TTPs/Execution/Execution:Lambda-MaliciousFile")
                        .severity(Severity::builder().normalized(70).build())
                        .record_state(state.clone())
                        .workflow(Workflow::builder().status(status.clone()).build())
                        .resources(
                            ShResource::builder()
                                .r#type("AwsLambdaFunction")
                                .id(&arn)
                                .build(),
                        )
                        .build(),
                )
                .build()
        })]
}

#[tokio::test]
async fn a_security_hub_finding_contains_its_function_unless_it_is_resolved() {
    let cx = TestContext::new().await;
    let p = cx.alarm_path(&TestContext::throttle_playbook(), "").await;
    let event = event_file(
        &cx,
        &crate_root().join("tests/events/accepted/securityhub-finding.json"),
        &p,
        &[],
    );
    let raw = std::fs::read(&event).expect("event");

    let r = responder(
        &cx,
        &p,
        vec![],
        sh_rules(&cx, &p, RecordState::Active, WorkflowStatus::Resolved),
    )
    .await;
    let o = outcome(&r.respond(&raw).await);
    assert_eq!(o["code"], "finding_inactive", "{o}");
    let r = responder(
        &cx,
        &p,
        vec![],
        sh_rules(&cx, &p, RecordState::Archived, WorkflowStatus::New),
    )
    .await;
    let o = outcome(&r.respond(&raw).await);
    assert_eq!(o["code"], "finding_inactive", "{o}");
    assert_eq!(cx.concurrency(&p.function).await, None);

    let r = responder(
        &cx,
        &p,
        vec![],
        sh_rules(&cx, &p, RecordState::Active, WorkflowStatus::New),
    )
    .await;
    let o = outcome(&r.respond(&raw).await);
    assert_eq!(o["outcome"], "responded", "{o}");
    assert_eq!(o["route"], "securityhub-lambda");
    assert_eq!(cx.concurrency(&p.function).await, Some(0));
}
