//! `firebreak watch --routes FILE --queue URL`: the responder as a
//! long-running consumer of the alarm queue.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::respond::{line, responder};
use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::aws::{Aws, AwsSettings};
use crate::respond::watch::{watch, Handled, WatchOptions};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The routes file: which events are acted on, with which playbook.
    #[arg(long, value_name = "FILE")]
    pub routes: PathBuf,
    /// The SQS queue URL the alarms and findings arrive on.
    #[arg(long, value_name = "URL")]
    pub queue: String,
    /// Messages worked on at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Visibility timeout in seconds, extended while a run is in progress.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(10..=43200))]
    pub visibility: u64,
    /// Exit once the queue has been empty this many seconds.
    #[arg(long, value_name = "SECS")]
    pub until_idle: Option<u64>,
    /// Seconds in-flight runs may take after SIGTERM/SIGINT before their
    /// messages are released to another consumer.
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
    /// Long-poll wait per receive, in seconds (at most 20).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait: u64,
}

pub async fn exec(global: &GlobalArgs, args: WatchArgs) -> Result<u8, CliError> {
    let responder = Arc::new(responder(global, &args.routes)?);
    let settings = AwsSettings {
        region: global.region.clone(),
        profile: global.profile.clone(),
        endpoint_url: global.endpoint_url.clone(),
        dry_run: false,
        quotas: global.quotas.clone(),
    };
    let aws = Aws::connect(&settings).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!(
            "stopping: finishing in-flight messages (send the signal again to release them now)"
        );
        let _ = tx.send(true);
    });
    let output = global.output;
    let opts = WatchOptions {
        queue_url: args.queue.clone(),
        concurrency: usize::from(args.concurrency),
        visibility: Duration::from_secs(args.visibility),
        wait: Duration::from_secs(args.wait),
        until_idle: args.until_idle.map(Duration::from_secs),
        grace: Duration::from_secs(args.grace),
        retry_after: Duration::from_secs(30),
    };
    if output == OutputFormat::Text {
        eprintln!("watching {} ({} at once)", args.queue, args.concurrency);
    }
    let stats = watch(
        responder,
        aws.sqs.clone(),
        opts,
        rx,
        move |h: &Handled| match output {
            OutputFormat::Json => {
                println!("{}", serde_json::to_string(h).unwrap_or_default());
            }
            OutputFormat::Text => {
                for o in &h.outcomes {
                    println!("[{}] {}", h.message_id, line(o));
                }
                if !h.deleted {
                    println!("[{}] kept on the queue for another attempt", h.message_id);
                }
            }
        },
    )
    .await
    .map_err(|e| CliError::new(ErrorClass::Aws, e.to_string(), e.hint.clone()))?;
    match output {
        OutputFormat::Json => println!("{}", serde_json::json!({"kind": "watch", "stats": stats})),
        OutputFormat::Text => eprintln!(
            "stopped: {} received, {} deleted, {} kept for another attempt, {} released",
            stats.received, stats.deleted, stats.kept, stats.released
        ),
    }
    Ok(exit::OK)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
