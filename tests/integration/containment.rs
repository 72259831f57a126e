//! Issue 4: quarantine the execution role, then `recover` restores exactly,
//! holding back what would re-open access. Against LocalStack.

use serde_json::{json, Value};

use crate::common::TestContext;

fn pb() -> String {
    crate::common::crate_root()
        .join("playbooks/lambda-compromise.yaml")
        .display()
        .to_string()
}

fn step<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["targets"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {v}"))
}

fn names(v: &Value, status: &str) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == status)
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn contain_then_recover_restores_the_role_exactly_holding_back_broad_grants() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let f = cx.unique("victim");
    let role = format!("{f}-role");
    let role_arn = cx.seed_role(&role).await;
    cx.create_function_with_role(&f, &role_arn).await;
    cx.set_concurrency(&f, 7).await;
    let before = cx.role_snapshot(&role).await;
    assert_eq!((before.0.len(), before.1.len()), (2, 2));
    let param = format!("function={f}");

    // Contain: every verification passes.
    let run = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-Q",
        "-p",
        &param,
        "--yes",
    ]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["summary"]["checks_failed"], 0, "{}", v["verification"]);
    let checks: Vec<&str> = v["verification"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        checks.contains(&"role carries no other policy"),
        "{checks:?}"
    );
    let (attached, inline) = cx.role_snapshot(&role).await;
    assert!(attached.is_empty(), "{attached:?}");
    assert_eq!(
        inline.keys().collect::<Vec<_>>(),
        ["firebreak-quarantine", "firebreak-revoke-sessions"]
    );
    assert_eq!(
        inline["firebreak-quarantine"]["Statement"][0]["Effect"],
        "Deny"
    );
    assert!(
        inline["firebreak-revoke-sessions"]["Statement"][0]["Condition"]["DateLessThan"]
            ["aws:TokenIssueTime"]
            .is_string()
    );
    assert_eq!(cx.concurrency(&f).await, Some(0));

    // A second run plans nothing.
    let again = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-Q",
        "-p",
        &param,
        "--yes",
    ]);
    again.expect_code(0);
    assert_eq!(again.json()["summary"]["changes"], 0);

    // Dry run of recover changes nothing.
    let dry = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-Q",
        "--dry-run",
    ]);
    dry.expect_code(2);
    assert_eq!(cx.role_snapshot(&role).await.1.len(), 2);

    // Recover without flags: everything but the broad managed policy.
    let rec = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-Q",
        "--yes",
    ]);
    rec.expect_code(0);
    let v = rec.json();
    let held = names(&v, "held");
    assert_eq!(held.len(), 1, "{v}");
    assert!(
        held[0].ends_with(&format!("{role}-admin@{role}")),
        "{held:?}"
    );
    let held_item = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "held")
        .unwrap();
    assert!(
        held_item["reason"]
            .as_str()
            .unwrap()
            .contains("broad permissions"),
        "{held_item}"
    );
    assert_eq!(held_item["recorded_by_step"], "quarantine-role");
    let (attached, inline) = cx.role_snapshot(&role).await;
    assert_eq!(attached.len(), 1);
    assert!(attached[0].ends_with("-read-bucket"));
    assert_eq!(
        inline, before.1,
        "inline documents restored exactly, denies removed"
    );
    assert_eq!(cx.concurrency(&f).await, Some(7));

    // --include-risky restores the rest; the role is exactly as it was.
    let rec = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-Q",
        "--yes",
        "--include-risky",
    ]);
    rec.expect_code(0);
    assert_eq!(rec.json()["summary"]["restored"], 1);
    assert_eq!(cx.role_snapshot(&role).await, before);

    // Nothing left to do, nothing undone twice.
    let last = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-Q",
        "--yes",
        "--include-risky",
    ]);
    last.expect_code(0);
    assert_eq!(last.json()["summary"]["changes"], 0);
    cx.run(&["audit", "verify", ".firebreak/incidents/INC-Q"])
        .expect_code(0);
}

