//! `firebreak watch`: long-poll an SQS queue and respond to each message.
//!
//! SQS delivers at least once, so safety comes from three rules: a message
//! is deleted only once its event is settled (refused for good, or its
//! incident's containment journaled); while a run is in progress its
//! message's visibility is extended so no other consumer gets it; and on
//! shutdown nothing in flight is lost (finished within the grace period,
//! otherwise made visible again for another consumer, whose run resumes
//! the incident from the journal).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::responder::{Outcome, Responder};
use crate::aws::error::classify;
use crate::aws::AwsError;

#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub queue_url: String,
    /// Messages worked on at once.
    pub concurrency: usize,
    /// Visibility timeout per receive; extended every third of it while a
    /// run is in progress.
    pub visibility: Duration,
    /// Long-poll wait per receive (at most 20 s, SQS's limit).
    pub wait: Duration,
    /// Stop once the queue has been empty this long (drills, tests, batch
    /// jobs); `None` watches until told to stop.
    pub until_idle: Option<Duration>,
    /// After a stop signal, how long in-flight runs may take to finish
    /// before their messages are released to another consumer.
    pub grace: Duration,
    /// A deferred message comes back after this long.
    pub retry_after: Duration,
}

/// What one message became; printed as it happens.
#[derive(Debug, Serialize)]
pub struct Handled {
    pub message_id: String,
    pub outcomes: Vec<Outcome>,
    /// Deleted from the queue (settled), or left for redelivery.
    pub deleted: bool,
    pub receive_count: u32,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct WatchStats {
    pub received: u64,
    pub deleted: u64,
    pub kept: u64,
    /// Released (made visible again) at shutdown, unfinished.
    pub released: u64,
}

/// Runs until `stop` turns true (and in-flight work is finished or
/// released) or the queue stays idle for `until_idle`. `report` is called
/// for each message handled.
pub async fn watch(
    responder: Arc<Responder>,
    sqs: aws_sdk_sqs::Client,
    opts: WatchOptions,
    mut stop: watch::Receiver<bool>,
    report: impl Fn(&Handled) + Send + Sync + 'static,
) -> Result<WatchStats, AwsError> {
    let report = Arc::new(report);
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut tasks: JoinSet<(String, Option<Handled>)> = JoinSet::new();
    let mut stats = WatchStats::default();
    let mut idle_since = tokio::time::Instant::now();
    let mut in_flight: Vec<(String, String)> = Vec::new();
    while !*stop.borrow() {
        while let Some(done) = tasks.try_join_next() {
            settle(done, &mut stats, &mut in_flight);
        }
        let free = slots.available_permits().min(10);
        if free == 0 {
            // Every slot busy: wait for one to finish (or a stop).
            tokio::select! {
                Some(done) = tasks.join_next() => settle(done, &mut stats, &mut in_flight),
                _ = stop.changed() => {}
            }
            continue;
        }
        let receive = sqs
            .receive_message()
            .queue_url(&opts.queue_url)
            .max_number_of_messages(free as i32)
            .wait_time_seconds(opts.wait.as_secs().min(20) as i32)
            .visibility_timeout(secs(opts.visibility))
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send();
        let received = tokio::select! {
            r = receive => r.map_err(|e| classify("ReceiveMessage", "sqs:ReceiveMessage", &opts.queue_url, e))?,
            _ = stop.changed() => break,
        };
        let messages = received.messages().to_vec();
        if messages.is_empty() {
            if tasks.is_empty() && opts.until_idle.is_some_and(|d| idle_since.elapsed() >= d) {
                break;
            }
            continue;
        }
        idle_since = tokio::time::Instant::now();
        for m in messages {
            stats.received += 1;
            let Some(receipt) = m.receipt_handle().map(str::to_string) else {
                continue;
            };
            let id = m.message_id().unwrap_or("?").to_string();
            in_flight.push((id.clone(), receipt.clone()));
            let permit = match slots.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => break,
            };
            let (responder, sqs, opts, report) =
                (responder.clone(), sqs.clone(), opts.clone(), report.clone());
            tasks.spawn(async move {
                let handled = handle(&responder, &sqs, &opts, m, receipt.clone()).await;
                if let Some(h) = &handled {
                    report(h);
                }
                drop(permit);
                (receipt, handled)
            });
        }
    }
    // Stopping: in-flight runs get the grace period, then their messages
    // go back to the queue for another consumer.
    let deadline = tokio::time::sleep(opts.grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(done) => settle(done, &mut stats, &mut in_flight),
                None => break,
            },
            _ = &mut deadline => {
                tasks.abort_all();
                break;
            }
        }
    }
    for (id, receipt) in in_flight.drain(..) {
        let released = sqs
            .change_message_visibility()
            .queue_url(&opts.queue_url)
            .receipt_handle(&receipt)
            .visibility_timeout(0)
            .send()
            .await;
        match released {
            Ok(_) => stats.released += 1,
            Err(e) => {
                tracing::warn!(message = %id, error = %classify("ChangeMessageVisibility", "sqs:ChangeMessageVisibility", &opts.queue_url, e), "could not release a message; it returns after its visibility timeout")
            }
        }
    }
    Ok(stats)
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

fn settle(
    done: Result<(String, Option<Handled>), tokio::task::JoinError>,
    stats: &mut WatchStats,
    in_flight: &mut Vec<(String, String)>,
) {
    let Ok((receipt, handled)) = done else {
        // Aborted or panicked: stays in flight, released at shutdown.
        return;
    };
    in_flight.retain(|(_, r)| *r != receipt);
    match handled {
        Some(h) if h.deleted => stats.deleted += 1,
        _ => stats.kept += 1,
    }
}

/// One message: respond while its visibility is kept extended, then
/// delete it if settled, or schedule its redelivery.
async fn handle(
    responder: &Responder,
    sqs: &aws_sdk_sqs::Client,
    opts: &WatchOptions,
    m: Message,
    receipt: String,
) -> Option<Handled> {
    let id = m.message_id().unwrap_or("?").to_string();
    let receive_count = m
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let body = m.body().unwrap_or_default().as_bytes().to_vec();
    let heartbeat = {
        let (sqs, url, receipt, v) = (
            sqs.clone(),
            opts.queue_url.clone(),
            receipt.clone(),
            opts.visibility,
        );
        tokio::spawn(async move {
            let every = (v / 3).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                let extended = sqs
                    .change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(&receipt)
                    .visibility_timeout(secs(v))
                    .send()
                    .await;
                if let Err(e) = extended {
                    tracing::warn!(error = %classify("ChangeMessageVisibility", "sqs:ChangeMessageVisibility", &url, e), "could not extend a message's visibility");
                }
            }
        })
    };
    let outcomes = responder.respond_body(&body, Some(id.clone())).await;
    heartbeat.abort();
    let settled = outcomes.iter().all(Outcome::settled);
    let deleted = if settled {
        let r = sqs
            .delete_message()
            .queue_url(&opts.queue_url)
            .receipt_handle(&receipt)
            .send()
            .await;
        match r {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(message = %id, error = %classify("DeleteMessage", "sqs:DeleteMessage", &opts.queue_url, e), "could not delete a settled message; its redelivery resumes the same incident and changes nothing");
                false
            }
        }
    } else {
        let _ = sqs
            .change_message_visibility()
            .queue_url(&opts.queue_url)
            .receipt_handle(&receipt)
            .visibility_timeout(secs(opts.retry_after))
            .send()
            .await;
        false
    };
    Some(Handled {
        message_id: id,
        outcomes,
        deleted,
        receive_count,
    })
}
