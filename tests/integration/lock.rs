//! Two runs on one incident at once: the second is refused and told who
//! holds the incident; nothing interleaves.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::TestContext;

#[tokio::test]
async fn a_second_run_on_a_busy_incident_is_refused() {
    let cx = TestContext::new().await;
    let f = cx.unique("lock");
    cx.create_function(&f).await;
    let pb = TestContext::throttle_playbook().display().to_string();
    let param = format!("function={f}");
    let marker = cx.path("paused");
    let mut first = cx
        .firebreak()
        .args(["run", &pb, "--incident", "INC-L", "-p", &param, "--yes"])
        .env("FIREBREAK_TEST_PAUSE_AT", "before_apply:throttle")
        .env("FIREBREAK_TEST_PAUSE_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "first run never paused");
        std::thread::sleep(Duration::from_millis(20));
    }

    let second = cx.run(&["run", &pb, "--incident", "INC-L", "-p", &param, "--yes"]);
    second.expect_code(3);
    assert!(
        second
            .stderr
            .contains("being worked on by another firebreak process"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        second.stderr
    );
    // A plan of the same incident is refused too: it writes the same trail.
    cx.run(&["plan", &pb, "--incident", "INC-L", "-p", &param])
        .expect_code(3);
    // Another incident is not blocked.
    cx.run(&["plan", &pb, "--incident", "INC-OTHER", "-p", &param])
        .expect_code(2);

    first.kill().expect("kill");
    let _ = first.wait();
    // The kernel released the lock with the process: the next run resumes.
    cx.run(&["run", &pb, "--incident", "INC-L", "-p", &param, "--yes"])
        .expect_code(0);
    assert_eq!(cx.concurrency(&f).await, Some(0));
    cx.run(&["audit", "verify", ".firebreak/incidents/INC-L"])
        .expect_code(0);
}