#[tokio::test]
async fn recover_reports_what_someone_else_changed_and_honours_exclude() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let f = cx.unique("drift");
    let role = format!("{f}-role");
    let role_arn = cx.seed_role(&role).await;
    cx.create_function_with_role(&f, &role_arn).await;
    cx.run(&[
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-D",
        "-p",
        &format!("function={f}"),
        "--yes",
    ])
    .expect_code(0);
    // Someone re-creates an inline policy by hand with a different document.
    cx.iam
        .put_role_policy()
        .role_name(&role)
        .policy_name("read-table")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:Scan","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    // An --exclude that names no item leaves every other item alone.
    // A mistyped --exclude is an error, not a silent restore of the item.
    let typo = cx.run(&[
        "recover",
        "--incident",
        "INC-D",
        "--yes",
        "--exclude",
        "nothing@none",
    ]);
    typo.expect_code(1);
    assert!(
        typo.stderr.contains("--exclude names no item")
            && typo.stderr.contains("reserved_concurrency@"),
        "{}",
        typo.stderr
    );
    let rec = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-D",
        "--yes",
    ]);
    rec.expect_code(0);
    let v = rec.json();
    let drifted = names(&v, "drifted");
    assert_eq!(drifted, [format!("inline_policy:read-table@{role}")], "{v}");
    let (_, inline) = cx.role_snapshot(&role).await;
    assert_eq!(
        inline["read-table"]["Statement"][0]["Action"], "dynamodb:Scan",
        "not guessed over"
    );

    let f2 = cx.unique("excl");
    let role2 = format!("{f2}-role");
    let role2_arn = cx.seed_role(&role2).await;
    cx.create_function_with_role(&f2, &role2_arn).await;
    cx.run(&[
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-X",
        "-p",
        &format!("function={f2}"),
        "--yes",
    ])
    .expect_code(0);
    let id = format!("reserved_concurrency@{f2}");
    let rec = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-X",
        "--yes",
        "--exclude",
        &id,
    ]);
    rec.expect_code(0);
    assert_eq!(names(&rec.json(), "excluded"), [id]);
    assert_eq!(
        cx.concurrency(&f2).await,
        Some(0),
        "excluded item left as it is"
    );
}

