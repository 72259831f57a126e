//! Crash safety: SIGKILL just before and just after the mutating call, then
//! run again. The end state must be right, no mutation applied twice, and
//! the audit trail must still verify.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::TestContext;

/// Starts firebreak paused at `point`, waits until it is there, SIGKILLs it.
pub fn kill_at(cx: &TestContext, args: &[&str], point: &str) {
    let marker = cx.path(&format!("paused-{}", point.replace(':', "-")));
    let mut child: Child = cx
        .firebreak()
        .args(args)
        .env("FIREBREAK_TEST_PAUSE_AT", point)
        .env("FIREBREAK_TEST_PAUSE_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn firebreak");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("firebreak exited ({status}) before reaching {point}:\n{err}");
        }
        assert!(Instant::now() < deadline, "firebreak never reached {point}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

async fn crash_then_rerun(point: &str) {
    let cx = TestContext::new().await;
    let f = cx.unique("crash");
    cx.create_function(&f).await;
    cx.set_concurrency(&f, 3).await;
    let pb = TestContext::throttle_playbook().display().to_string();
    let param = format!("function={f}");
    let args = [
        "run",
        pb.as_str(),
        "--incident",
        "INC-K",
        "-p",
        param.as_str(),
        "--yes",
    ];

    kill_at(&cx, &args, point);
    let expected_after_kill = if point.starts_with("before") {
        Some(3)
    } else {
        Some(0)
    };
    assert_eq!(cx.concurrency(&f).await, expected_after_kill);

    let rerun = cx.run(&[
        "--output",
        "json",
        "run",
        &pb,
        "--incident",
        "INC-K",
        "-p",
        &param,
        "--yes",
    ]);
    rerun.expect_code(0);
    let v = rerun.json();
    assert_eq!(v["summary"]["checks_failed"], 0, "{v}");
    assert_eq!(cx.concurrency(&f).await, Some(0));

    let audit = cx.audit("INC-K");
    let applied = TestContext::audit_events(&audit, "applied", "throttle").len();
    let confirmed = TestContext::audit_events(&audit, "confirmed", "throttle").len();
    if point.starts_with("before") {
        // The call never went out: the re-run makes it, once.
        assert_eq!((applied, confirmed), (1, 0));
    } else {
        // The call went out but its outcome was never recorded: the re-run
        // sees the new state and records it without calling again.
        assert_eq!((applied, confirmed), (0, 1));
        assert_eq!(v["summary"]["confirmed"], 1);
    }
    cx.run(&["audit", "verify", ".firebreak/incidents/INC-K"])
        .expect_code(0);

    // The prior value survived the crash: recover puts back exactly 3.
    cx.run(&[
        "run",
        &pb,
        "--incident",
        "INC-K",
        "-p",
        &param,
        "--yes",
        "--phase",
        "recover",
    ])
    .expect_code(0);
    assert_eq!(cx.concurrency(&f).await, Some(3));
    cx.run(&["audit", "verify", ".firebreak/incidents/INC-K"])
        .expect_code(0);
}

#[tokio::test]
async fn sigkill_before_the_mutating_call_then_rerun() {
    crash_then_rerun("before_apply:throttle").await;
}

#[tokio::test]
async fn sigkill_after_the_mutating_call_then_rerun() {
    crash_then_rerun("after_apply:throttle").await;
}

#[tokio::test]
async fn sigkill_during_recover_then_rerun() {
    for point in ["before_apply:unthrottle", "after_apply:unthrottle"] {
        let cx = TestContext::new().await;
        let f = cx.unique("crash-rec");
        cx.create_function(&f).await;
        let pb = TestContext::throttle_playbook().display().to_string();
        let param = format!("function={f}");
        cx.run(&["run", &pb, "--incident", "INC-KR", "-p", &param, "--yes"])
            .expect_code(0);
        let args = [
            "run",
            pb.as_str(),
            "--incident",
            "INC-KR",
            "-p",
            param.as_str(),
            "--yes",
            "--phase",
            "recover",
        ];
        kill_at(&cx, &args, point);
        cx.run(&[
            "run",
            &pb,
            "--incident",
            "INC-KR",
            "-p",
            &param,
            "--yes",
            "--phase",
            "recover",
        ])
        .expect_code(0);
        assert_eq!(cx.concurrency(&f).await, None, "{point}");
        let audit = cx.audit("INC-KR");
        let done = TestContext::audit_events(&audit, "applied", "unthrottle").len()
            + TestContext::audit_events(&audit, "confirmed", "unthrottle").len();
        assert_eq!(done, 1, "{point}: exactly one restoration");
        cx.run(&["audit", "verify", ".firebreak/incidents/INC-KR"])
            .expect_code(0);
    }
}
