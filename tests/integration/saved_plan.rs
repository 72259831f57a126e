//! Saved plans are contracts: applied exactly, refused once stale.

use crate::common::TestContext;

#[tokio::test]
async fn a_saved_plan_applies_exactly() {
    let cx = TestContext::new().await;
    let f = cx.unique("saved");
    cx.create_function(&f).await;
    let pb = TestContext::throttle_playbook().display().to_string();
    cx.run(&[
        "plan",
        &pb,
        "--incident",
        "INC-S",
        "-p",
        &format!("function={f}"),
        "--out",
        "plan.json",
    ])
    .expect_code(2);
    let r = cx.run(&["--output", "json", "run", "--plan", "plan.json", "--yes"]);
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v["summary"]["applied"], 1);
    assert_eq!(v["incident"], "INC-S");
    assert_eq!(cx.concurrency(&f).await, Some(0));
}

#[tokio::test]
async fn a_saved_plan_is_refused_once_the_state_moved() {
    let cx = TestContext::new().await;
    let f = cx.unique("stale");
    cx.create_function(&f).await;
    let pb = TestContext::throttle_playbook().display().to_string();
    cx.run(&[
        "plan",
        &pb,
        "--incident",
        "INC-T",
        "-p",
        &format!("function={f}"),
        "--out",
        "plan.json",
    ])
    .expect_code(2);

    // Someone changes the function behind the plan's back.
    cx.set_concurrency(&f, 7).await;

    let r = cx.run(&["run", "--plan", "plan.json", "--yes"]);
    r.expect_code(3);
    assert!(r.stderr.contains("stale"), "{}", r.stderr);
    assert!(
        r.stderr.contains("reserved_concurrency: (none) → 7"),
        "{}",
        r.stderr
    );
    assert_eq!(
        cx.concurrency(&f).await,
        Some(7),
        "a stale plan must change nothing"
    );
}

#[tokio::test]
async fn a_saved_plan_for_a_changed_playbook_is_refused() {
    let cx = TestContext::new().await;
    let f = cx.unique("pbchg");
    cx.create_function(&f).await;
    let copy = cx.path("pb.yaml");
    std::fs::copy(TestContext::throttle_playbook(), &copy).unwrap();
    cx.run(&[
        "plan",
        "pb.yaml",
        "--incident",
        "INC-C",
        "-p",
        &format!("function={f}"),
        "--out",
        "plan.json",
    ])
    .expect_code(2);
    let text = std::fs::read_to_string(&copy)
        .unwrap()
        .replace("Stop a suspect", "Halt a suspect");
    std::fs::write(&copy, text).unwrap();
    let r = cx.run(&["run", "--plan", "plan.json", "--yes"]);
    r.expect_code(3);
    assert!(
        r.stderr.contains("changed since the plan was made"),
        "{}",
        r.stderr
    );
    assert_eq!(cx.concurrency(&f).await, None);
}
