//! The Lambda responder's entry point: the `bootstrap` of a
//! `provided.al2023` function (deploy/firebreak.yaml). Configuration is
//! read once per cold start (docs/alarms.md); a bad one fails the start
//! with the variable at fault, before any event is taken.

// The responder's futures nest deeply (respond → engine → actions).
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use firebreak::lambda::{Config, Handler};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIREBREAK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("firebreak=info,warn"));
    // CloudWatch Logs stamps each line itself.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
    let handler = match Config::from_env()
        .map_err(firebreak::lambda::StartError::from)
        .and_then(|c| Handler::from_config(&c))
    {
        Ok(h) => Arc::new(h),
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return Err(e.into());
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            let deadline = deadline(event.context.deadline);
            handler
                .handle(&event.payload, deadline)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}

/// Lambda gives the deadline in milliseconds since the epoch.
fn deadline(epoch_ms: u64) -> Option<Instant> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis();
    let left = u128::from(epoch_ms).saturating_sub(now);
    Some(Instant::now() + Duration::from_millis(u64::try_from(left).ok()?))
}
