//! Bad input and broken environments: a clear error, a non-zero exit, and
//! nothing half-applied that the journal does not record.

use crate::common::TestContext;

fn pb() -> String {
    TestContext::throttle_playbook().display().to_string()
}

#[tokio::test]
async fn a_missing_function_is_named_with_the_fix() {
    let cx = TestContext::new().await;
    let r = cx.run(&[
        "run",
        &pb(),
        "--incident",
        "INC-E1",
        "-p",
        "function=no-such-fn",
        "--yes",
    ]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("function `no-such-fn` does not exist"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    let journal = cx.incident_dir("INC-E1").join("journal.jsonl");
    assert_eq!(
        std::fs::read_to_string(journal).unwrap_or_default(),
        "",
        "nothing was attempted"
    );
    cx.run(&["audit", "verify", ".firebreak/incidents/INC-E1"])
        .expect_code(0);
}

#[tokio::test]
async fn an_arn_of_another_account_or_region_is_refused_before_any_lambda_call() {
    let cx = TestContext::new().await;
    let other = "arn:aws:lambda:us-east-1:123456789012:function:victim";
    let r = cx.run(&[
        "plan",
        &pb(),
        "--incident",
        "INC-E2",
        "-p",
        &format!("function={other}"),
    ]);
    r.expect_code(1);
    assert!(
        r.stderr
            .contains(&format!("the credentials are for account {}", cx.account)),
        "{}",
        r.stderr
    );
    let region = format!("arn:aws:lambda:eu-west-1:{}:function:victim", cx.account);
    let r = cx.run(&[
        "plan",
        &pb(),
        "--incident",
        "INC-E2",
        "-p",
        &format!("function={region}"),
    ]);
    r.expect_code(1);
    assert!(r.stderr.contains("--region eu-west-1"), "{}", r.stderr);
}

#[tokio::test]
async fn an_endpoint_that_is_down_says_so() {
    let cx = TestContext::new().await;
    let r = cx.run(&[
        "--endpoint-url",
        "http://127.0.0.1:9",
        "plan",
        &pb(),
        "--incident",
        "INC-E3",
        "-p",
        "function=x",
    ]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("could not connect") || r.stderr.contains("did not answer"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("localstack/start.sh"), "{}", r.stderr);
}

#[tokio::test]
async fn no_credentials_says_how_to_provide_them() {
    let cx = TestContext::new().await;
    let out = cx
        .firebreak()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", cx.path("none-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", cx.path("none-credentials"))
        .args(["plan", &pb(), "--incident", "INC-E4", "-p", "function=x"])
        .output()
        .unwrap();
    let r = crate::common::Run::from(out);
    r.expect_code(1);
    assert!(
        r.stderr.contains("no usable AWS credentials"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("AWS_PROFILE"), "{}", r.stderr);
}

#[tokio::test]
async fn a_bad_param_value_fails_before_any_aws_call() {
    let cx = TestContext::new().await;
    std::fs::write(
        cx.path("limit.yaml"),
        "apiVersion: firebreak/v1\nkind: Playbook\nname: limit\nparams:\n  function: {type: string, required: true}\n  limit: {type: integer, default: 0}\nphases:\n  contain:\n    - id: throttle\n      action: lambda.set_concurrency\n      with: {function: \"${params.function}\", value: \"${params.limit}\"}\n",
    )
    .unwrap();
    // The endpoint is down: reaching AWS at all would fail differently.
    let r = cx.run(&[
        "--endpoint-url",
        "http://127.0.0.1:9",
        "plan",
        "limit.yaml",
        "--incident",
        "INC-E5",
        "-p",
        "function=x",
        "-p",
        "limit=-3",
    ]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("`value` must be at least 0, found -3"),
        "{}",
        r.stderr
    );
    let r = cx.run(&[
        "plan",
        "limit.yaml",
        "--incident",
        "INC-E5",
        "-p",
        "function=x",
        "-p",
        "limit=lots",
    ]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("param `limit` must be an integer"),
        "{}",
        r.stderr
    );
    let r = cx.run(&["plan", "limit.yaml", "--incident", "INC-E5"]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("param `function` is required"),
        "{}",
        r.stderr
    );
    let r = cx.run(&[
        "plan",
        "limit.yaml",
        "--incident",
        "../escape",
        "-p",
        "function=x",
    ]);
    r.expect_code(1);
    assert!(r.stderr.contains("invalid incident id"), "{}", r.stderr);
}

#[tokio::test]
async fn json_errors_are_objects_with_a_summary() {
    let cx = TestContext::new().await;
    let r = cx.run(&[
        "--output",
        "json",
        "plan",
        &pb(),
        "--incident",
        "INC-E6",
        "-p",
        "function=no-such-fn",
    ]);
    // Every step failed: the plan says which and why, and nothing stops harm.
    r.expect_code(1);
    let v = r.json();
    assert_eq!(v["kind"], "plan");
    assert_eq!(v["summary"]["changes"], 0);
    assert_eq!(v["summary"]["failed"], 2);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{v:#}");
    for e in errors {
        assert!(
            e["message"].as_str().unwrap().contains("does not exist"),
            "{e}"
        );
        assert!(!e["hint"].as_str().unwrap().is_empty(), "{e}");
    }
    assert_eq!(errors[1]["stops_harm"], true);

    // An error before any plan (a bad incident id) is an error object.
    let r = cx.run(&[
        "--output",
        "json",
        "plan",
        &pb(),
        "--incident",
        "../x",
        "-p",
        "function=f",
    ]);
    r.expect_code(1);
    let v = r.json();
    assert_eq!(v["kind"], "error");
    assert_eq!(v["error"]["class"], "input");
    assert_eq!(v["summary"]["changes"], 0);
}
