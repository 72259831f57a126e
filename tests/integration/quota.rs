//! At the quota limit: a run through the AWS-like proxy (tools/aws-proxy)
//! in front of LocalStack, which enforces Lambda's control-plane quota the
//! way AWS does. The bound is set by the quota, not by us: N
//! PutFunctionConcurrency calls need N / rate seconds.

use std::time::Duration;

use firebreak_aws_proxy::{Config, Proxy, Quotas, Rule, AWS_DEFAULTS};
use serde_json::{json, Value};

use crate::common::{evidence_bucket, evidence_doc, Run, TestContext};

/// Runs `cmd` to its end, then stops the proxy: the command's result and
/// the proxy's report.
async fn run_through(proxy: Proxy, cmd: std::process::Command) -> (Run, Value) {
    let out = tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("run firebreak");
    (Run::from(out), proxy.stop().await)
}

/// The AWS-like proxy in front of this test's LocalStack, with AWS's
/// quotas compressed `compress` times and `latency` added to every call.
async fn aws_like(cx: &TestContext, latency: Duration, compress: f64) -> Proxy {
    aws_like_slow(cx, latency, compress, &[]).await
}

/// `aws_like`, with `slow` APIs taking that much longer on top.
async fn aws_like_slow(
    cx: &TestContext,
    latency: Duration,
    compress: f64,
    slow: &[(&str, Duration)],
) -> Proxy {
    let rules: Vec<Rule> = AWS_DEFAULTS
        .iter()
        .map(|r| r.parse().expect("a default rule"))
        .collect();
    Proxy::start(
        "127.0.0.1:0",
        Config {
            upstream: cx.endpoint.parse().expect("endpoint"),
            latency,
            compress,
            slow: slow.iter().map(|(api, d)| (api.to_string(), *d)).collect(),
        },
        Quotas::new(rules, compress),
    )
    .await
    .expect("start the proxy")
}

/// The AWS-like proxy (no added latency, AWS's quotas) with every
/// ListFunctions page held `page` longer, and a firebreak command that
/// goes through it.
async fn through_slow_listing(cx: &TestContext, page: Duration) -> (Proxy, std::process::Command) {
    let proxy = aws_like_slow(cx, Duration::ZERO, 1.0, &[("lambda:ListFunctions", page)]).await;
    let mut cmd = cx.firebreak();
    cmd.env("AWS_ENDPOINT_URL", format!("http://{}", proxy.addr));
    (proxy, cmd)
}

/// `firebreak --output json run tests/playbooks/contain-only.yaml`
/// through `proxy`; the caller adds the run's own arguments.
fn contain_only_through(cx: &TestContext, proxy: &Proxy) -> std::process::Command {
    let mut cmd = cx.firebreak();
    cmd.env("AWS_ENDPOINT_URL", format!("http://{}", proxy.addr))
        .args(["--output", "json", "run"])
        .arg(crate::common::crate_root().join("tests/playbooks/contain-only.yaml"));
    cmd
}

/// AWS's quotas, time compressed by this factor in the proxy and in
/// firebreak's own pacing alike. 1: LocalStack answers a call in 50-250 ms
/// on this machine under the suite's load, and a faster quota would
/// measure LocalStack rather than the schedule.
const COMPRESS: f64 = 1.0;
const N: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_functions_at_a_compressed_quota_within_a_tenth_of_the_bound_unthrottled() {
    let cx = TestContext::new_exclusive().await;
    let fleet: Vec<String> = (0..N).map(|i| format!("q-{i:03}")).collect();
    cx.create_functions(&fleet).await;
    // LocalStack is slow to answer the first GetFunction of a fleet (0.8 s
    // here, about 3 s at N = 1,000; AWS is not), and stalls for a second
    // or more while it answers its functions' first GetFunctions in a
    // burst (seen at 1.09x-1.13x): each is asked once outside the proxy,
    // so that the bound measures the schedule, not LocalStack's warm-up.
    for name in &fleet {
        cx.lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .expect("warm LocalStack's GetFunction");
    }

    let proxy = aws_like(&cx, Duration::ZERO, COMPRESS).await;

    // firebreak paces itself at AWS's quotas; the same compression here.
    let rate = 15.0 * COMPRESS;
    let quotas = cx.path("quotas.yaml");
    std::fs::write(
        &quotas,
        format!(
            "quotas:\n  lambda: {{rate: {rate}, burst: 5}}\n  lambda_get_function: {{rate: {}, burst: 10}}\n",
            100.0 * COMPRESS
        ),
    )
    .expect("write quotas");

    let mut cmd = cx.firebreak();
    cmd.env("AWS_ENDPOINT_URL", format!("http://{}", proxy.addr))
        .args(["--output", "json", "--quotas"])
        .arg(&quotas)
        .args(["run"])
        .arg(TestContext::throttle_playbook())
        .args([
            "--incident",
            "INC-QUOTA",
            "--target",
            "q-*",
            "--max-targets",
            "1000",
            "--yes",
        ]);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);
    let v: Value = run.json();

    // The end state, read back from LocalStack (not through the proxy).
    for name in &fleet {
        assert_eq!(cx.concurrency(name).await, Some(0), "{name}");
    }

    let puts = seen["by_api"]["lambda:PutFunctionConcurrency"]["requests"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        puts, N as u64,
        "one PutFunctionConcurrency per function: {seen}"
    );
    assert_eq!(seen["throttled"], 0, "no call throttled: {seen}");

    let bound_ms = N as f64 / rate * 1000.0;
    let t = &v["timings"];
    let contained_ms = t["contained_ms"].as_f64().expect("timings.contained_ms");
    eprintln!(
        "N = {N} at {rate}/s: bound {bound_ms:.0} ms, contained in {contained_ms:.0} ms ({:.3}x); timings {t}; firebreak counted {}; proxy saw {seen}",
        contained_ms / bound_ms,
        v["api_calls"]
    );
    assert!(
        contained_ms <= bound_ms * 1.1,
        "contained in {contained_ms} ms, bound {bound_ms} ms: over 1.1x"
    );
    cx.delete_functions(&fleet).await;
}

