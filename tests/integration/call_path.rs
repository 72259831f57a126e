//! The paced call path under a real `firebreak plan` against LocalStack:
//! every request goes through it, a quotas file slows the run down as it
//! says, and a bad quotas file stops the run before any AWS call.

use std::time::{Duration, Instant};

use crate::common::TestContext;

fn pb() -> String {
    TestContext::throttle_playbook().display().to_string()
}

/// Four Lambda control-plane reads per plan (aliases, versions, URLs,
/// mappings), none shared with another step.
fn qualifiers_pb() -> String {
    crate::common::crate_root()
        .join("tests/playbooks/close-every-qualifier.yaml")
        .display()
        .to_string()
}

#[tokio::test]
async fn plan_works_through_the_call_path_and_honours_a_quotas_file() {
    let cx = TestContext::new().await;
    let f = cx.unique("paced");
    let arn = cx.create_function(&f).await;
    let param = format!("function={f}");

    let started = Instant::now();
    let fast = cx.run(&[
        "plan",
        &qualifiers_pb(),
        "--incident",
        "INC-CP1",
        "-p",
        &param,
    ]);
    let fast_took = started.elapsed();
    fast.expect_code(0);
    assert!(fast.stdout.contains(&arn), "{}", fast.stdout);

    // One Lambda control-plane request a second, no burst: the same plan
    // (four control-plane reads) now has to wait between them.
    std::fs::write(
        cx.path("quotas.yaml"),
        "quotas:\n  lambda: {rate: 1, burst: 1}\n  lambda_get_function: {rate: 1, burst: 1}\n",
    )
    .expect("write quotas");
    let started = Instant::now();
    let slow = cx.run(&[
        "--quotas",
        "quotas.yaml",
        "plan",
        &qualifiers_pb(),
        "--incident",
        "INC-CP2",
        "-p",
        &param,
    ]);
    let slow_took = started.elapsed();
    slow.expect_code(0);
    eprintln!("plan unpaced {fast_took:?}, at 1 request/s {slow_took:?}");
    assert_eq!(slow.stdout.replace("INC-CP2", "INC-CP1"), fast.stdout);
    assert!(
        // A lower bound only: four control-plane reads at 1/s with no burst
        // cannot take less, however busy LocalStack is.
        slow_took >= Duration::from_secs(3),
        "paced at 1/s: {slow_took:?} (unpaced: {fast_took:?})"
    );
    assert_eq!(cx.concurrency(&f).await, None, "plan changed nothing");
}

#[tokio::test]
async fn a_bad_quotas_file_is_refused_with_its_position_before_any_call() {
    let cx = TestContext::new().await;
    std::fs::write(cx.path("q.yaml"), "quotas:\n  lamda: {rate: 15}\n").expect("write");
    let out = cx
        .firebreak()
        .env("FIREBREAK_QUOTAS", "q.yaml")
        .args(["plan", &pb(), "--incident", "INC-CPQ", "-p", "function=x"])
        .output()
        .expect("run firebreak");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert_ne!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("q.yaml:2:3"), "{stderr}");
    assert!(stderr.contains("lamda"), "{stderr}");
    assert!(
        stderr.contains("lambda_get_function"),
        "the hint lists the families: {stderr}"
    );
}
