//! At the quota limit: a run through the AWS-like proxy (tools/aws-proxy)
//! in front of LocalStack, which enforces Lambda's control-plane quota the
//! way AWS does. The bound is set by the quota, not by us: N
//! PutFunctionConcurrency calls need N / rate seconds.

use std::time::Duration;

use firebreak_aws_proxy::{Config, Proxy, Quotas, Rule, AWS_DEFAULTS};
use serde_json::Value;

use crate::common::{Run, TestContext};

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

    let rules: Vec<Rule> = AWS_DEFAULTS
        .iter()
        .map(|r| r.parse().expect("a default rule"))
        .collect();
    let proxy = Proxy::start(
        "127.0.0.1:0",
        Config {
            upstream: cx.endpoint.parse().expect("endpoint"),
            latency: Duration::ZERO,
            compress: COMPRESS,
        },
        Quotas::new(rules, COMPRESS),
    )
    .await
    .expect("start the proxy");

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
    let out = tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("run firebreak");
    let run = Run::from(out);
    let seen = proxy.stop().await;
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
}
