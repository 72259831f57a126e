//! plan → run → second run → recover, end to end against LocalStack.

use crate::common::TestContext;
use aws_sdk_lambda::operation::invoke::InvokeError;

fn pb() -> String {
    TestContext::throttle_playbook().display().to_string()
}

#[tokio::test]
async fn plan_shows_one_change_and_changes_nothing() {
    let cx = TestContext::new().await;
    let f = cx.unique("plan");
    let arn = cx.create_function(&f).await;
    let param = format!("function={f}");

    let text = cx.run(&["plan", &pb(), "--incident", "INC-P", "-p", &param]);
    text.expect_code(2);
    assert!(text.stdout.contains(&format!("+ {arn}")), "{}", text.stdout);
    assert!(
        text.stdout.contains("reserved_concurrency: (none) → 0"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("Plan: 1 change: 1 to create"),
        "{}",
        text.stdout
    );

    let json = cx.run(&[
        "--output",
        "json",
        "plan",
        &pb(),
        "--incident",
        "INC-P",
        "-p",
        &param,
    ]);
    json.expect_code(2);
    let v = json.json();
    assert_eq!(v["summary"]["changes"], 1);
    assert_eq!(v["targets"][0]["steps"][1]["changes"][0]["after"], 0);
    assert_eq!(
        v["targets"][0]["steps"][1]["changes"][0]["before"],
        serde_json::Value::Null
    );

    assert_eq!(
        cx.concurrency(&f).await,
        None,
        "plan must not change anything"
    );
    cx.run(&["audit", "verify", ".firebreak/incidents/INC-P"])
        .expect_code(0);
    // The same trail by incident id, in the state store.
    let by_id = cx.run(&["audit", "verify", "--incident", "INC-P"]);
    by_id.expect_code(0);
    assert!(by_id.stdout.starts_with("ok: "), "{}", by_id.stdout);
    cx.run(&["audit", "verify", "--incident", "INC-NEVER"])
        .expect_code(1);
}

#[tokio::test]
async fn run_throttles_verifies_and_a_second_run_changes_nothing() {
    let cx = TestContext::new().await;
    let f = cx.unique("run");
    cx.create_function(&f).await;
    let param = format!("function={f}");

    let first = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "--incident",
        "INC-R",
        "-p",
        &param,
        "--yes",
    ]);
    first.expect_code(0);
    let v = first.json();
    assert_eq!(v["summary"]["changes"], 1);
    assert_eq!(v["summary"]["applied"], 1);
    assert_eq!(v["summary"]["checks_failed"], 0);
    let checks: Vec<&str> = v["verification"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["reserved concurrency", "invoke is throttled"]);
    assert_eq!(cx.concurrency(&f).await, Some(0));

    // Independently of firebreak's own check: Invoke is refused.
    let invoked = cx.lambda.invoke().function_name(&f).send().await;
    assert!(
        matches!(
            invoked.as_ref().map_err(|e| e.as_service_error()),
            Err(Some(InvokeError::TooManyRequestsException(_)))
        ),
        "{invoked:?}"
    );

    let second = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "--incident",
        "INC-R",
        "-p",
        &param,
        "--yes",
    ]);
    second.expect_code(0);
    let v = second.json();
    assert_eq!(v["summary"]["changes"], 0);
    assert_eq!(v["summary"]["applied"], 0);
    assert_eq!(v["summary"]["satisfied"], 1);

    let audit = cx.audit("INC-R");
    assert_eq!(
        TestContext::audit_events(&audit, "applied", "throttle").len(),
        1
    );
    assert!(audit
        .iter()
        .all(|r| r["caller"]["account"] == cx.account.as_str()));
    cx.run(&["audit", "verify", ".firebreak/incidents/INC-R"])
        .expect_code(0);
}