/// Thirty functions, each open to the world, contained at AWS's own quota
/// (15/s) with `--concurrency 1`: every target is worked on at once all
/// the same, and each throttle goes as soon as its function's GetFunction
/// is answered, ahead of the public-access reads of the other targets. A
/// run that applied a target's harm-stopping steps only once its whole
/// plan was made throttled one function per four control-plane calls (its
/// reads of aliases and URLs, then its statement removal, came first);
/// one that works on one target at a time, one per target's plan. The end
/// state is read back from LocalStack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_is_throttled_before_most_public_access_is_closed() {
    const FLEET: usize = 30;
    let cx = TestContext::new().await;
    let role = cx.seed_role("early-role").await;
    let fleet: Vec<String> = (0..FLEET).map(|i| format!("early-{i:02}")).collect();
    for name in &fleet {
        cx.create_function_with_role(name, &role).await;
        cx.open_to_anyone(name).await;
    }
    let proxy = aws_like(&cx, Duration::ZERO, 1.0).await;
    let mut cmd = contain_only_through(&cx, &proxy);
    cmd.args([
        "--incident",
        "INC-EARLY",
        "--target",
        "early-*",
        "--max-targets",
        "100",
        "--concurrency",
        "1",
        "--yes",
    ]);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);
    assert_eq!(seen["throttled"], 0, "no call throttled: {seen}");

    for name in &fleet {
        assert_eq!(cx.concurrency(name).await, Some(0), "{name}");
        let (_, statements) = cx.public_snapshot(name).await;
        assert!(!statements.contains_key("anyone"), "{name}: {statements:?}");
    }
    // The order the changes were made in, from the trail.
    let applied: Vec<String> = cx
        .audit("INC-EARLY")
        .iter()
        .filter(|r| r["event"] == "applied")
        .filter_map(|r| r["data"]["attribute"].as_str().map(str::to_string))
        .collect();
    let throttles = applied
        .iter()
        .filter(|a| *a == "reserved_concurrency")
        .count();
    assert_eq!(throttles, FLEET, "{applied:#?}");
    let last_throttle = applied
        .iter()
        .rposition(|a| a == "reserved_concurrency")
        .unwrap_or(0);
    let closed_before = applied[..last_throttle]
        .iter()
        .filter(|a| a.starts_with("policy_statement"))
        .count();
    assert!(
        closed_before < FLEET / 2,
        "{closed_before} statements were removed before the last function was throttled: {applied:#?}"
    );
}

/// AWS's quotas run this many times faster here (in the proxy and in
/// firebreak's own pacing): the order of calls is what is tested, and 40
/// functions' reads at 15/s would only make the test slow.
const SHARED_COMPRESS: f64 = 4.0;
const SHARED_N: usize = 40;

/// Forty functions on one admin role, each open to the world, contained
/// through the AWS-like proxy at (compressed) AWS quotas. The deny on the
/// shared role stops every one of them at once, so it is the role's first
/// change and is made once; the other targets find it in place. (The
/// throttles are on another quota and go as soon as their own reads are
/// answered: neither waits for the other.) Each
/// target's throttle and statement removal use the observation its own
/// plan made a moment before, so the function's state is read twice (plan
/// and verification), not three times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_on_one_role_get_the_roles_deny_first_and_once() {
    let cx = TestContext::new().await;
    let role = cx.seed_role("fleet-role").await;
    assert!(role.ends_with(":role/fleet-role"), "{role}");
    let fleet: Vec<String> = (0..SHARED_N).map(|i| format!("sr-{i:02}")).collect();
    cx.create_functions(&fleet).await;
    for name in &fleet {
        cx.open_to_anyone(name).await;
    }
    // A published version open to the world: the plan finds it in the
    // run's pages of every version, not by listing the function's.
    let version = cx.publish_version(&fleet[0], "v1").await;
    cx.lambda
        .add_permission()
        .function_name(&fleet[0])
        .qualifier(&version)
        .statement_id("anyone-on-a-version")
        .action("lambda:InvokeFunction")
        .principal("*")
        .send()
        .await
        .expect("public statement on the version");

    let proxy = aws_like(&cx, Duration::ZERO, SHARED_COMPRESS).await;
    let quotas = cx.path("quotas.yaml");
    std::fs::write(
        &quotas,
        format!(
            // IAM's reads and writes share AWS's one 20/s quota.
            "quotas:\n  lambda: {{rate: {}, burst: 5}}\n  lambda_get_function: {{rate: {}, burst: 10}}\n  lambda_get_policy: {{rate: {}, burst: 5}}\n  iam: {{rate: {}, burst: 5}}\n",
            15.0 * SHARED_COMPRESS,
            100.0 * SHARED_COMPRESS,
            15.0 * SHARED_COMPRESS,
            20.0 * SHARED_COMPRESS,
        ),
    )
    .expect("write quotas");

    let mut cmd = cx.firebreak();
    cmd.env("AWS_ENDPOINT_URL", format!("http://{}", proxy.addr))
        .args(["--output", "json", "--quotas"])
        .arg(&quotas)
        .args(["run"])
        .arg(crate::common::crate_root().join("tests/playbooks/contain-only.yaml"))
        .args(["--incident", "INC-SHARED", "--target", "sr-*", "--yes"]);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);

    // The end state, read back from LocalStack (not through the proxy).
    for name in &fleet {
        assert_eq!(cx.concurrency(name).await, Some(0), "{name}");
        let (_, statements) = cx.public_snapshot(name).await;
        assert!(!statements.contains_key("anyone"), "{name}: {statements:?}");
    }
    let on_version = cx
        .lambda
        .get_policy()
        .function_name(&fleet[0])
        .qualifier(&version)
        .send()
        .await
        .ok()
        .and_then(|p| p.policy().map(str::to_string))
        .unwrap_or_default();
    assert!(
        !on_version.contains("anyone-on-a-version"),
        "version {version}: {on_version}"
    );
    let (attached, inline) = cx.role_snapshot("fleet-role").await;
    assert!(attached.is_empty(), "{attached:?}");
    assert_eq!(
        inline.keys().collect::<Vec<_>>(),
        ["firebreak-quarantine", "firebreak-revoke-sessions"],
        "the role carries only firebreak's denies"
    );

    // The order, from the trail: the deny is the role's first change.
    let audit = cx.audit("INC-SHARED");
    let applied: Vec<&Value> = audit.iter().filter(|r| r["event"] == "applied").collect();
    let deny = "inline_policy:firebreak-quarantine";
    let first = &applied
        .iter()
        .find(|r| {
            r["data"]["target"]
                .as_str()
                .is_some_and(|t| t.ends_with(":role/fleet-role"))
        })
        .expect("the role was changed")["data"];
    assert_eq!(first["attribute"], deny, "the role's first change: {first}");
    assert_eq!(
        applied
            .iter()
            .filter(|r| r["data"]["attribute"] == deny)
            .count(),
        1,
        "the deny is put on the shared role once"
    );
    assert_eq!(
        seen["by_api"]["iam:PutRolePolicy"]["requests"], 2,
        "the deny and the session revocation, once each: {seen}"
    );
    // Plan and verification read each function's qualifiers; both read
    // its concurrency through GetFunction (its own 100/s quota: the proxy
    // answers with a 0 as AWS does, where LocalStack leaves it out); the
    // changes did not read them again.
    // Versions came from ListFunctions pages of every version, once to
    // plan and once to verify (the first ListFunctions chose the targets),
    // not from a ListVersionsByFunction a function.
    let n = SHARED_N as u64;
    for (api, calls) in [
        ("lambda:GetFunctionConcurrency", 0),
        ("lambda:GetFunction", 2 * n),
        ("lambda:ListFunctions", 3),
    ] {
        assert_eq!(
            seen["by_api"][api]["requests"].as_u64().unwrap_or(0),
            calls,
            "{api}: {seen}"
        );
    }
    // The shared role is read once before the deny and once before the
    // rest of the quarantine, which waits for the second pass (the other
    // targets find both made by this run and read nothing); planning and
    // verification read every role of the account at once (one page each,
    // the latter after every change), for every target. Whatever the
    // number of targets.
    // The first target may read the role once more to plan, when it
    // plans before the account's roles are in (it does not wait for them).
    for api in ["iam:GetRole", "iam:ListAttachedRolePolicies"] {
        let made = seen["by_api"][api]["requests"].as_u64().unwrap_or(0);
        assert!((2..=3).contains(&made), "{api} ×{made}: {seen}");
    }
    assert_eq!(
        seen["by_api"]["iam:GetAccountAuthorizationDetails"]["requests"].as_u64(),
        Some(2),
        "{seen}"
    );
    // At most the first target, when it plans before the pages are in.
    let listed = seen["by_api"]["lambda:ListVersionsByFunction"]["requests"]
        .as_u64()
        .unwrap_or(0);
    assert!(listed <= 1, "ListVersionsByFunction ×{listed}: {seen}");
    for api in ["lambda:ListAliases", "lambda:ListFunctionUrlConfigs"] {
        assert_eq!(
            seen["by_api"][api]["requests"].as_u64(),
            Some(2 * n),
            "{api}: {seen}"
        );
    }
    assert_eq!(
        seen["by_api"]["lambda:PutFunctionConcurrency"]["requests"].as_u64(),
        Some(n)
    );
    assert_eq!(seen["throttled"], 0, "no call throttled: {seen}");
    cx.delete_functions(&fleet).await;
}

