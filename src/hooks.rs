//! A test-only pause point around mutating calls, so crash-safety tests can
//! SIGKILL the process exactly before or after an AWS mutation.
//!
//! Inactive unless `FIREBREAK_TEST_PAUSE_AT` is set to `before_apply:STEP`
//! or `after_apply:STEP`; then the process writes the marker file named by
//! `FIREBREAK_TEST_PAUSE_MARKER` and sleeps until it is killed.

pub fn pause_point(point: &str, step: &str) {
    let Ok(want) = std::env::var("FIREBREAK_TEST_PAUSE_AT") else {
        return;
    };
    if want != format!("{point}:{step}") {
        return;
    }
    if let Ok(marker) = std::env::var("FIREBREAK_TEST_PAUSE_MARKER") {
        let _ = std::fs::write(marker, format!("{point}:{step}"));
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}