#[tokio::test]
async fn a_shared_role_is_held_for_a_decision_while_everything_else_is_contained() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let f = cx.unique("shared");
    let other = cx.unique("bystander");
    let role = format!("{f}-role");
    let role_arn = cx.seed_role(&role).await;
    let f_arn = cx.create_function_with_role(&f, &role_arn).await;
    let other_arn = cx.create_function_with_role(&other, &role_arn).await;
    let before = cx.role_snapshot(&role).await;
    let param = format!("function={f}");
    let pb_path = pb();

    // The attacker's doors on the victim: a public URL and statement, an
    // enabled event source.
    cx.seed_public_access(&f).await;
    let uuid = cx.create_sqs_mapping(&f).await;
    let run_s1 = |extra: &[&str]| {
        let mut args = vec![
            "--output",
            "json",
            "run",
            &pb_path,
            "-p",
            &ev[0],
            "-p",
            &ev[1],
            "-p",
            &ev[2],
            "--incident",
            "INC-S1",
            "-p",
            &param,
            "--yes",
        ];
        args.extend_from_slice(extra);
        cx.run(&args)
    };

    // The plan names the decision and the exact flags that make it.
    let r = cx.run(&[
        "plan",
        &pb_path,
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-S1",
        "-p",
        &param,
    ]);
    r.expect_code(2);
    assert!(r.stdout.contains("Decisions pending"), "{}", r.stdout);
    assert!(
        r.stdout.contains("--param scope=role") && r.stdout.contains("--param scope=function"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&other_arn), "{}", r.stdout);

    // scope ask (the default): the role step is held, everything else that
    // stops harm runs (contract 14), and the exit code says a decision is
    // pending.
    let r = run_s1(&[]);
    r.expect_code(5);
    let v = r.json();
    assert_eq!(v["status"], "decision_pending");
    assert_eq!(step(&v, "quarantine-role")["status"], "held");
    let d = &v["decisions"][0];
    assert_eq!(d["step"], "quarantine-role");
    assert!(
        d["question"]
            .as_str()
            .unwrap()
            .contains("shared by 1 other function(s)"),
        "{d}"
    );
    assert_eq!(d["affects"], json!([other_arn]));
    let how: Vec<&str> = d["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["how"].as_str().unwrap())
        .collect();
    assert_eq!(how, ["--param scope=role", "--param scope=function"]);
    // Read back from AWS: contained but for the role.
    assert_eq!(cx.concurrency(&f).await, Some(0), "throttled all the same");
    let (url, statements) = cx.public_snapshot(&f).await;
    assert_eq!(url, None, "the public URL is gone");
    assert_eq!(
        statements.keys().collect::<Vec<_>>(),
        ["s3-orders-bucket"],
        "only the legitimate statement stays"
    );
    cx.wait_mapping_state(&uuid, "Disabled").await;
    assert_eq!(
        cx.role_snapshot(&role).await,
        before,
        "the role is untouched"
    );
    assert_eq!(cx.concurrency(&other).await, None, "the bystander runs on");

    // Deciding completes it; a further run has nothing left to do.
    let r = run_s1(&["-p", "scope=role"]);
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert!(v["decisions"].as_array().unwrap().is_empty());
    let (_, inline) = cx.role_snapshot(&role).await;
    assert!(inline.contains_key("firebreak-quarantine"), "{inline:?}");
    let r = cx.run(&[
        "--output",
        "json",
        "plan",
        &pb_path,
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-S1",
        "-p",
        &param,
        "-p",
        "scope=role",
    ]);
    r.expect_code(0);
    assert_eq!(r.json()["summary"]["changes"], 0);
    cx.run(&[
        "recover",
        "--incident",
        "INC-S1",
        "--yes",
        "--include-risky",
    ])
    .expect_code(0);
    assert_eq!(cx.role_snapshot(&role).await, before);

    // scope function: a deny scoped to the compromised function; the
    // bystander keeps its policies.
    let r = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-S2",
        "-p",
        &param,
        "-p",
        "scope=function",
        "--yes",
    ]);
    r.expect_code(0);
    let v = r.json();
    // `run --yes` put the deny on without waiting for the region's
    // functions, and names them after containment.
    let note = step(&v, "quarantine-role")["note"].as_str().unwrap();
    assert!(
        note.contains("lambda:SourceFunctionArn") && note.contains("blast_radius"),
        "{note}"
    );
    assert_eq!(v["blast_radius"][0]["step"], "quarantine-role", "{v}");
    let mut both = vec![f_arn.clone(), other_arn.clone()];
    both.sort();
    assert_eq!(v["blast_radius"][0]["functions"], json!(both), "{v}");
    let (attached, inline) = cx.role_snapshot(&role).await;
    assert_eq!(attached, before.0, "policies stay attached");
    assert_eq!(
        inline["firebreak-quarantine"]["Statement"][0]["Condition"]["ArnEquals"]
            ["lambda:SourceFunctionArn"],
        json!(f_arn)
    );
    cx.run(&[
        "recover",
        "--incident",
        "INC-S2",
        "--yes",
        "--include-risky",
    ])
    .expect_code(0);
    assert_eq!(cx.role_snapshot(&role).await, before);

    // scope role: the whole role is quarantined, and the plan names who else is hit.
    let r = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-S3",
        "-p",
        &param,
        "-p",
        "scope=role",
        "--yes",
    ]);
    r.expect_code(0);
    let v = r.json();
    // Named after containment, not in the plan: a step reading
    // `shared_with` would fail to plan rather than read an empty list.
    assert!(
        step(&v, "quarantine-role")["outputs"]
            .get("shared_with")
            .is_none(),
        "{v}"
    );
    assert!(
        v["blast_radius"][0]["functions"]
            .as_array()
            .is_some_and(|f| f.contains(&json!(other_arn))),
        "{v}"
    );
    let trail = cx.audit("INC-S3");
    let named = TestContext::audit_events(&trail, "blast_radius", "quarantine-role");
    assert_eq!(named.len(), 1, "{trail:?}");
    assert_eq!(
        named[0]["data"]["functions_using_role"],
        v["blast_radius"][0]["functions"]
    );
    let (attached, inline) = cx.role_snapshot(&role).await;
    assert!(attached.is_empty());
    assert!(inline["firebreak-quarantine"]["Statement"][0]
        .get("Condition")
        .is_none());
}

