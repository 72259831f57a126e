//! Many targets: `--target` globs, the max_targets guard, harm first.

use std::time::Instant;

use serde_json::Value;

use crate::common::TestContext;

#[tokio::test]
async fn a_hundred_functions_contained_in_one_run_by_glob() {
    let cx = TestContext::new_exclusive().await;
    let fleet: Vec<String> = (0..100).map(|i| format!("fleet-{i:03}")).collect();
    cx.create_functions(&fleet).await;
    cx.create_function("bystander").await;
    let pb = TestContext::throttle_playbook().display().to_string();

    // More than the default limit: refused before any change.
    let r = cx.run(&[
        "run",
        &pb,
        "--incident",
        "INC-FLEET",
        "--target",
        "fleet-*",
        "--yes",
    ]);
    r.expect_code(3);
    assert!(
        r.stderr.contains("100 functions match") && r.stderr.contains("max_targets 25"),
        "{}",
        r.stderr
    );
    assert_eq!(cx.concurrency("fleet-000").await, None);

    // Side by side, read-only: one target at a time against eight.
    for c in ["1", "8"] {
        let t = Instant::now();
        let plan = cx.run(&[
            "plan",
            &pb,
            "--incident",
            "INC-FLEET-PLAN",
            "--target",
            "fleet-*",
            "--max-targets",
            "100",
            "--concurrency",
            c,
        ]);
        plan.expect_code(2);
        eprintln!(
            "plan of 100 targets with --concurrency {c}: {:.2?}",
            t.elapsed()
        );
    }

    let started = Instant::now();
    let r = cx.run(&[
        "--output",
        "json",
        "run",
        &pb,
        "--incident",
        "INC-FLEET",
        "--target",
        "fleet-*",
        "--max-targets",
        "100",
        "--yes",
    ]);
    let wall = started.elapsed();
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v["targets"].as_array().unwrap().len(), 100);
    assert_eq!(v["summary"]["applied"], 100);
    assert_eq!(v["summary"]["checks_failed"], 0);
    eprintln!(
        "100 targets: wall {:.2?}, API calls {} ({} mutating)",
        wall, v["api_calls"]["total"], v["api_calls"]["mutating"]
    );
    for name in [&fleet[0], &fleet[57], &fleet[99]] {
        assert_eq!(cx.concurrency(name).await, Some(0), "{name}");
    }
    assert_eq!(
        cx.concurrency("bystander").await,
        None,
        "not selected, not touched"
    );

    let again = cx.run(&[
        "--output",
        "json",
        "run",
        &pb,
        "--incident",
        "INC-FLEET",
        "--target",
        "fleet-*",
        "--max-targets",
        "100",
        "--yes",
    ]);
    again.expect_code(0);
    assert_eq!(again.json()["summary"]["changes"], 0);
    cx.run(&["audit", "verify", ".firebreak/incidents/INC-FLEET"])
        .expect_code(0);
    cx.delete_functions(&fleet).await;
}

#[tokio::test]
async fn harm_stopping_changes_go_first_for_every_target() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let pb = crate::common::crate_root()
        .join("playbooks/lambda-compromise.yaml")
        .display()
        .to_string();
    let mut names = Vec::new();
    for i in 0..2 {
        let f = format!("pair-{i}");
        let role = cx.seed_role(&format!("{f}-role")).await;
        cx.create_function_with_role(&f, &role).await;
        names.push(f);
    }
    let r = cx.run(&[
        "run",
        &pb,
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "--incident",
        "INC-PAIR",
        "--target",
        "pair-0",
        "--target",
        "pair-1",
        "--yes",
    ]);
    r.expect_code(0);
    let audit = cx.audit("INC-PAIR");
    let applied: Vec<&str> = audit
        .iter()
        .filter(|r| r["event"] == "applied")
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    // Every harm-stopping change of both targets before any other change
    // (evidence writes, tags, the quarantine's detach and deletions, which
    // wait for pass 2) of either. `preserve-indicators` is in the first
    // pass on purpose: the attacker's artifacts reach the bucket before
    // containment removes them (issue 13).
    let harm = [
        "preserve-indicators",
        "throttle",
        "contain-rogue-functions",
        "close-public-access",
        "stop-event-sources",
        "deactivate-keys",
    ];
    let is_harm = |r: &&serde_json::Value| {
        let step = r["step"].as_str().unwrap();
        harm.contains(&step)
            || (step == "quarantine-role"
                && r["data"]["attribute"] == "inline_policy:firebreak-quarantine")
    };
    let changes: Vec<&serde_json::Value> =
        audit.iter().filter(|r| r["event"] == "applied").collect();
    let last_harm = changes.iter().rposition(is_harm).unwrap();
    let first_other = changes.iter().position(|r| !is_harm(r)).unwrap();
    assert!(
        last_harm < first_other,
        "the rest waited for containment of both: {applied:?}"
    );
    assert_eq!(applied.iter().filter(|s| **s == "throttle").count(), 2);
    // recover undoes both targets.
    cx.run(&[
        "recover",
        "--incident",
        "INC-PAIR",
        "--yes",
        "--include-risky",
    ])
    .expect_code(0);
    for f in &names {
        assert_eq!(cx.concurrency(f).await, None);
    }
}