/// `n` functions `PREFIX-i`, each on a role of its own `PREFIX-i-role`
/// (admin managed and inline policies): (function, role) names.
async fn own_roles(cx: &TestContext, prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut fleet = Vec::new();
    for i in 0..n {
        let (name, role) = (format!("{prefix}-{i}"), format!("{prefix}-{i}-role"));
        let arn = cx.seed_role(&role).await;
        cx.create_function_with_role(&name, &arn).await;
        fleet.push((name, role));
    }
    fleet
}

/// Read back from LocalStack: each function at 0, each role carrying only
/// firebreak's denies.
async fn assert_quarantined(cx: &TestContext, fleet: &[(String, String)]) {
    for (name, role) in fleet {
        assert_eq!(cx.concurrency(name).await, Some(0), "{name}");
        let (attached, inline) = cx.role_snapshot(role).await;
        assert!(attached.is_empty(), "{role}: {attached:?}");
        assert_eq!(
            inline.keys().collect::<Vec<_>>(),
            ["firebreak-quarantine", "firebreak-revoke-sessions"],
            "{role}"
        );
    }
}

/// Functions each on a role of its own: no other target changes a role
/// only its own function uses, so in `run --yes` the plan's reading of it
/// stands for the re-read before the deny. Planning reads every role in
/// one GetAccountAuthorizationDetails page (but the first target's, read
/// alone meanwhile), and verification in another after every change; every
/// role ends up carrying
/// only firebreak's denies (read back from IAM).
#[tokio::test]
async fn a_role_only_its_function_uses_is_read_to_plan_and_to_verify_only() {
    const ROLES: usize = 6;
    let cx = TestContext::new().await;
    let fleet = own_roles(&cx, "own", ROLES).await;
    let run = cx.run(&[
        "--output",
        "json",
        "run",
        crate::common::crate_root()
            .join("tests/playbooks/contain-only.yaml")
            .to_str()
            .expect("path"),
        "--incident",
        "INC-OWN-ROLES",
        "--target",
        "own-*",
        "--yes",
    ]);
    run.expect_code(0);
    let v: Value = run.json();
    assert_quarantined(&cx, &fleet).await;
    let calls = &v["api_calls"]["by_operation"];
    // At most the first target's role is read alone (its two inline
    // policies one by one): it is planned while the pages are read, so its
    // deny waits for no other role; what it reads after the pages are in
    // comes from them.
    for (op, n) in [
        ("iam:GetRole", 1),
        ("iam:ListAttachedRolePolicies", 1),
        ("iam:ListRolePolicies", 1),
        ("iam:GetRolePolicy", 2),
    ] {
        let made = calls[op]["calls"].as_u64().unwrap_or(0);
        assert!(made <= n, "{op} ×{made}: {calls}");
    }
    assert_eq!(
        calls["iam:GetAccountAuthorizationDetails"]["calls"].as_u64(),
        Some(2),
        "{calls}"
    );
    // What the plan recorded (and saved for `recover`) came from the
    // pages: each role's policies exactly as seeded.
    let audit = cx.audit("INC-OWN-ROLES");
    let observed: Vec<&Value> = audit
        .iter()
        .filter(|r| r["event"] == "observation" && r["step"] == "quarantine-role")
        .collect();
    assert_eq!(observed.len(), ROLES, "{observed:#?}");
    for o in &observed {
        let state = &o["data"]["state"];
        let role = o["data"]["target"].as_str().unwrap_or_default();
        let name = role.rsplit('/').next().unwrap_or_default();
        let attached: Vec<&str> = state["attached"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(attached.len(), 2, "{o}");
        assert!(
            attached
                .iter()
                .all(|a| a.ends_with(&format!("{name}-read-bucket"))
                    || a.ends_with(&format!("{name}-admin"))),
            "{o}"
        );
        let inline: Vec<&String> = state["inline"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(inline, ["read-table", "write-logs"], "{o}");
        assert_eq!(
            state["inline"]["read-table"]["Statement"][0]["Sid"], "Orders",
            "{o}"
        );
    }
    // Every role's deny went on before any role's other quarantine
    // changes: they wait for the second pass, after every target is
    // contained.
    let audit = cx.audit("INC-OWN-ROLES");
    let role_changes: Vec<String> = audit
        .iter()
        .filter(|r| r["event"] == "applied")
        .filter_map(|r| r["data"]["attribute"].as_str())
        .filter(|a| a.starts_with("inline_policy:") || a.starts_with("attached_policy:"))
        .map(str::to_string)
        .collect();
    let denies = role_changes
        .iter()
        .take_while(|a| *a == "inline_policy:firebreak-quarantine")
        .count();
    assert_eq!(denies, ROLES, "{role_changes:#?}");
    assert!(
        role_changes.len() > ROLES,
        "the rest followed: {role_changes:#?}"
    );
    // Verification read each role back and passed on what it read.
    let checks: Vec<&Value> = v["verification"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == "role carries no other policy")
        .collect();
    assert_eq!(checks.len(), ROLES, "{v:#}");
    assert!(checks.iter().all(|c| c["passed"] == true), "{v:#}");
}

/// Functions named one by one, each on a role of its own, while the
/// region's listing is slow (every ListFunctions page held 6 s): each
/// role is observed, and its deny applied, before the listing can say
/// whom else it serves. No other target of the run observed it, so no
/// other target changes it, and the plan's reading stands for the re-read
/// before the deny and before the second pass's changes: the roles are
/// read in planning only (the first alone, the others from the account's
/// pages) and in verification's pages. Every role ends up carrying only
/// firebreak's denies (read back from IAM).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_observed_before_the_listing_by_one_target_each_are_not_read_again() {
    const ROLES: usize = 4;
    let cx = TestContext::new().await;
    let fleet = own_roles(&cx, "solo", ROLES).await;
    let (proxy, mut cmd) = through_slow_listing(&cx, Duration::from_secs(6)).await;
    cmd.args(["--output", "json", "run"])
        .arg(crate::common::crate_root().join("tests/playbooks/contain-only.yaml"))
        .args(["--incident", "INC-SOLO", "--yes"]);
    for (name, _) in &fleet {
        cmd.args(["--target", name]);
    }
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);
    assert_quarantined(&cx, &fleet).await;
    // Each role was observed without its users: the listing came after.
    let audit = cx.audit("INC-SOLO");
    let unlisted = audit
        .iter()
        .filter(|r| r["event"] == "observation" && r["step"] == "quarantine-role")
        .filter(|r| r["data"]["state"]["functions_using_role"].is_null())
        .count();
    assert_eq!(unlisted, ROLES, "every role observed before the listing");
    for (op, n) in [
        ("iam:GetRole", 1),
        ("iam:ListAttachedRolePolicies", 1),
        ("iam:ListRolePolicies", 1),
    ] {
        let made = seen["by_api"][op]["requests"].as_u64().unwrap_or(0);
        assert!(made <= n, "{op} ×{made}: {seen}");
    }
}

