//! `firebreak-aws-proxy`: see the library's documentation and
//! docs/performance.md.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use firebreak_aws_proxy::{Config, Proxy, Quotas, Rule, AWS_DEFAULTS};

/// An AWS-like proxy in front of LocalStack: latency per call, per-API
/// quotas answered as AWS answers them, and a report of requests per API.
#[derive(Parser)]
#[command(name = "firebreak-aws-proxy", version)]
struct Args {
    /// Where to listen (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:4567")]
    listen: String,
    /// The service behind the proxy.
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    upstream: String,
    /// Latency added to every call, in milliseconds (before compression).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Time compression: quotas run this many times faster and latencies
    /// this many times shorter.
    #[arg(long, default_value_t = 1.0)]
    compress: f64,
    /// SERVICE[:OPERATION]=RATE[/BURST] or =none; repeatable; later rules
    /// override earlier ones and AWS's defaults.
    #[arg(long = "quota")]
    quotas: Vec<Rule>,
    /// Start from no quota instead of AWS's (lambda=15/15,
    /// lambda:GetFunction=100/100, lambda:GetPolicy=15/15, iam=20/20).
    #[arg(long)]
    no_default_quotas: bool,
    /// SERVICE:OPERATION=MS: latency added to that API's calls on top of
    /// --latency-ms (e.g. lambda:ListFunctions=2000); repeatable.
    #[arg(long = "slow", value_parser = parse_slow)]
    slow: Vec<(String, Duration)>,
    /// Also write the final report here (JSON) on SIGINT/SIGTERM.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    /// Also write every request here on SIGINT/SIGTERM, one JSON object a
    /// line (api, path, received_ms, answered_ms, status): which calls shared
    /// the upstream with which.
    #[arg(long)]
    trace: Option<std::path::PathBuf>,
}

fn parse_slow(s: &str) -> Result<(String, Duration), String> {
    let bad = || format!("`{s}` is not SERVICE:OPERATION=MS, e.g. lambda:ListFunctions=2000");
    let (api, ms) = s.split_once('=').ok_or_else(bad)?;
    let ms: u64 = ms.trim().parse().map_err(|_| bad())?;
    if !api.contains(':') {
        return Err(bad());
    }
    Ok((api.trim().to_string(), Duration::from_millis(ms)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.compress.is_finite() && args.compress > 0.0,
        "--compress must be a number above 0 (1 = real time)"
    );
    let mut rules: Vec<Rule> = if args.no_default_quotas {
        Vec::new()
    } else {
        AWS_DEFAULTS
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    };
    rules.extend(args.quotas);
    let upstream = args
        .upstream
        .parse()
        .with_context(|| format!("--upstream `{}` is not a URL", args.upstream))?;
    let config = Config {
        upstream,
        latency: Duration::from_millis(args.latency_ms),
        compress: args.compress,
        slow: args.slow.into_iter().collect(),
    };
    let proxy = Proxy::start(&args.listen, config, Quotas::new(rules, args.compress)).await?;
    println!("http://{}", proxy.addr);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let (report, trace) = proxy.stop_traced().await;
    let report = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.report {
        std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.trace {
        let lines: String = trace.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("{report}");
    Ok(())
}