#[tokio::test]
async fn sigkill_at_the_role_mutation_then_rerun_and_recover_exactly() {
    for point in [
        "before_apply:quarantine-role",
        "after_apply:quarantine-role",
    ] {
        let cx = TestContext::new().await;
        let ev = cx.evidence_params().await;
        let f = cx.unique("crashq");
        let role = format!("{f}-role");
        let role_arn = cx.seed_role(&role).await;
        cx.create_function_with_role(&f, &role_arn).await;
        let before = cx.role_snapshot(&role).await;
        let param = format!("function={f}");
        let playbook = pb();
        let args = [
            "run",
            playbook.as_str(),
            "-p",
            ev[0].as_str(),
            "-p",
            ev[1].as_str(),
            "-p",
            ev[2].as_str(),
            "--incident",
            "INC-KQ",
            "-p",
            param.as_str(),
            "--yes",
        ];
        crate::crash::kill_at(&cx, &args, point);
        let rerun = cx.run(&[
            "--output",
            "json",
            "run",
            &pb(),
            "-p",
            &ev[0],
            "-p",
            &ev[1],
            "-p",
            &ev[2],
            "--incident",
            "INC-KQ",
            "-p",
            &param,
            "--yes",
        ]);
        rerun.expect_code(0);
        assert_eq!(rerun.json()["summary"]["checks_failed"], 0, "{point}");
        let audit = cx.audit("INC-KQ");
        let mut per_change = std::collections::BTreeMap::new();
        for r in audit.iter().filter(|r| {
            r["step"] == "quarantine-role" && (r["event"] == "applied" || r["event"] == "confirmed")
        }) {
            let change = if r["event"] == "applied" {
                &r["data"]
            } else {
                &r["data"]["change"]
            };
            *per_change
                .entry(change["attribute"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        assert_eq!(
            per_change.len(),
            6,
            "{point}: deny, revoke, 2 detach, 2 delete: {per_change:?}"
        );
        assert!(
            per_change.values().all(|n| *n == 1),
            "{point}: a change applied twice: {per_change:?}"
        );
        // A crash in the middle of recover, then recover again: exact.
        let rec = [
            "recover",
            "--incident",
            "INC-KQ",
            "--yes",
            "--include-risky",
        ];
        // Killed before a restoration call, then after one: the in-doubt
        // restoration is retried, not reported as drift.
        crate::crash::kill_at(&cx, &rec, "before_apply:recover");
        crate::crash::kill_at(&cx, &rec, "after_apply:recover");
        cx.run(&rec).expect_code(0);
        assert_eq!(cx.role_snapshot(&role).await, before, "{point}");
        assert_eq!(cx.concurrency(&f).await, None);
        cx.run(&["audit", "verify", ".firebreak/incidents/INC-KQ"])
            .expect_code(0);
    }
}

#[tokio::test]
async fn public_access_is_closed_and_only_reopened_when_asked() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let f = cx.unique("public");
    let role = format!("{f}-role");
    let role_arn = cx.seed_role(&role).await;
    cx.create_function_with_role(&f, &role_arn).await;
    cx.seed_public_access(&f).await;
    let before = cx.public_snapshot(&f).await;
    assert_eq!(before.1.len(), 3, "{before:?}");

    let run = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-PUB",
        "-p",
        &format!("function={f}"),
        "--yes",
    ]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["summary"]["checks_failed"], 0, "{}", v["verification"]);
    let s = step(&v, "close-public-access");
    assert_eq!(s["outputs"]["kept_statements"], json!(["s3-orders-bucket"]));
    let (url, statements) = cx.public_snapshot(&f).await;
    assert!(url.is_none(), "URL deleted");
    assert_eq!(
        statements.keys().collect::<Vec<_>>(),
        ["s3-orders-bucket"],
        "the legitimate statement stays"
    );

    let rec = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-PUB",
        "--yes",
    ]);
    rec.expect_code(0);
    let v = rec.json();
    let mut held: Vec<String> = names(&v, "held")
        .into_iter()
        .filter(|i| i.ends_with(&format!("@{f}")))
        .collect();
    held.sort();
    assert!(
        names(&v, "held").iter().any(|i| i.contains("-admin@")),
        "the broad managed policy is held too"
    );
    assert_eq!(
        held,
        [
            format!("function_url@{f}"),
            format!("policy_statement:FunctionURLAllowPublicAccess@{f}"),
            format!("policy_statement:anyone@{f}")
        ],
        "{v}"
    );
    let on_function =
        |i: &&Value| i["status"] == "held" && i["id"].as_str().unwrap().ends_with(&format!("@{f}"));
    for item in v["items"].as_array().unwrap().iter().filter(on_function) {
        assert!(
            item["reason"].as_str().unwrap().contains("re-opens"),
            "{item}"
        );
    }
    assert!(
        cx.public_snapshot(&f).await.0.is_none(),
        "held back: still closed"
    );

    cx.run(&[
        "recover",
        "--incident",
        "INC-PUB",
        "--yes",
        "--include-risky",
    ])
    .expect_code(0);
    let after = cx.public_snapshot(&f).await;
    assert_eq!(
        after.0.as_ref().map(|u| u["AuthType"].clone()),
        Some(json!("NONE"))
    );
    assert_eq!(after.1, before.1, "statements restored verbatim");
    let last = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-PUB",
        "--yes",
        "--include-risky",
    ]);
    assert_eq!(last.json()["summary"]["changes"], 0);
}