/// One function, on a role of its own, open to the world, behind a proxy
/// that adds 300 ms to every call. Its plan reads the throttle's and
/// public access's state side by side with `describe`, and the role's as
/// soon as `describe` named it, not after public access's reads: the
/// proxy answers the role's first read (GetRole) before public access's
/// listing of URLs (after its first look, GetPolicy and RemovePermission,
/// and its listing of aliases), where one read after another would
/// answer it after all of them. The end state is read back from
/// LocalStack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targets_harm_steps_are_read_side_by_side_when_it_is_planned() {
    let cx = TestContext::new().await;
    let role = cx.seed_role("side-role").await;
    let name = "side-fn";
    cx.create_function_with_role(name, &role).await;
    cx.open_to_anyone(name).await;

    let proxy = aws_like(&cx, Duration::from_millis(300), 1.0).await;
    let mut cmd = contain_only_through(&cx, &proxy);
    cmd.args(["--incident", "INC-SIDE", "--target", name, "--yes"]);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);

    assert_eq!(cx.concurrency(name).await, Some(0));
    let (_, statements) = cx.public_snapshot(name).await;
    assert!(!statements.contains_key("anyone"), "{statements:?}");
    let (attached, _) = cx.role_snapshot("side-role").await;
    assert!(attached.is_empty(), "{attached:?}");

    let first = |api: &str| {
        seen["by_api"][api]["first_answered_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("{api} was not called: {seen}"))
    };
    assert!(
        first("iam:GetRole") < first("lambda:ListFunctionUrlConfigs"),
        "the role was read after public access's reads: GetRole answered at {}, ListFunctionUrlConfigs at {}: {seen}",
        first("iam:GetRole"),
        first("lambda:ListFunctionUrlConfigs")
    );
    // In the trail, each step's observation, then what it planned, then
    // what it applied, whenever each of them was made: a step applied as
    // soon as it was planned still has its reasons recorded first.
    let audit = cx.audit("INC-SIDE");
    for step in [
        "facts",
        "throttle",
        "close-public-access",
        "quarantine-role",
    ] {
        let at = |event: &str| {
            audit
                .iter()
                .position(|r| r["event"] == event && r["step"] == step)
        };
        let observed = at("observation").unwrap_or_else(|| panic!("{step} observed"));
        if step == "facts" {
            continue;
        }
        let planned = at("planned").unwrap_or_else(|| panic!("{step} planned"));
        let applied = at("applied").unwrap_or_else(|| panic!("{step} applied"));
        assert!(
            observed < planned && planned < applied,
            "{step}: observed at {observed}, planned at {planned}, applied at {applied}"
        );
    }
}

/// The role's deny, which may stop every function on a shared role,
/// waits for the role's reads: GetRole, ListAttachedRolePolicies and
/// ListRolePolicies go side by side, then a GetRolePolicy per inline
/// policy (two here), side by side too. The proxy holds each of those
/// reads 2.5 s: side by side the deny is asked 5 s after the first read
/// (one after another: 12.5 s; with only the GetRolePolicy calls one
/// after another, 7.5 s). The end state is read back from LocalStack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roles_reads_before_its_deny_go_side_by_side() {
    let cx = TestContext::new().await;
    let role = cx.seed_role("sbs-role").await;
    let name = "sbs-fn";
    cx.create_function_with_role(name, &role).await;

    let hold = Duration::from_millis(2500);
    let held = [
        "iam:GetRole",
        "iam:ListAttachedRolePolicies",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
    ];
    let slow: Vec<(&str, Duration)> = held.iter().map(|api| (*api, hold)).collect();
    let proxy = aws_like_slow(&cx, Duration::ZERO, 1.0, &slow).await;
    let mut cmd = contain_only_through(&cx, &proxy);
    cmd.args(["--incident", "INC-SBS", "--target", name])
        .args(["--param", "scope=role", "--yes"]);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);

    let (attached, inline) = cx.role_snapshot("sbs-role").await;
    assert!(attached.is_empty(), "{attached:?}");
    assert_eq!(
        inline.keys().collect::<Vec<_>>(),
        ["firebreak-quarantine", "firebreak-revoke-sessions"]
    );
    assert_eq!(cx.concurrency(name).await, Some(0));

    let at = |api: &str, which: &str| {
        seen["by_api"][api][which]
            .as_u64()
            .unwrap_or_else(|| panic!("{api} was not called: {seen}"))
    };
    let first_answer = held[..3]
        .iter()
        .map(|api| at(api, "first_answered_ms"))
        .min()
        .unwrap_or(0);
    for api in &held[..3] {
        assert!(
            at(api, "first_received_ms") < first_answer,
            "{api} was asked after another of the role's reads was answered: {seen}"
        );
    }
    let started = at("iam:GetRole", "first_received_ms");
    let deny = at("iam:PutRolePolicy", "first_received_ms");
    assert!(
        deny.saturating_sub(started) < 6500,
        "the deny was asked {} ms after the role's first read: {seen}",
        deny.saturating_sub(started)
    );
}

