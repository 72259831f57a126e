//! Secret values never leave the function: environment variable values do
//! not appear in output, the journal, the audit trail or saved plans.

use crate::common::TestContext;

#[tokio::test]
async fn environment_values_never_reach_output_journal_audit_or_plans() {
    let cx = TestContext::new().await;
    let f = cx.unique("secret");
    let secret = "sk-live-0123456789-do-not-leak";
    cx.create_function_with_env(&f, &[("PAYMENT_API_KEY", secret), ("STAGE", "prod")])
        .await;
    let pb = TestContext::throttle_playbook().display().to_string();
    let param = format!("function={f}");

    let plan = cx.run(&[
        "--output",
        "json",
        "plan",
        &pb,
        "--incident",
        "INC-SEC",
        "-p",
        &param,
        "--out",
        "plan.json",
    ]);
    plan.expect_code(2);
    let names = &plan.json()["targets"][0]["steps"][0]["outputs"]["environment_variable_names"];
    assert_eq!(
        names,
        &serde_json::json!(["PAYMENT_API_KEY", "STAGE"]),
        "names are reported"
    );
    let text = cx.run(&[
        "-vv",
        "run",
        &pb,
        "--incident",
        "INC-SEC",
        "-p",
        &param,
        "--yes",
    ]);
    text.expect_code(0);

    let mut everything = vec![plan.stdout, plan.stderr, text.stdout, text.stderr];
    everything.push(std::fs::read_to_string(cx.path("plan.json")).unwrap());
    for file in ["audit.jsonl", "journal.jsonl"] {
        everything.push(std::fs::read_to_string(cx.incident_dir("INC-SEC").join(file)).unwrap());
    }
    for (i, text) in everything.iter().enumerate() {
        assert!(!text.contains(secret), "secret value leaked in output #{i}");
    }
}
