//! Issue 10: one runner for one target and for many (same report, same
//! harm-first order), containment that never stalls on an evidence step,
//! and the JSON of `plan`, `run` and `recover` pinned by snapshots.

use serde_json::{json, Value};

use crate::common::{crate_root, evidence_bucket, evidence_doc, TestContext};

fn harm_order() -> String {
    crate_root()
        .join("tests/playbooks/harm-order.yaml")
        .display()
        .to_string()
}

fn flagship() -> String {
    crate_root()
        .join("playbooks/lambda-compromise.yaml")
        .display()
        .to_string()
}

/// `run --yes` of the shipped playbook on `function` into the test's
/// forensic bucket (`ev`), its role quarantined whole; it must exit 0.
fn run_flagship(
    cx: &TestContext,
    ev: &[String],
    incident: &str,
    function: &str,
) -> crate::common::Run {
    let param = format!("function={function}");
    let r = cx.run(&[
        "--output",
        "json",
        "run",
        &flagship(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "-p",
        "cloudtrail_api=false",
        "-p",
        "scope=role",
        "--incident",
        incident,
        "-p",
        &param,
        "--yes",
    ]);
    r.expect_code(0);
    r
}

/// Every key of an object, recursively, as `a.b.c` paths (array items as
/// `[]`), values left out: the shape of a report.
fn shape(v: &Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{path}.{k}");
                out.insert(p.clone());
                // Observed states and params differ by resource, not by
                // the report's shape.
                if !matches!(
                    k.as_str(),
                    "observed" | "params" | "by_operation" | "outputs"
                ) {
                    shape(x, &p, out);
                }
            }
        }
        Value::Array(items) => {
            for x in items {
                shape(x, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

fn shape_of(v: &Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    shape(v, "", &mut out);
    out
}

/// The steps of the applied changes, in the order they were made, each
/// run of the same step counted once (a step makes several changes).
fn applied_order(v: &Value) -> Vec<String> {
    let mut steps: Vec<String> = v["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["step"].as_str().unwrap().to_string())
        .collect();
    steps.dedup();
    steps
}

#[tokio::test]
async fn one_target_and_many_share_the_runner_report_and_harm_first_order() {
    let cx = TestContext::new().await;
    let one = cx.unique("solo");
    let many = [cx.unique("fleet"), cx.unique("fleet")];
    cx.create_function(&one).await;
    cx.create_functions(&many).await;
    let pb = harm_order();

    let p1 = format!("function={one}");
    let single = cx.run(&[
        "--output",
        "json",
        "run",
        &pb,
        "--incident",
        "INC-R1",
        "-p",
        &p1,
        "--yes",
    ]);
    single.expect_code(0);
    let single = single.json();
    let fleet = cx.run(&[
        "--output",
        "json",
        "run",
        &pb,
        "--incident",
        "INC-R2",
        "--target",
        "fleet-*",
        "--yes",
    ]);
    fleet.expect_code(0);
    let fleet = fleet.json();

    assert_eq!(shape_of(&single), shape_of(&fleet), "one report shape");
    assert_eq!(single["targets"].as_array().unwrap().len(), 1);
    assert_eq!(fleet["targets"].as_array().unwrap().len(), 2);
    // The playbook lists `mark` first; the runner throttles first, for
    // every target, then tags.
    assert_eq!(applied_order(&single), ["throttle", "mark"]);
    assert_eq!(applied_order(&fleet), ["throttle", "mark"]);
    let throttles = fleet["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["step"] == "throttle")
        .count();
    assert_eq!(
        throttles, 2,
        "both targets throttled before any tag: {:#}",
        fleet["outcomes"]
    );
    for v in [&single, &fleet] {
        assert_eq!(v["status"], "ok");
        let calls = &v["api_calls"];
        assert!(calls["total"].as_u64().unwrap() > 0, "{calls}");
        assert_eq!(calls["throttled"], 0, "{calls}");
        assert!(
            calls["by_operation"]["lambda:PutFunctionConcurrency"]["calls"]
                .as_u64()
                .unwrap()
                >= 1,
            "{calls}"
        );
    }
    // Read back: every target is throttled.
    assert_eq!(cx.concurrency(&one).await, Some(0));
    for f in &many {
        assert_eq!(cx.concurrency(f).await, Some(0));
    }

    // A target that does not exist fails on its own; the others are
    // contained all the same, and the run says containment is incomplete.
    let late = cx.unique("late");
    cx.create_function(&late).await;
    let r = cx.run(&[
        "--output",
        "json",
        "run",
        &pb,
        "--incident",
        "INC-R3",
        "--target",
        &late,
        "--target",
        "no-such-fn",
        "--yes",
    ]);
    r.expect_code(1);
    let v = r.json();
    assert_eq!(v["status"], "failed");
    assert_eq!(cx.concurrency(&late).await, Some(0), "the other target ran");
    let failed: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap_or_default())
        .collect();
    assert!(
        failed.iter().all(|t| t.contains("no-such-fn")),
        "{failed:?}"
    );
}

#[tokio::test]
async fn an_evidence_step_that_cannot_run_never_keeps_the_function_running() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let f = cx.unique("victim");
    let role_arn = cx.seed_role(&format!("{f}-role")).await;
    cx.create_function_with_role(&f, &role_arn).await;
    cx.seed_public_access(&f).await;
    let param = format!("function={f}");
    // `collect_cloudtrail` left on: LocalStack has no LookupEvents (501).
    let r = cx.run(&[
        "--output",
        "json",
        "run",
        &flagship(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "--incident",
        "INC-R4",
        "-p",
        &param,
        "--yes",
    ]);
    r.expect_code(6);
    let v = r.json();
    assert_eq!(v["status"], "incomplete");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["step"], "collect-cloudtrail");
    assert_eq!(errors[0]["stops_harm"], false);
    assert!(
        errors[0]["hint"].as_str().unwrap().contains("lookup_api"),
        "{}",
        errors[0]["hint"]
    );
    // Contained, read back from AWS, and every check passed.
    assert_eq!(cx.concurrency(&f).await, Some(0));
    let (url, statements) = cx.public_snapshot(&f).await;
    assert_eq!(url, None);
    assert_eq!(statements.keys().collect::<Vec<_>>(), ["s3-orders-bucket"]);
    let checks = v["verification"].as_array().unwrap();
    assert!(!checks.is_empty());
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:#?}");

    // The text view names the failed step and its hint on stderr.
    let r = cx.run(&[
        "run",
        &flagship(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "--incident",
        "INC-R4",
        "-p",
        &param,
        "--yes",
    ]);
    r.expect_code(6);
    assert!(
        r.stderr.contains("error: step `collect-cloudtrail`") && r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("Status: containment holds"),
        "{}",
        r.stdout
    );
}

/// Issue 15: under `run --yes` the shipped playbook throttles a function
/// as soon as its GetFunction is answered and denies its role as soon as
/// the indicators are planned, ahead of the evidence it preserves first
/// (neither removes an attacker artifact); public access is closed only
/// after the indicators are in the bucket. The
/// configuration in the bucket is what the attacker left (the plan's
/// reading): concurrency 5, not the throttle's 0, the public URL, not
/// the closed one (applying the evidence step read again after the harm
/// pass and wrote that), and the role's policies without the deny.
#[tokio::test]
async fn the_throttle_and_the_deny_go_ahead_of_the_evidence_which_keeps_what_the_attacker_left() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let f = cx.unique("early");
    let role_arn = cx.seed_role(&format!("{f}-role")).await;
    cx.create_function_with_role(&f, &role_arn).await;
    cx.seed_public_access(&f).await;
    cx.set_concurrency(&f, 5).await;
    let r = run_flagship(&cx, &ev, "INC-R5", &f);
    let v = r.json();
    let order = applied_order(&v);
    let at = |step: &str| {
        order
            .iter()
            .position(|s| s == step)
            .unwrap_or_else(|| panic!("no `{step}` applied: {order:?}"))
    };
    // Both applied while the plan was being made, so before anything
    // pass 1 applies after it, the evidence first.
    assert!(at("throttle") < at("preserve-indicators"), "{order:?}");
    assert!(
        at("quarantine-role") < at("preserve-indicators"),
        "{order:?}"
    );
    assert!(
        at("preserve-indicators") < at("close-public-access"),
        "evidence before removal: {order:?}"
    );

    // The evidence is written as the plan read it, not read again before
    // writing: one GetFunctionConfiguration, ListTags for the tags
    // document, the tag step's read and its own.
    let calls = |op: &str| {
        v["api_calls"]["by_operation"][op]["calls"]
            .as_u64()
            .unwrap_or(0)
    };
    assert_eq!(
        calls("lambda:GetFunctionConfiguration"),
        1,
        "{:#}",
        v["api_calls"]
    );
    assert_eq!(
        calls("lambda:GetFunctionUrlConfig"),
        1,
        "{:#}",
        v["api_calls"]
    );

    // Read back: throttled and closed.
    assert_eq!(cx.concurrency(&f).await, Some(0));
    let (url, _) = cx.public_snapshot(&f).await;
    assert_eq!(url, None);
    // The bucket keeps what the attacker left: 5, and the public URL.
    let objects = cx.bucket_objects(evidence_bucket(&ev)).await;
    let doc = |suffix: &str| evidence_doc(&objects, "INC-R5", &f, suffix);
    let url = doc("config/function-url.json");
    assert_eq!(url["AuthType"], "NONE", "{url:#}");
    let policy = doc("config/resource-policy.json");
    let sids: Vec<&str> = policy["Policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|st| st["Sid"].as_str())
        .collect();
    assert!(sids.contains(&"FunctionURLAllowPublicAccess"), "{policy:#}");
    let concurrency = doc("config/concurrency.json");
    assert_eq!(
        concurrency["ReservedConcurrentExecutions"], 5,
        "{concurrency:#}"
    );
    // The role as the attacker left it: its own policies, without the
    // quarantine's deny (applied early too) and with the managed policies
    // pass 2 detached.
    let role = doc("config/execution-role.json");
    let inline: Vec<&String> = role["InlinePolicies"].as_object().unwrap().keys().collect();
    assert_eq!(inline, ["read-table", "write-logs"], "{role:#}");
    assert_eq!(
        role["AttachedPolicies"].as_array().unwrap().len(),
        2,
        "{role:#}"
    );
    let (attached, now_inline) = {
        let r = format!("{f}-role");
        let a = cx
            .iam
            .list_attached_role_policies()
            .role_name(&r)
            .send()
            .await
            .unwrap();
        let i = cx
            .iam
            .list_role_policies()
            .role_name(&r)
            .send()
            .await
            .unwrap();
        (a.attached_policies().len(), i.policy_names().to_vec())
    };
    assert_eq!(attached, 0, "quarantined: every managed policy detached");
    assert!(
        now_inline.iter().any(|n| n == "firebreak-quarantine"),
        "{now_inline:?}"
    );
}

/// Contained first (`tests/playbooks/contain-only.yaml`: throttled from
/// 5, the role's deny, its managed policies detached), the shipped
/// playbook after, under the same incident: the evidence is read after
/// the containment, and still shows the concurrency and the role as the
/// attacker left them, put back from the journal and saying so.
#[tokio::test]
async fn evidence_read_after_containment_gives_what_the_attacker_left() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let f = cx.unique("later");
    let role = format!("{f}-role");
    let role_arn = cx.seed_role(&role).await;
    cx.create_function_with_role(&f, &role_arn).await;
    cx.set_concurrency(&f, 5).await;
    cx.seed_public_access(&f).await;
    let param = format!("function={f}");
    let contain = crate_root().join("tests/playbooks/contain-only.yaml");
    cx.run(&[
        "run",
        contain.to_str().unwrap(),
        "--incident",
        "INC-R6",
        "-p",
        &param,
        "--yes",
    ])
    .expect_code(0);
    run_flagship(&cx, &ev, "INC-R6", &f);
    let objects = cx.bucket_objects(evidence_bucket(&ev)).await;
    let doc = evidence_doc(&objects, "INC-R6", &f, "config/execution-role.json");
    let inline: Vec<&String> = doc["InlinePolicies"].as_object().unwrap().keys().collect();
    assert_eq!(inline, ["read-table", "write-logs"], "{doc:#}");
    let attached: Vec<&str> = doc["AttachedPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PolicyArn"].as_str().unwrap())
        .collect();
    assert_eq!(attached.len(), 2, "{doc:#}");
    let restored = doc["RestoredFromJournal"]["attributes"].as_array().unwrap();
    assert!(
        restored
            .iter()
            .any(|a| a == "inline_policy:firebreak-quarantine"),
        "{doc:#}"
    );
    // The public statement and the URL the containment removed, as the
    // attacker left them; the legitimate S3 statement as read.
    let doc = evidence_doc(&objects, "INC-R6", &f, "config/resource-policy.json");
    let mut sids: Vec<&str> = doc["Policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|st| st["Sid"].as_str())
        .collect();
    sids.sort_unstable();
    assert_eq!(
        sids,
        ["FunctionURLAllowPublicAccess", "anyone", "s3-orders-bucket"],
        "{doc:#}"
    );
    let mut restored: Vec<&str> = doc["RestoredFromJournal"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    restored.sort_unstable();
    assert_eq!(
        restored,
        [
            "policy_statement:FunctionURLAllowPublicAccess",
            "policy_statement:anyone"
        ],
        "{doc:#}"
    );
    let doc = evidence_doc(&objects, "INC-R6", &f, "config/function-url.json");
    assert_eq!(doc["AuthType"], "NONE", "{doc:#}");
    assert_eq!(
        doc["RestoredFromJournal"]["attributes"],
        json!(["function_url"]),
        "{doc:#}"
    );
    let (url, statements) = cx.public_snapshot(&f).await;
    assert_eq!(url, None);
    assert!(
        !statements.contains_key("FunctionURLAllowPublicAccess")
            && !statements.contains_key("anyone"),
        "{statements:?}"
    );
    let doc = evidence_doc(&objects, "INC-R6", &f, "config/concurrency.json");
    assert_eq!(doc["ReservedConcurrentExecutions"], 5, "{doc:#}");
    assert_eq!(
        doc["RestoredFromJournal"]["attributes"][0], "reserved_concurrency",
        "{doc:#}"
    );
    assert_eq!(cx.concurrency(&f).await, Some(0));
    // AWS itself still holds the quarantine.
    let now = cx
        .iam
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert!(now.attached_policies().is_empty());
}

/// Stable text for a snapshot: the test's account, times, durations,
/// hashes, run ids and paths replaced.
fn redact(cx: &TestContext, v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap();
    let root = crate_root().display().to_string();
    text.replace(&cx.account, "[account]")
        .replace(&root, "[crate]")
}

fn snapshot(name: &str, cx: &TestContext, v: &Value) {
    insta::with_settings!({
        snapshot_path => "snapshots",
        prepend_module_to_snapshot => false,
        filters => vec![
            (r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)", "[time]"),
            (r#""(plan|apply|verify|contained|elapsed|aws|paced|waiting|own)_ms": \d+"#, r#""${1}_ms": "[ms]""#),
            (r#""(calls|total|mutating|throttled|refused)": \d+"#, r#""$1": "[n]""#),
            (r"[0-9a-f]{64}", "[sha256]"),
            (r"run-\d{8}T[\d.]+Z-\d+", "[run]"),
        ],
    }, {
        insta::assert_snapshot!(name, redact(cx, v));
    });
}

#[tokio::test]
async fn plan_run_and_recover_json_is_pinned() {
    let cx = TestContext::new().await;
    let f = "snap-fn";
    cx.create_function(f).await;
    let pb = harm_order();
    let p = format!("function={f}");
    let plan = cx.run(&[
        "--output",
        "json",
        "plan",
        &pb,
        "--incident",
        "INC-SNAP",
        "-p",
        &p,
    ]);
    plan.expect_code(2);
    snapshot("plan_json", &cx, &plan.json());
    let run = cx.run(&[
        "--output",
        "json",
        "run",
        &pb,
        "--incident",
        "INC-SNAP",
        "-p",
        &p,
        "--yes",
    ]);
    run.expect_code(0);
    // Time to contained from the process's start, split by the call
    // path's clocks: every millisecond is AWS's, pacing's or ours.
    let t = &run.json()["timings"];
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a number in {t}"));
    let split = &t["to_contained"];
    assert!(n(&split["elapsed_ms"]) >= n(&t["contained_ms"]), "{t}");
    assert!(n(&split["aws_ms"]) > 0, "no AWS round trip counted: {t}");
    // Every millisecond is waiting on AWS (queued or in flight) or ours.
    let parts = n(&split["waiting_ms"]) + n(&split["own_ms"]);
    assert!(n(&split["elapsed_ms"]).abs_diff(parts) <= 2, "{t}");
    snapshot("run_json", &cx, &run.json());
    let recover = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-SNAP",
        "--yes",
    ]);
    recover.expect_code(0);
    snapshot("recover_json", &cx, &recover.json());
}