/// The proxy answered the role's deny before the region's last
/// ListFunctions page: the deny waited for no listing.
fn assert_deny_before_listing(seen: &Value) {
    let at = |api: &str, which: &str| {
        seen["by_api"][api][which]
            .as_u64()
            .unwrap_or_else(|| panic!("{api} was not called: {seen}"))
    };
    let (deny, listed) = (
        at("iam:PutRolePolicy", "first_answered_ms"),
        at("lambda:ListFunctions", "last_answered_ms"),
    );
    assert!(
        deny < listed,
        "the deny waited for the listing: PutRolePolicy answered at {deny}, the last ListFunctions page at {listed}: {seen}"
    );
}

/// `users` functions named PREFIX-NN on one role (`fleet-role`), contained
/// by `run --yes` of contain-only.yaml with `--target target` and the
/// role's scope chosen, through the AWS-like proxy with every ListFunctions
/// page held 4 s: the role's ARN, the fleet, the run and the proxy's report.
async fn shared_role_fleet_run(
    cx: &TestContext,
    users: usize,
    prefix: &str,
    incident: &str,
    target: &str,
) -> (String, Vec<String>, Run, Value) {
    let role = cx.seed_role("fleet-role").await;
    let fleet: Vec<String> = (0..users).map(|i| format!("{prefix}-{i:02}")).collect();
    cx.create_functions(&fleet).await;
    let (proxy, mut cmd) = through_slow_listing(cx, Duration::from_secs(4)).await;
    cmd.args(["--output", "json", "run"])
        .arg(crate::common::crate_root().join("tests/playbooks/contain-only.yaml"))
        .args(["--incident", incident, "--target", target])
        .args(["--param", "scope=role", "--yes"]);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);
    (role, fleet, run, seen)
}

/// An alarm names one function, and the role it runs as is shared by
/// every other function of the region. With the scope chosen, `run --yes`
/// puts the role's deny on without waiting for the region's functions to
/// be listed (the proxy makes each ListFunctions page take 4 s: two pages
/// here, twenty for 1,000 functions), then names them all, in the report
/// and in the trail, after containment. The end state is read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_scope_denies_a_shared_role_before_the_region_is_listed() {
    const USERS: usize = 60;
    let cx = TestContext::new().await;
    let (role, fleet, run, seen) =
        shared_role_fleet_run(&cx, USERS, "wide", "INC-WIDE", "wide-00").await;

    // Read back from LocalStack: the role carries only firebreak's denies,
    // the named function is throttled, the others are left running.
    let (attached, inline) = cx.role_snapshot("fleet-role").await;
    assert!(attached.is_empty(), "{attached:?}");
    assert_eq!(
        inline.keys().collect::<Vec<_>>(),
        ["firebreak-quarantine", "firebreak-revoke-sessions"]
    );
    assert_eq!(cx.concurrency("wide-00").await, Some(0));
    assert_eq!(cx.concurrency("wide-01").await, None);

    assert_deny_before_listing(&seen);
    assert_eq!(
        seen["by_api"]["lambda:ListFunctions"]["requests"], 2,
        "the region is listed once (two pages): {seen}"
    );

    // Every function on the role is named, after the deny.
    let v = run.json();
    assert_eq!(v["blast_radius"][0]["role"], role.as_str(), "{v}");
    let named = v["blast_radius"][0]["functions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(named.len(), USERS, "{v}");
    assert!(
        v["targets"][0]["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["id"] == "quarantine-role"
                && s["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("blast_radius"))),
        "the plan says who is affected is named later: {v}"
    );
    let trail = cx.audit("INC-WIDE");
    let position = |event: &str, attribute: Option<&str>| {
        trail
            .iter()
            .position(|r| {
                r["event"] == event && attribute.is_none_or(|a| r["data"]["attribute"] == a)
            })
            .unwrap_or_else(|| panic!("no {event} in the trail: {trail:?}"))
    };
    assert!(
        position("applied", Some("inline_policy:firebreak-quarantine"))
            < position("blast_radius", None),
        "{trail:?}"
    );
    assert_eq!(
        trail[position("blast_radius", None)]["data"]["functions_using_role"],
        json!(named)
    );
    cx.delete_functions(&fleet).await;
}

/// The same fleet chosen by a glob, as a fleet-wide alarm or a responder
/// would choose it. The region holds no more functions than the playbook's
/// `max_targets` (GetAccountSettings), so no page can take the selection
/// past it: the first page's functions are worked on while the second is
/// read, and the shared role's deny does not wait for the listing's end.
/// The selection is recorded in the trail when the listing ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_denies_a_shared_role_on_the_listings_first_page() {
    const USERS: usize = 60;
    let cx = TestContext::new().await;
    let (role, fleet, run, seen) =
        shared_role_fleet_run(&cx, USERS, "globbed", "INC-GLOB", "globbed-*").await;

    // Read back from LocalStack: every function throttled and closed, the
    // role denied.
    let (attached, inline) = cx.role_snapshot("fleet-role").await;
    assert!(attached.is_empty(), "{attached:?}");
    assert!(inline.contains_key("firebreak-quarantine"), "{inline:?}");
    for name in &fleet {
        assert_eq!(cx.concurrency(name).await, Some(0), "{name}");
    }

    let at = |api: &str, which: &str| {
        seen["by_api"][api][which]
            .as_u64()
            .unwrap_or_else(|| panic!("{api} was not called: {seen}"))
    };
    // The second page is asked for after the first is answered, and held
    // 4 s: a deny answered sooner did not wait for it.
    let first_page = at("lambda:ListFunctions", "first_answered_ms");
    let deny = at("iam:PutRolePolicy", "first_answered_ms");
    assert!(
        deny < first_page + 4_000,
        "the deny waited for the second page: answered {} ms after the first page: {seen}",
        deny.saturating_sub(first_page)
    );
    // Two pages to choose the targets, then two of every version for the
    // run's version index (planning, then verification): the selection's
    // listing is read once, and shared by the blast radius. (A page the
    // SDK retries, when LocalStack is slow under load, counts twice here;
    // a second listing would be two pages more.)
    let pages = seen["by_api"]["lambda:ListFunctions"]["requests"]
        .as_u64()
        .unwrap_or(0);
    assert!((6..=7).contains(&pages), "ListFunctions ×{pages}: {seen}");
    assert_eq!(
        seen["by_api"]["lambda:GetAccountSettings"]["requests"], 1,
        "{seen}"
    );

    // The report lists the targets in name order, whatever order they
    // were contained in; the role's blast radius names all of them.
    let v = run.json();
    let targets: Vec<String> = v["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"].as_str().map(str::to_string))
        .collect();
    assert_eq!(targets.len(), USERS, "{v}");
    let mut sorted = targets.clone();
    sorted.sort();
    assert_eq!(targets, sorted);
    assert_eq!(v["blast_radius"][0]["role"], role.as_str(), "{v}");
    assert_eq!(
        v["blast_radius"][0]["functions"].as_array().map(Vec::len),
        Some(USERS),
        "{v}"
    );

    let trail = cx.audit("INC-GLOB");
    let position = |event: &str| {
        trail
            .iter()
            .position(|r| r["event"] == event)
            .unwrap_or_else(|| panic!("no {event} in the trail: {trail:?}"))
    };
    let selection = &trail[position("targets")]["data"];
    assert_eq!(selection["matched"].as_array().map(Vec::len), Some(USERS));
    assert_eq!(selection["streamed"]["function_count"], USERS);
    assert!(
        position("applied") < position("targets"),
        "the first change waited for the selection: {trail:?}"
    );
    cx.delete_functions(&fleet).await;
}