/// The shipped playbook on a fleet that shares one role, every function
/// new inside the incident window and fired by a rule, so each target
/// finds the others rogue: each sharer's EventBridge rules and
/// concurrency are read once in the run, not once per target (N² calls
/// at EventBridge's and the control plane's pace). The end state is read
/// back: every function at 0, every rule disabled.
#[tokio::test]
async fn a_fleet_on_one_role_reads_each_functions_rules_once() {
    const N: usize = 6;
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let pb = crate::common::crate_root()
        .join("playbooks/lambda-compromise.yaml")
        .display()
        .to_string();
    let role = cx.seed_role("herd-role").await;
    let fleet: Vec<String> = (0..N).map(|i| format!("herd-{i}")).collect();
    // Each fired by a rule: every target finds the others rogue.
    for f in &fleet {
        let arn = cx.create_function_with_role(f, &role).await;
        cx.schedule_rule(&format!("{f}-tick"), "rate(1 hour)", &arn)
            .await;
    }
    let mut args: Vec<&str> = vec!["--output", "json", "run", &pb];
    for p in &ev {
        args.extend(["-p", p.as_str()]);
    }
    args.extend([
        "-p",
        "scope=role",
        "--incident",
        "INC-HERD",
        "--target",
        "herd-*",
        "--yes",
    ]);
    let r = cx.run(&args);
    r.expect_code(0);
    let v = r.json();
    for f in &fleet {
        assert_eq!(cx.concurrency(f).await, Some(0), "{f}");
    }
    // Each target did find the others rogue.
    let audit = cx.audit("INC-HERD");
    let rogue_throttles = audit
        .iter()
        .filter(|r| r["event"] == "planned" && r["step"] == "contain-rogue-functions")
        .count();
    let rogue: Vec<&Value> = audit
        .iter()
        .filter(|r| r["step"] == "contain-rogue-functions")
        .collect();
    assert!(
        rogue_throttles >= N,
        "{rogue_throttles} rogue throttles planned: {rogue:?}"
    );
    let calls = &v["api_calls"]["by_operation"];
    eprintln!("calls: {calls}");
    // Linear in N (6 functions: 6 ListRuleNamesByTarget, about 24
    // DescribeRule and 21 GetFunctionConcurrency); each target's own way
    // was N² (46, 76 and 48).
    let count = |op: &str| {
        calls[op]["calls"]
            .as_u64()
            .unwrap_or_else(|| panic!("no {op} in {calls}"))
    };
    let n = N as u64;
    assert!(
        count("eventbridge:ListRuleNamesByTarget") <= n,
        "each function's rules listed once while planning: {calls}"
    );
    assert!(
        count("eventbridge:DescribeRule") <= 6 * n,
        "DescribeRule for {N} functions on one role: {calls}"
    );
    assert!(
        count("lambda:GetFunctionConcurrency") <= 6 * n,
        "GetFunctionConcurrency for {N} functions on one role: {calls}"
    );
    let ev_client = aws_sdk_eventbridge::Client::new(&cx.sdk_config().await);
    for f in &fleet {
        let rule = ev_client
            .describe_rule()
            .name(format!("{f}-tick"))
            .send()
            .await
            .expect("describe the rule");
        assert_eq!(
            rule.state().map(|s| s.as_str()),
            Some("DISABLED"),
            "{f}-tick"
        );
    }
    cx.delete_functions(&fleet).await;
}