#[tokio::test]
async fn event_sources_are_disabled_never_deleted_and_re_enabled_by_recover() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let f = cx.unique("mapped");
    let role = format!("{f}-role");
    let role_arn = cx.seed_role(&role).await;
    cx.create_function_with_role(&f, &role_arn).await;
    let uuid = cx.create_sqs_mapping(&f).await;

    let run = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-ESM",
        "-p",
        &format!("function={f}"),
        "--yes",
    ]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["summary"]["checks_failed"], 0, "{}", v["verification"]);
    assert_eq!(
        step(&v, "stop-event-sources")["outputs"]["disabled_mappings"],
        json!([uuid])
    );
    cx.wait_mapping_state(&uuid, "Disabled").await;

    let again = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-ESM",
        "-p",
        &format!("function={f}"),
        "--yes",
    ]);
    assert_eq!(again.json()["summary"]["changes"], 0);

    cx.run(&["recover", "--incident", "INC-ESM", "--yes"])
        .expect_code(0);
    cx.wait_mapping_state(&uuid, "Enabled").await;
}

#[tokio::test]
async fn access_keys_are_deactivated_not_deleted_and_the_function_is_tagged() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let f = cx.unique("keys");
    let role = format!("{f}-role");
    let role_arn = cx.seed_role(&role).await;
    cx.create_function_with_role(&f, &role_arn).await;
    let user = format!("{f}-deployer");
    cx.iam
        .create_user()
        .user_name(&user)
        .send()
        .await
        .expect("user");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let k = cx
            .iam
            .create_access_key()
            .user_name(&user)
            .send()
            .await
            .expect("key");
        ids.push(k.access_key().expect("key").access_key_id().to_string());
    }
    let statuses = |cx: &TestContext| {
        let (iam, user) = (cx.iam.clone(), user.clone());
        async move {
            let out = iam
                .list_access_keys()
                .user_name(user)
                .send()
                .await
                .expect("list keys");
            out.access_key_metadata()
                .iter()
                .map(|k| k.status().unwrap().as_str().to_string())
                .collect::<Vec<_>>()
        }
    };

    let run = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-KEYS",
        "-p",
        &format!("function={f}"),
        "-p",
        &format!("users={user}"),
        "--yes",
    ]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["summary"]["checks_failed"], 0, "{}", v["verification"]);
    assert_eq!(
        statuses(&cx).await,
        ["Inactive", "Inactive"],
        "deactivated, both still exist"
    );
    let tags = cx
        .lambda
        .list_tags()
        .resource(
            cx.lambda
                .get_function()
                .function_name(&f)
                .send()
                .await
                .unwrap()
                .configuration()
                .unwrap()
                .function_arn()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let tags = tags.tags().unwrap();
    assert_eq!(
        tags.get("firebreak:incident").map(String::as_str),
        Some("INC-KEYS")
    );
    assert!(tags
        .get("firebreak:contained-by")
        .unwrap()
        .contains(&cx.account));

    let rec = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-KEYS",
        "--yes",
    ]);
    rec.expect_code(0);
    let held: Vec<String> = names(&rec.json(), "held")
        .into_iter()
        .filter(|i| i.starts_with("access_key:"))
        .collect();
    assert_eq!(held.len(), 2, "re-activating a key is held back");
    assert_eq!(statuses(&cx).await, ["Inactive", "Inactive"]);
    let arn = format!("arn:aws:lambda:us-east-1:{}:function:{f}", cx.account);
    let tags = cx.lambda.list_tags().resource(&arn).send().await.unwrap();
    assert!(
        tags.tags()
            .is_none_or(|t| !t.contains_key("firebreak:incident")),
        "tags removed by recover"
    );

    cx.run(&[
        "recover",
        "--incident",
        "INC-KEYS",
        "--yes",
        "--include-risky",
    ])
    .expect_code(0);
    assert_eq!(statuses(&cx).await, ["Active", "Active"]);
}

