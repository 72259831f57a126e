//! One invocation: an SQS batch, or one event (EventBridge, SNS, or an SQS
//! event of one record), through the responder `respond` and `watch` use.
//!
//! SQS delivers at least once and redelivers what is not deleted. With
//! `ReportBatchItemFailures` on the event source mapping, the response
//! names the records to keep (`batchItemFailures`); Lambda deletes the
//! others. A record is kept exactly when one of its outcomes is not
//! settled (deferred: AWS could not be asked, or another responder holds
//! the incident), the rule `watch` deletes by. A redelivered record
//! resumes its incident from the journal: nothing is done twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::config::Config;
use crate::playbook::LoadError;
use crate::respond::{routes, Outcome, Responder};
use crate::state::{LeaseTerms, S3Store, StateError};

/// A record is only started with at least this much time left before
/// Lambda's deadline; later ones are reported failed and come back.
pub const RECORD_BUDGET: Duration = Duration::from_secs(60);

/// Why the responder could not start (a cold start fails with it).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] super::config::ConfigError),
    #[error("routes: {0} (hint: {hint})", hint = .0.hint())]
    Routes(#[from] LoadError),
    #[error("incident state: {0}")]
    State(#[from] StateError),
}

/// An invocation that must be retried as a whole.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event was not settled (its outcomes are in the log): failing
    /// the invocation makes EventBridge or Lambda's async retries deliver
    /// it again, and the redelivery resumes the incident.
    #[error("not settled, to be delivered again: {}", .reasons.join("; "))]
    Deferred { reasons: Vec<String> },
    /// A record to keep has no `messageId`, so it cannot be named alone.
    #[error("an SQS record to be redelivered has no messageId: the whole batch is left for redelivery (records already handled resume their incidents and change nothing)")]
    Unidentified,
}

pub struct Handler {
    responder: Arc<Responder>,
    record_budget: Duration,
}

impl Handler {
    pub fn new(responder: Responder) -> Self {
        Self {
            responder: Arc::new(responder),
            record_budget: RECORD_BUDGET,
        }
    }

    /// The routes loaded once and the shared state store, as `config` says.
    pub fn from_config(config: &Config) -> Result<Self, StartError> {
        let routes = routes::load(&config.routes)?;
        let store = S3Store::connect(
            config.state.clone(),
            config.settings.clone(),
            LeaseTerms::new(config.lease),
        )?;
        Ok(Self::new(Responder::new(
            routes,
            Arc::new(store),
            config.settings.clone(),
        )))
    }

    pub fn with_record_budget(mut self, budget: Duration) -> Self {
        self.record_budget = budget;
        self
    }

    pub fn responder(&self) -> &Responder {
        &self.responder
    }

    /// Handles one invocation's payload. `deadline` is when Lambda stops
    /// the invocation (none: no limit).
    pub async fn handle(
        &self,
        payload: &Value,
        deadline: Option<Instant>,
    ) -> Result<Value, HandlerError> {
        match sqs_records(payload) {
            Some(records) => self.batch(records, deadline).await,
            None => self.single(payload).await,
        }
    }

    async fn single(&self, payload: &Value) -> Result<Value, HandlerError> {
        let outcomes = self.responder.respond(payload.to_string().as_bytes()).await;
        log(None, &outcomes);
        let reasons: Vec<String> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Deferred { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        if reasons.is_empty() {
            Ok(json!({ "outcomes": outcomes }))
        } else {
            Err(HandlerError::Deferred { reasons })
        }
    }

    async fn batch(
        &self,
        records: &[Value],
        deadline: Option<Instant>,
    ) -> Result<Value, HandlerError> {
        let mut keep: Vec<Option<String>> = Vec::new();
        for record in records {
            let id = record
                .get("messageId")
                .and_then(Value::as_str)
                .map(str::to_string);
            // A FIFO queue's order holds only if nothing after a kept
            // record is deleted before it.
            let fifo_blocked = !keep.is_empty() && is_fifo(record);
            let late = deadline
                .is_some_and(|d| d.saturating_duration_since(Instant::now()) < self.record_budget);
            if fifo_blocked || late {
                tracing::warn!(
                    message = id.as_deref().unwrap_or("?"),
                    "not started ({}): left for redelivery",
                    if late {
                        "too close to the invocation's deadline"
                    } else {
                        "an earlier record of this FIFO batch is kept"
                    }
                );
                keep.push(id);
                continue;
            }
            let outcomes = match record.get("body").and_then(Value::as_str) {
                Some(body) => {
                    self.responder
                        .respond_body(body.as_bytes(), id.clone())
                        .await
                }
                // Refused (and logged) for what it lacks, like any
                // malformed event.
                None => {
                    let one = json!({ "Records": [record] });
                    self.responder.respond(one.to_string().as_bytes()).await
                }
            };
            log(id.as_deref(), &outcomes);
            if !outcomes.iter().all(Outcome::settled) {
                keep.push(id);
            }
        }
        let mut failures = Vec::new();
        for id in keep {
            match id {
                Some(id) => failures.push(json!({ "itemIdentifier": id })),
                None => return Err(HandlerError::Unidentified),
            }
        }
        Ok(json!({ "batchItemFailures": failures }))
    }
}

/// The records of a Lambda SQS event (every record from SQS), if it is one.
fn sqs_records(payload: &Value) -> Option<&[Value]> {
    let records = payload.get("Records")?.as_array()?;
    let all_sqs = !records.is_empty()
        && records
            .iter()
            .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"));
    all_sqs.then_some(records.as_slice())
}

fn is_fifo(record: &Value) -> bool {
    record
        .get("eventSourceARN")
        .and_then(Value::as_str)
        .is_some_and(|a| a.ends_with(".fifo"))
}

/// One log line per outcome, as JSON (CloudWatch Logs keeps them).
fn log(message: Option<&str>, outcomes: &[Outcome]) {
    for o in outcomes {
        let text = serde_json::to_string(o).unwrap_or_default();
        match o {
            Outcome::Deferred { .. } => {
                tracing::warn!(message = message.unwrap_or("-"), outcome = %text, "deferred")
            }
            _ => tracing::info!(message = message.unwrap_or("-"), outcome = %text, "handled"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqs_batch_is_recognised_only_when_every_record_is_from_sqs() {
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}, {"eventSource": "aws:sqs"}]});
        assert_eq!(sqs_records(&sqs).map(<[Value]>::len), Some(2));
        let mixed = json!({"Records": [{"eventSource": "aws:sqs"}, {"EventSource": "aws:sns"}]});
        assert!(sqs_records(&mixed).is_none());
        assert!(sqs_records(&json!({"Records": []})).is_none());
        assert!(sqs_records(&json!({"detail-type": "x"})).is_none());
        assert!(is_fifo(
            &json!({"eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:q.fifo"})
        ));
    }
}