/// A glob's first ListFunctions page is asked for alongside
/// GetAccountSettings (which says whether the region may be streamed),
/// not after its answer: one round trip less before the first change.
/// GetAccountSettings is held 3 s by the proxy; the page is asked for
/// before it is answered, and the run still contains the function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_page_is_asked_for_while_the_account_settings_are_read() {
    let cx = TestContext::new().await;
    let fleet = vec!["side-0".to_string()];
    cx.create_functions(&fleet).await;
    let proxy = aws_like_slow(
        &cx,
        Duration::ZERO,
        1.0,
        &[("lambda:GetAccountSettings", Duration::from_secs(3))],
    )
    .await;
    let mut cmd = cx.firebreak();
    cmd.env("AWS_ENDPOINT_URL", format!("http://{}", proxy.addr))
        .args(["run"])
        .arg(TestContext::throttle_playbook())
        .args(["--incident", "INC-SIDE", "--target", "side-*", "--yes"]);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);
    assert_eq!(cx.concurrency("side-0").await, Some(0));
    let at = |api: &str, which: &str| {
        seen["by_api"][api][which]
            .as_u64()
            .unwrap_or_else(|| panic!("{api} has no {which}: {seen}"))
    };
    let page_asked = at("lambda:ListFunctions", "first_received_ms");
    let settings_answered = at("lambda:GetAccountSettings", "first_answered_ms");
    assert!(
        page_asked < settings_answered,
        "the first page waited for GetAccountSettings: asked {} ms after its answer: {seen}",
        page_asked.saturating_sub(settings_answered)
    );
    cx.delete_functions(&fleet).await;
}

/// `--max-targets` holds while the region is listed page by page: here
/// the region holds exactly the limit when the run begins, and functions
/// matching the glob are created while the first page is read. The run
/// refuses once the match passes the limit, and no function past it is
/// started (read back from LocalStack).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_created_while_a_glob_is_listed_do_not_pass_max_targets() {
    const LIMIT: usize = 50;
    let cx = TestContext::new().await;
    let fleet: Vec<String> = (0..LIMIT).map(|i| format!("grow-{i:02}")).collect();
    cx.create_functions(&fleet).await;
    let late: Vec<String> = (0..3).map(|i| format!("grow-z{i}")).collect();

    let (proxy, mut cmd) = through_slow_listing(&cx, Duration::from_secs(6)).await;
    cmd.args(["run"])
        .arg(TestContext::throttle_playbook())
        .args(["--incident", "INC-GROW", "--target", "grow-*"])
        .args(["--max-targets", &LIMIT.to_string(), "--yes"]);
    let running = tokio::spawn(tokio::process::Command::from(cmd).output());
    // GetAccountSettings is answered (the region then holds the limit),
    // then the proxy holds the first page for 6 s before reading the
    // region: the late functions exist by then.
    let asked = std::time::Instant::now();
    while proxy.report()["by_api"]["lambda:GetAccountSettings"]["requests"]
        .as_u64()
        .unwrap_or(0)
        == 0
    {
        assert!(
            asked.elapsed() < Duration::from_secs(60),
            "GetAccountSettings never asked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cx.create_functions(&late).await;
    let out = running.await.expect("join").expect("run firebreak");
    let seen = proxy.stop().await;
    let run = Run::from(out);
    run.expect_code(3);
    assert!(
        run.stderr.contains("more than max_targets 50"),
        "{}",
        run.stderr
    );

    let mut at_zero = 0;
    for name in fleet.iter().chain(&late) {
        if cx.concurrency(name).await == Some(0) {
            at_zero += 1;
        }
    }
    assert!(at_zero <= LIMIT, "{at_zero} functions throttled: {seen}");
    let puts = seen["by_api"]["lambda:PutFunctionConcurrency"]["requests"]
        .as_u64()
        .unwrap_or(0);
    assert!(puts as usize <= LIMIT, "{puts} throttles sent: {seen}");
    cx.delete_functions(&fleet).await;
    cx.delete_functions(&late).await;
}

/// The alarm's own path: `firebreak respond` with a route that chose the
/// quarantine's scope, for a function whose role 40 others share. A route
/// is approved before the alarm, so the responder contains as `run --yes`
/// does: the role's deny is answered while the region's listing (each
/// page held 4 s by the proxy) is still being read, and every function on
/// the role is named in the trail afterwards. Read back from LocalStack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_routed_with_a_chosen_scope_denies_a_shared_role_before_the_region_is_listed() {
    const OTHERS: usize = 40;
    let cx = TestContext::new().await;
    let role = cx.seed_role("fleet-role").await;
    let fleet: Vec<String> = (0..OTHERS).map(|i| format!("shared-{i:02}")).collect();
    cx.create_functions(&fleet).await;
    let playbook = crate::common::crate_root().join("tests/playbooks/contain-only.yaml");
    let p = cx.alarm_path(&playbook, "scope: role").await;
    cx.lambda
        .update_function_configuration()
        .function_name(&p.function)
        .role(&role)
        .send()
        .await
        .expect("move the alarmed function onto the shared role");
    cx.wait_updated(&p.function).await;
    cx.set_alarm(&p.alarm, aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    let (id, body) = cx.receive_one(&p.queue_url).await;
    let event = cx.path("delivered.json");
    std::fs::write(
        &event,
        json!({"Records": [{"messageId": id, "body": body, "eventSource": "aws:sqs"}]}).to_string(),
    )
    .expect("write the event");

    let (proxy, mut cmd) = through_slow_listing(&cx, Duration::from_secs(4)).await;
    cmd.args(["--output", "json", "respond", "--routes"])
        .arg(&p.routes)
        .arg("--event")
        .arg(&event);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);
    let out = run.json();
    let r = &out["outcomes"][0];
    assert_eq!(r["outcome"], "responded", "{out}");

    let (attached, inline) = cx.role_snapshot("fleet-role").await;
    assert!(attached.is_empty(), "{attached:?}");
    assert!(inline.contains_key("firebreak-quarantine"), "{inline:?}");
    assert_eq!(cx.concurrency(&p.function).await, Some(0));
    assert_eq!(
        cx.concurrency("shared-00").await,
        None,
        "only the alarmed function is throttled"
    );

    assert_deny_before_listing(&seen);
    let incident = r["incident"].as_str().expect("incident");
    let trail = cx.audit(incident);
    let named = trail
        .iter()
        .find(|x| x["event"] == "blast_radius")
        .unwrap_or_else(|| panic!("no blast_radius in the trail: {trail:?}"));
    let users = named["data"]["functions_using_role"]
        .as_array()
        .map(Vec::len);
    assert_eq!(users, Some(OTHERS + 1), "{named}");
    cx.delete_functions(&fleet).await;
}

