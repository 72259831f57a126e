//! Events as they reach the responder, parsed into strict types.
//!
//! An event is attacker-influenced input (design contract 10): whoever can
//! send to the queue, publish to the topic or put events on the bus can
//! write any JSON. So parsing is bounded (size, depth), the envelopes are
//! matched field by field (an unexpected field is refused, not ignored),
//! and what comes out is only what can select a route and name a target.
//! Nothing here is trusted yet: the responder re-reads the alarm or the
//! finding from AWS before it acts.

mod alarm;
mod envelope;
mod finding;
mod limits;
mod time;

use serde::Serialize;

pub use envelope::{parse, parse_body};
pub use limits::{MAX_EVENT_BYTES, MAX_EVENT_DEPTH};

/// How the event travelled, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Hop {
    Sqs {
        message_id: Option<String>,
    },
    Sns {
        topic_arn: String,
        message_id: String,
    },
    EventBridge {
        id: String,
        source: String,
    },
}

/// A CloudWatch alarm state change, as the event tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmChange {
    pub arn: String,
    pub name: String,
    pub account: String,
    pub region: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// When the alarm changed state, normalised to UTC milliseconds so
    /// that SNS and EventBridge deliveries of one change agree.
    pub changed_at: String,
    /// The metric's dimensions, by name.
    pub dimensions: Vec<(String, String)>,
}

/// A GuardDuty or Security Hub finding about a Lambda function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: String,
    /// GuardDuty: the finding's ARN; Security Hub: the product ARN.
    pub arn: String,
    pub account: String,
    pub region: String,
    pub types: Vec<String>,
    pub severity: f64,
    /// The function as the finding names it (name or ARN).
    pub function: String,
    pub function_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Alarm(AlarmChange),
    GuardDuty(Finding),
    SecurityHub(Finding),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub hops: Vec<Hop>,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    pub fn account(&self) -> &str {
        match &self.kind {
            EventKind::Alarm(a) => &a.account,
            EventKind::GuardDuty(f) | EventKind::SecurityHub(f) => &f.account,
        }
    }

    pub fn region(&self) -> &str {
        match &self.kind {
            EventKind::Alarm(a) => &a.region,
            EventKind::GuardDuty(f) | EventKind::SecurityHub(f) => &f.region,
        }
    }

    /// A short human description for logs and refusals.
    pub fn describe(&self) -> String {
        match &self.kind {
            EventKind::Alarm(a) => format!("alarm {} ({}) -> {}", a.name, a.arn, a.state),
            EventKind::GuardDuty(f) => format!("GuardDuty finding {}", f.id),
            EventKind::SecurityHub(f) => format!("Security Hub finding {}", f.id),
        }
    }
}

/// Why an event is not acted on. `code` is stable (tests and dashboards
/// match on it); `reason` says what was wrong in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub code: &'static str,
    pub reason: String,
}

impl Refusal {
    pub fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}
