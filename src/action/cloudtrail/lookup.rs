//! CloudTrail's LookupEvents API: the last 90 days of management events,
//! one lookup attribute per call, 50 events a page, 2 calls a second per
//! account and region.
//!
//! Calls are paced ahead of time by the run's call path (`aws::call_path`,
//! family `cloudtrail_lookup`, 2/s), which also re-sends a throttled page
//! after the family's pause. A page whose answer still fails with a
//! retryable error (throttling that outlasted the call path, 5xx, a
//! timeout) is asked again here, same token, after a longer backoff; the
//! SDK's own retries are off for this client so that there is no third
//! layer. Every page is read before anything is written: a page that fails
//! fails the whole collection, and nothing partial is ever stored.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudtrail::error::SdkError;
use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsError, LookupEventsOutput};
use aws_sdk_cloudtrail::types::{Event, LookupAttribute, LookupAttributeKey};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime as SmithyTime;
use serde_json::{json, Value};

use super::window::Window;
use crate::action::ActionError;
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};

pub const PAGE_SIZE: i32 = 50;

/// One lookup attribute (the API takes exactly one per call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub key: LookupAttributeKey,
    pub value: String,
}

impl Query {
    pub fn new(key: LookupAttributeKey, value: impl Into<String>) -> Self {
        Self {
            key,
            value: value.into(),
        }
    }

    pub fn describe(&self) -> String {
        format!("{}={}", self.key.as_str(), self.value)
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Attempts per page when throttled or when AWS answers 5xx.
    pub attempts: u32,
    /// The first backoff; it doubles with each attempt.
    pub backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            attempts: 6,
            backoff: Duration::from_secs(1),
        }
    }
}

/// What the lookup found: events deduplicated by `EventId`, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub events: Vec<Value>,
    /// Pages read, per query (`ResourceName=victim: 3`).
    pub pages: BTreeMap<String, u32>,
    pub throttled: u32,
}

fn time(t: Option<&SmithyTime>) -> Value {
    json!(t.and_then(|t| t.fmt(Format::DateTime).ok()))
}

fn event_json(e: &Event) -> Value {
    // The raw CloudTrailEvent is kept verbatim: it is the record itself.
    json!({
        "EventId": e.event_id(),
        "EventTime": time(e.event_time()),
        "EventName": e.event_name(),
        "EventSource": e.event_source(),
        "Username": e.username(),
        "ReadOnly": e.read_only(),
        "AccessKeyId": e.access_key_id(),
        "Resources": e.resources().iter().map(|r| json!({
            "ResourceType": r.resource_type(),
            "ResourceName": r.resource_name(),
        })).collect::<Vec<_>>(),
        "CloudTrailEvent": e.cloud_trail_event(),
        "MatchedBy": [],
    })
}

/// The endpoint has no CloudTrail (LocalStack community answers 501).
fn not_implemented(err: &SdkError<LookupEventsError, HttpResponse>) -> bool {
    matches!(err, SdkError::ServiceError(se) if se.raw().status().as_u16() == 501)
}

fn unavailable(target: &str) -> ActionError {
    AwsError::new(
        "LookupEvents",
        target,
        AwsErrorKind::InvalidRequest,
        "this endpoint does not implement CloudTrail LookupEvents (HTTP 501; LocalStack community has no CloudTrail)",
        "set `lookup_api: false` and give `trail_bucket` (the S3 bucket the trail delivers to) to read the trail's log files instead",
    )
    .into()
}

/// Runs every query over the window, all pages, and merges the results.
pub async fn lookup(
    client: &aws_sdk_cloudtrail::Client,
    queries: &[Query],
    window: &Window,
    settings: &Settings,
) -> Result<Found, ActionError> {
    let mut by_id: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut found = Found::default();
    for q in queries {
        let attribute = LookupAttribute::builder()
            .attribute_key(q.key.clone())
            .attribute_value(&q.value)
            .build()
            .map_err(|e| {
                ActionError::input(
                    format!("lookup attribute {}: {e}", q.describe()),
                    "this is a bug in firebreak; please report it",
                )
            })?;
        let mut token: Option<String> = None;
        let mut page = 0u32;
        loop {
            page += 1;
            let target = format!("{} (page {page})", q.describe());
            let out = page_with_backoff(
                client,
                &attribute,
                window,
                token.as_deref(),
                settings,
                &target,
                &mut found.throttled,
            )
            .await?;
            for e in out.events() {
                let mut v = event_json(e);
                let id = v["EventId"].as_str().unwrap_or_default().to_string();
                let at = v["EventTime"].as_str().unwrap_or_default().to_string();
                let entry = by_id
                    .entry((at, id))
                    .or_insert_with(|| std::mem::take(&mut v));
                if let Some(m) = entry["MatchedBy"].as_array_mut() {
                    let d = json!(q.describe());
                    if !m.contains(&d) {
                        m.push(d);
                    }
                }
            }
            token = out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        found.pages.insert(q.describe(), page);
    }
    found.events = by_id.into_values().collect();
    Ok(found)
}

async fn page_with_backoff(
    client: &aws_sdk_cloudtrail::Client,
    attribute: &LookupAttribute,
    window: &Window,
    token: Option<&str>,
    settings: &Settings,
    target: &str,
    throttled: &mut u32,
) -> Result<LookupEventsOutput, ActionError> {
    let mut attempt = 0u32;
    loop {
        let result = client
            .lookup_events()
            .lookup_attributes(attribute.clone())
            .start_time(SmithyTime::from_secs(window.start.timestamp()))
            .end_time(SmithyTime::from_secs(window.end.timestamp()))
            .max_results(PAGE_SIZE)
            .set_next_token(token.map(str::to_string))
            .send()
            .await;
        let err = match result {
            Ok(out) => return Ok(out),
            Err(e) if not_implemented(&e) => return Err(unavailable(target)),
            Err(e) => classify("LookupEvents", "cloudtrail:LookupEvents", target, e),
        };
        attempt += 1;
        if err.kind == AwsErrorKind::Throttled {
            *throttled += 1;
        }
        if !err.kind.retryable() || attempt >= settings.attempts {
            let mut err = err;
            if attempt > 1 {
                err.message = format!("{} (after {attempt} attempts)", err.message);
            }
            return Err(err.into());
        }
        let pause = settings.backoff.saturating_mul(1 << (attempt - 1).min(6));
        tracing::warn!(%target, attempt, ?pause, "LookupEvents: {}; backing off", err.message);
        tokio::time::sleep(pause).await;
    }
}