/// The shipped playbook on three functions sharing one role: the role's
/// deny goes as soon as the first target's indicators are planned, before
/// the other targets' evidence is read, and that evidence reads the role
/// from the run's account-wide pages (GetAccountAuthorizationDetails). The
/// proxy holds those pages 4 s, past the first target's plan: the deny
/// waits for them, so every target's `config/execution-role.json` holds
/// the role's own policies, not the quarantine's deny.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_roles_deny_waits_for_the_role_pages_the_evidence_reads() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let base = cx.unique("pages");
    let role = format!("{base}-role");
    let role_arn = cx.seed_role(&role).await;
    let fleet: Vec<String> = (0..3).map(|i| format!("{base}-{i}")).collect();
    for f in &fleet {
        cx.create_function_with_role(f, &role_arn).await;
    }
    let proxy = aws_like_slow(
        &cx,
        Duration::ZERO,
        1.0,
        &[("iam:GetAccountAuthorizationDetails", Duration::from_secs(4))],
    )
    .await;
    let mut cmd = cx.firebreak();
    cmd.env("AWS_ENDPOINT_URL", format!("http://{}", proxy.addr))
        .args(["--output", "json", "run"])
        .arg(crate::common::crate_root().join("playbooks/lambda-compromise.yaml"))
        .args(["--incident", "INC-PAGES", "--yes"])
        .args(["-p", &ev[0], "-p", &ev[1], "-p", &ev[2]])
        .args(["-p", "cloudtrail_api=false", "-p", "scope=role"]);
    for f in &fleet {
        cmd.args(["--target", f]);
    }
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);
    let at = |api: &str, which: &str| {
        seen["by_api"][api][which]
            .as_u64()
            .unwrap_or_else(|| panic!("{api} has no {which}: {seen}"))
    };
    // Planning's pages were read (the first answered; verification reads
    // its own), and the deny came after them.
    assert!(
        at("iam:PutRolePolicy", "first_received_ms")
            >= at("iam:GetAccountAuthorizationDetails", "first_answered_ms"),
        "{seen}"
    );
    // Read back: quarantined.
    let now = cx
        .iam
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert!(
        now.policy_names()
            .iter()
            .any(|n| n == "firebreak-quarantine"),
        "{:?}",
        now.policy_names()
    );
    // Each target's evidence: the role as the attacker left it.
    let objects = cx.bucket_objects(evidence_bucket(&ev)).await;
    for f in &fleet {
        let doc = evidence_doc(&objects, "INC-PAGES", f, "config/execution-role.json");
        let inline: Vec<&String> = doc["InlinePolicies"].as_object().unwrap().keys().collect();
        assert_eq!(inline, ["read-table", "write-logs"], "{f}: {doc:#}");
    }
}

/// A function's own public statement is removed as soon as its GetPolicy
/// (a quota of its own) is answered, without waiting for the listing of
/// its aliases and URLs, which shares the control plane's 15 a second
/// with every throttle and removal (issue 15: at N = 1,000 that listing
/// doubled the time to close public access). Here ListAliases is held 3 s
/// in the proxy: every function's own statement is removed before the
/// first ListAliases is answered, and the statement on alias `live`,
/// which only the listing reveals, after it, once. The end state is read
/// back from LocalStack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_functions_own_public_statement_is_removed_before_its_aliases_are_listed() {
    const HELD: Duration = Duration::from_secs(3);
    let cx = TestContext::new().await;
    let role = cx.seed_role("look-role").await;
    let fleet: Vec<String> = (0..3).map(|i| format!("look-{i}")).collect();
    for name in &fleet {
        cx.create_function_with_role(name, &role).await;
        cx.open_to_anyone(name).await;
    }
    let aliased = &fleet[0];
    let version = cx.publish_version(aliased, "one").await;
    cx.lambda
        .create_alias()
        .function_name(aliased)
        .name("live")
        .function_version(&version)
        .send()
        .await
        .expect("alias");
    cx.lambda
        .add_permission()
        .function_name(aliased)
        .qualifier("live")
        .statement_id("anyone")
        .action("lambda:InvokeFunction")
        .principal("*")
        .send()
        .await
        .expect("public statement on live");

    let proxy = aws_like_slow(&cx, Duration::ZERO, 1.0, &[("lambda:ListAliases", HELD)]).await;
    let mut cmd = contain_only_through(&cx, &proxy);
    cmd.args(["--incident", "INC-LOOK", "--target", "look-*", "--yes"]);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);
    assert_eq!(seen["throttled"], 0, "no call throttled: {seen}");

    for name in &fleet {
        assert_eq!(cx.concurrency(name).await, Some(0), "{name}");
        let (_, statements) = cx.public_snapshot(name).await;
        assert!(!statements.contains_key("anyone"), "{name}: {statements:?}");
    }
    let (_, on_live) = cx.qualifier_snapshot(aliased, Some("live")).await;
    assert!(!on_live.contains_key("anyone"), "live: {on_live:?}");
    assert_eq!(
        seen["by_api"]["lambda:RemovePermission"]["requests"], 4,
        "each statement removed once, the first look's not again: {seen}"
    );

    let listed = seen["by_api"]["lambda:ListAliases"]["first_answered_ms"]
        .as_i64()
        .expect("ListAliases was answered");
    let applied_at = |attribute: &str| -> Vec<i64> {
        cx.audit("INC-LOOK")
            .iter()
            .filter(|r| r["event"] == "applied" && r["data"]["attribute"] == attribute)
            .map(|r| {
                chrono::DateTime::parse_from_rfc3339(r["time"].as_str().expect("time"))
                    .expect("an RFC 3339 time")
                    .timestamp_millis()
            })
            .collect()
    };
    let own = applied_at("policy_statement:anyone");
    assert_eq!(own.len(), fleet.len(), "{own:?}");
    assert!(
        own.iter().all(|t| *t < listed),
        "every function's own statement removed before ListAliases was first answered at {listed}: {own:?}"
    );
    let alias = applied_at("policy_statement:live:anyone");
    assert_eq!(alias.len(), 1, "{alias:?}");
    assert!(alias[0] >= listed, "{alias:?} vs {listed}");

    // The plan lists both of the aliased function's removals, as a dry
    // run would.
    let v: Value = run.json();
    let text = v.to_string();
    assert!(text.contains("policy_statement:live:anyone"), "{text}");

    // In the trail, the aliased function's first look (its own policy,
    // marked), then its whole observation: the own statement is planned
    // by both and applied once.
    let arn = format!(
        "arn:aws:lambda:{}:{}:function:{aliased}",
        crate::common::REGION,
        cx.account
    );
    let trail: Vec<Value> = cx
        .audit("INC-LOOK")
        .into_iter()
        .filter(|r| r["step"] == "close-public-access")
        .collect();
    let observed: Vec<&Value> = trail
        .iter()
        .filter(|r| r["event"] == "observation" && r["data"]["target"] == arn.as_str())
        .collect();
    assert_eq!(observed.len(), 2, "{observed:?}");
    assert_eq!(observed[0]["data"]["first_look"], true, "{observed:?}");
    assert_eq!(
        observed[0]["data"]["state"]["qualifiers"],
        json!(["$LATEST"]),
        "{observed:?}"
    );
    assert!(
        observed[1]["data"].get("first_look").is_none(),
        "{observed:?}"
    );
    let planned = |attribute: &str| -> Vec<&Value> {
        trail
            .iter()
            .filter(|r| {
                r["event"] == "planned"
                    && r["data"]["target"] == arn.as_str()
                    && r["data"]["attribute"] == attribute
            })
            .collect()
    };
    let own = planned("policy_statement:anyone");
    assert_eq!(own.len(), 2, "{own:?}");
    assert_eq!(own[0]["data"]["first_look"], true, "{own:?}");
    assert!(own[1]["data"].get("first_look").is_none(), "{own:?}");
    let on_alias = planned("policy_statement:live:anyone");
    assert_eq!(on_alias.len(), 1, "{on_alias:?}");
    assert!(
        on_alias[0]["data"].get("first_look").is_none(),
        "{on_alias:?}"
    );
}