#[tokio::test]
async fn sigkill_at_every_mutating_step_then_rerun_contains_once_and_recover_is_exact() {
    let steps = [
        "throttle",
        "close-public-access",
        "stop-event-sources",
        "quarantine-role",
        "deactivate-keys",
        "mark",
    ];
    for (n, step_id) in steps.iter().enumerate() {
        let point = format!(
            "{}:{step_id}",
            if n % 2 == 0 {
                "after_apply"
            } else {
                "before_apply"
            }
        );
        let cx = TestContext::new().await;
        let ev = cx.evidence_params().await;
        let f = cx.unique("every");
        let role = format!("{f}-role");
        let role_arn = cx.seed_role(&role).await;
        cx.create_function_with_role(&f, &role_arn).await;
        cx.seed_public_access(&f).await;
        let uuid = cx.create_sqs_mapping(&f).await;
        let user = format!("{f}-user");
        cx.iam
            .create_user()
            .user_name(&user)
            .send()
            .await
            .expect("user");
        cx.iam
            .create_access_key()
            .user_name(&user)
            .send()
            .await
            .expect("key");
        let (role_before, public_before) =
            (cx.role_snapshot(&role).await, cx.public_snapshot(&f).await);

        let playbook = pb();
        let (pf, pu) = (format!("function={f}"), format!("users={user}"));
        let args = [
            "run",
            playbook.as_str(),
            "-p",
            ev[0].as_str(),
            "-p",
            ev[1].as_str(),
            "-p",
            ev[2].as_str(),
            "--incident",
            "INC-EVERY",
            "-p",
            pf.as_str(),
            "-p",
            pu.as_str(),
            "--yes",
        ];
        crate::crash::kill_at(&cx, &args, &point);
        let rerun = cx.run(&[
            "--output",
            "json",
            "run",
            &playbook,
            "--incident",
            "INC-EVERY",
            "-p",
            &pf,
            "-p",
            &pu,
            "-p",
            &ev[0],
            "-p",
            &ev[1],
            "-p",
            &ev[2],
            "--yes",
        ]);
        rerun.expect_code(0);
        assert_eq!(
            rerun.json()["summary"]["checks_failed"],
            0,
            "{point}: {}",
            rerun.json()["verification"]
        );

        let audit = cx.audit("INC-EVERY");
        let mut per_change = std::collections::BTreeMap::new();
        for r in audit
            .iter()
            .filter(|r| r["event"] == "applied" || r["event"] == "confirmed")
        {
            let change = if r["event"] == "applied" {
                &r["data"]
            } else {
                &r["data"]["change"]
            };
            // Per step: each evidence step lists its artifacts in a
            // manifest change of the same name.
            let key = format!(
                "{} {} {}",
                r["step"].as_str().unwrap_or(""),
                change["target"].as_str().unwrap(),
                change["attribute"].as_str().unwrap()
            );
            *per_change.entry(key).or_insert(0) += 1;
        }
        assert!(
            per_change.values().all(|n| *n == 1),
            "{point}: a change applied twice: {per_change:?}"
        );
        cx.run(&["audit", "verify", ".firebreak/incidents/INC-EVERY"])
            .expect_code(0);

        cx.run(&[
            "recover",
            "--incident",
            "INC-EVERY",
            "--yes",
            "--include-risky",
        ])
        .expect_code(0);
        assert_eq!(cx.role_snapshot(&role).await, role_before, "{point}");
        let public_after = cx.public_snapshot(&f).await;
        assert_eq!(public_after.1, public_before.1, "{point}");
        assert_eq!(
            public_after.0.is_some(),
            public_before.0.is_some(),
            "{point}"
        );
        cx.wait_mapping_state(&uuid, "Enabled").await;
        assert_eq!(cx.concurrency(&f).await, None, "{point}");
    }
}