#[tokio::test]
async fn recover_restores_no_setting_when_there_was_none() {
    let cx = TestContext::new().await;
    let f = cx.unique("rec-none");
    cx.create_function(&f).await;
    let param = format!("function={f}");
    cx.run(&["run", &pb(), "--incident", "INC-N", "-p", &param, "--yes"])
        .expect_code(0);
    assert_eq!(cx.concurrency(&f).await, Some(0));

    let rec = cx.run(&[
        "run",
        &pb(),
        "--incident",
        "INC-N",
        "-p",
        &param,
        "--yes",
        "--phase",
        "recover",
    ]);
    rec.expect_code(0);
    assert!(
        rec.stdout.contains("reserved_concurrency: 0 → (none)"),
        "{}",
        rec.stdout
    );
    assert_eq!(cx.concurrency(&f).await, None);
    // The function answers again.
    cx.lambda
        .invoke()
        .function_name(&f)
        .send()
        .await
        .expect("invoke after recover");

    let again = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "--incident",
        "INC-N",
        "-p",
        &param,
        "--yes",
        "--phase",
        "recover",
    ]);
    again.expect_code(0);
    assert_eq!(again.json()["summary"]["changes"], 0);
}

#[tokio::test]
async fn recover_restores_the_number_it_had() {
    let cx = TestContext::new().await;
    let f = cx.unique("rec-num");
    cx.create_function(&f).await;
    cx.set_concurrency(&f, 5).await;
    let param = format!("function={f}");
    let run = cx.run(&["run", &pb(), "--incident", "INC-5", "-p", &param, "--yes"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("reserved_concurrency: 5 → 0"),
        "{}",
        run.stdout
    );

    cx.run(&[
        "run",
        &pb(),
        "--incident",
        "INC-5",
        "-p",
        &param,
        "--yes",
        "--phase",
        "recover",
    ])
    .expect_code(0);
    assert_eq!(cx.concurrency(&f).await, Some(5));
}

#[tokio::test]
async fn recover_of_another_incident_restores_nothing() {
    let cx = TestContext::new().await;
    let f = cx.unique("rec-other");
    cx.create_function(&f).await;
    let param = format!("function={f}");
    cx.run(&["run", &pb(), "--incident", "INC-A", "-p", &param, "--yes"])
        .expect_code(0);
    let rec = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "--incident",
        "INC-B",
        "-p",
        &param,
        "--yes",
        "--phase",
        "recover",
    ]);
    rec.expect_code(0);
    let v = rec.json();
    assert_eq!(v["summary"]["changes"], 0);
    assert!(v["targets"][0]["steps"][1]["note"]
        .as_str()
        .unwrap()
        .contains("nothing to restore"));
    assert_eq!(cx.concurrency(&f).await, Some(0));
}

#[tokio::test]
async fn run_without_a_terminal_or_yes_refuses_and_changes_nothing() {
    let cx = TestContext::new().await;
    let f = cx.unique("noyes");
    cx.create_function(&f).await;
    let r = cx.run(&[
        "run",
        &pb(),
        "--incident",
        "INC-Y",
        "-p",
        &format!("function={f}"),
    ]);
    r.expect_code(3);
    assert!(r.stderr.contains("no terminal to ask"), "{}", r.stderr);
    assert_eq!(cx.concurrency(&f).await, None);
}

#[tokio::test]
async fn a_function_named_by_arn_is_the_same_function() {
    let cx = TestContext::new().await;
    let f = cx.unique("byarn");
    let arn = cx.create_function(&f).await;
    cx.run(&[
        "run",
        &pb(),
        "--incident",
        "INC-ARN",
        "-p",
        &format!("function={arn}"),
        "--yes",
    ])
    .expect_code(0);
    assert_eq!(cx.concurrency(&f).await, Some(0));
    // By name now: already satisfied, same target.
    let v = cx.run(&[
        "--output",
        "json",
        "plan",
        &pb(),
        "--incident",
        "INC-ARN",
        "-p",
        &format!("function={f}"),
    ]);
    v.expect_code(0);
    assert_eq!(v.json()["targets"][0]["steps"][1]["target"], arn.as_str());
}