/// A glob's listing page names each function's role: the deny on a role
/// the functions share is asked for before any of them is read (the proxy
/// holds every GetFunction 3 s, as a thousand targets' reads hold a busy
/// service), and each target's quarantine planned from the page is the
/// one its plan keeps, since describe's own reading names the same role.
/// The end state is read back from LocalStack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_denies_a_shared_role_before_any_function_is_read() {
    let cx = TestContext::new().await;
    let role = cx.seed_role("fleet-role").await;
    let fleet: Vec<String> = (0..4).map(|i| format!("unread-{i:02}")).collect();
    cx.create_functions(&fleet).await;
    let held = [("lambda:GetFunction", Duration::from_secs(3))];
    let proxy = aws_like_slow(&cx, Duration::ZERO, 1.0, &held).await;
    let mut cmd = contain_only_through(&cx, &proxy);
    cmd.args(["--incident", "INC-UNREAD", "--target", "unread-*"])
        .args(["--param", "scope=role", "--yes"]);
    let (run, seen) = run_through(proxy, cmd).await;
    run.expect_code(0);

    let (attached, inline) = cx.role_snapshot("fleet-role").await;
    assert!(attached.is_empty(), "{attached:?}");
    assert!(inline.contains_key("firebreak-quarantine"), "{inline:?}");
    for name in &fleet {
        assert_eq!(cx.concurrency(name).await, Some(0), "{name}");
    }

    let at = |api: &str, which: &str| {
        seen["by_api"][api][which]
            .as_u64()
            .unwrap_or_else(|| panic!("{api} has no {which}: {seen}"))
    };
    assert!(
        at("iam:PutRolePolicy", "first_received_ms")
            < at("lambda:GetFunction", "first_answered_ms"),
        "the deny waited for a function's GetFunction: {seen}"
    );
    let v = run.json();
    for t in v["targets"].as_array().into_iter().flatten() {
        let quarantine = t["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["id"] == "quarantine-role")
            .unwrap_or_else(|| panic!("no quarantine in {t}"));
        assert_eq!(quarantine["target"], role.as_str(), "{t}");
        assert_eq!(quarantine["args"]["role"], role.as_str(), "{t}");
    }
    cx.delete_functions(&fleet).await;
}

/// The attacker moves a function to another role between the listing page
/// and its GetFunction (held 3 s by the proxy; the role is changed while it
/// is held). The role the page named was the function's when it was
/// listed: its deny, applied ahead, stays and is reported; describe's own
/// reading names the new role, which the plan quarantines (the harm pass
/// applies its deny: the step's early part was another role's). Both
/// roles are read back from IAM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_swapped_after_the_listing_is_quarantined_as_well() {
    let cx = TestContext::new().await;
    let listed = cx.seed_role("swap-listed").await;
    let swapped = cx.seed_role("swap-later").await;
    let name = "swapped-00";
    cx.create_function_with_role(name, &listed).await;
    let held = [("lambda:GetFunction", Duration::from_secs(3))];
    let proxy = aws_like_slow(&cx, Duration::ZERO, 1.0, &held).await;
    let mut cmd = contain_only_through(&cx, &proxy);
    cmd.args(["--incident", "INC-SWAP", "--target", "swapped-*"])
        .args(["--param", "scope=role", "--yes"]);
    let child = tokio::spawn(tokio::process::Command::from(cmd).output());
    // The page was answered and the function's GetFunction is held: the
    // attacker moves it to the other role now.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while proxy.report()["by_api"]["lambda:GetFunction"]["first_received_ms"].is_null() {
        assert!(
            std::time::Instant::now() < deadline,
            "no GetFunction was asked for"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cx.lambda
        .update_function_configuration()
        .function_name(name)
        .role(&swapped)
        .send()
        .await
        .expect("move the function to the other role");
    let out = child.await.expect("join").expect("run firebreak");
    proxy.stop().await;
    let run = Run::from(out);
    run.expect_code(0);

    // The new role is quarantined as planned; the listed one carries the
    // deny applied ahead (its detach and deletions were never planned).
    let (attached, inline) = cx.role_snapshot("swap-later").await;
    assert!(attached.is_empty(), "{attached:?}");
    assert!(inline.contains_key("firebreak-quarantine"), "{inline:?}");
    let (attached, inline) = cx.role_snapshot("swap-listed").await;
    assert_eq!(attached.len(), 2, "{attached:?}");
    assert!(inline.contains_key("firebreak-quarantine"), "{inline:?}");
    assert_eq!(cx.concurrency(name).await, Some(0));
    let v = run.json();
    let steps = v["targets"][0]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let quarantine = steps
        .iter()
        .find(|s| s["id"] == "quarantine-role")
        .unwrap_or_else(|| panic!("no quarantine in {v}"));
    assert_eq!(quarantine["target"], swapped.as_str(), "{v}");
    // Both denies are in the report, with the step that made them.
    for role in [&listed, &swapped] {
        assert!(
            v["outcomes"].as_array().into_iter().flatten().any(|o| {
                o["step"] == "quarantine-role"
                    && o["change"]["target"] == role.as_str()
                    && o["change"]["attribute"] == "inline_policy:firebreak-quarantine"
            }),
            "{role}: {v}"
        );
    }
    let applied_to = |role: &str| {
        cx.audit("INC-SWAP").iter().any(|r| {
            r["event"] == "applied"
                && r["step"] == "quarantine-role"
                && r["data"]["target"] == role
                && r["data"]["attribute"] == "inline_policy:firebreak-quarantine"
        })
    };
    assert!(
        applied_to(&listed),
        "no deny on the listed role in the trail"
    );
    assert!(applied_to(&swapped), "no deny on the new role in the trail");
}
