//! One event in, one incident worked (or one refusal recorded): the path
//! `firebreak respond`, `watch` and the Lambda handler share.
//!
//! Order matters for safety: parse (bounded, strict) → route and allowlist
//! → re-read the source of truth → decide again on what was re-read →
//! only then open the incident and run the playbook. Every refusal before
//! the run makes no call beyond the re-read's reads.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use super::decide::{decide, Decision};
use super::event::{self, Event, Refusal};
use super::notify;
use super::refusals;
use super::reread::{reread, RereadError};
use super::routes::Routes;
use crate::aws::{Aws, AwsSettings, CallRecorder, Caller};
use crate::engine::{
    EngineError, Milestone, RunRequest, RunStatus, RunSummary, Session, Split, Targets,
};
use crate::state::{AuditEvent, StateError, StateStore};

/// What became of one event.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Not acted on, for good: recorded in the refusals log.
    Refused {
        code: &'static str,
        reason: String,
        event: Option<String>,
    },
    /// Not acted on yet: AWS could not be asked, or another responder
    /// holds the incident. Keep the message; a redelivery tries again.
    Deferred {
        reason: String,
        hint: String,
        incident: Option<String>,
    },
    /// The playbook ran.
    Responded(Box<Responded>),
}

#[derive(Debug, Serialize)]
pub struct Responded {
    pub incident: String,
    pub route: String,
    pub function: String,
    pub account: String,
    pub region: String,
    pub playbook: String,
    pub playbook_path: String,
    /// The incident existed already (a redelivery, or a run resumed).
    pub resumed: bool,
    pub status: RunStatus,
    pub summary: RunSummary,
    /// Steps held for a decision, with the flag that resolves each.
    pub decisions: Vec<Value>,
    pub failures: Vec<Value>,
    /// Notification sent to the route's topic, or why not.
    pub notified: Option<String>,
    pub timing: Timing,
    /// The first change's milestone, on the clocks of the connection
    /// that made it.
    #[serde(skip)]
    first_change: Option<(Milestone, Arc<CallRecorder>)>,
}

/// Where the time of one event went. `own_ms` is exact when events are
/// handled one at a time (concurrent ones share the connection's clock of
/// AWS round trips).
#[derive(Debug, Default, Serialize)]
pub struct Timing {
    /// When the event reached the responder (RFC 3339, ms).
    pub received_at: String,
    /// From the event's arrival to the end of its run.
    pub handled_ms: u64,
    /// Of which waiting for AWS's answers.
    pub aws_ms: u64,
    /// Of which held back to stay under AWS's request quotas.
    pub paced_ms: u64,
    /// Of which firebreak's own work (parsing, planning, journaling).
    pub own_ms: u64,
    /// The same split up to the answer to the first containment change
    /// (the throttle): how long the harm went on once the event arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_contain: Option<Split>,
}

impl Outcome {
    /// Whether the message that carried the event may be deleted: it was
    /// handled for good (refused, or its containment is journaled).
    pub fn settled(&self) -> bool {
        !matches!(self, Outcome::Deferred { .. })
    }
}

#[derive(Clone)]
struct Connected {
    aws: Aws,
    caller: Caller,
}

/// The responder: routes loaded once, a connection per region reused
/// across events.
pub struct Responder {
    pub routes: Routes,
    store: Arc<dyn StateStore>,
    settings: AwsSettings,
    connections: tokio::sync::Mutex<HashMap<String, Connected>>,
    run: String,
}

impl Responder {
    pub fn new(routes: Routes, store: Arc<dyn StateStore>, settings: AwsSettings) -> Self {
        Self {
            routes,
            store,
            settings,
            connections: Default::default(),
            run: crate::engine::new_run_id(),
        }
    }

    /// Uses `aws` (acting as `caller`) for events in `region` instead of
    /// connecting: a Lambda handler that already holds clients, and tests
    /// with recorded responses.
    pub async fn with_connection(self, region: &str, aws: Aws, caller: Caller) -> Self {
        self.connections
            .lock()
            .await
            .insert(format!("{region}|"), Connected { aws, caller });
        self
    }

    /// Every request this responder sent, over all its connections.
    pub async fn api_calls(&self) -> crate::aws::CallCounts {
        let mut total = crate::aws::CallCounts::default();
        for c in self.connections.lock().await.values() {
            total.add(&c.aws.api_calls());
        }
        total
    }

    /// One event as received (EventBridge, SNS, or a one-record SQS event).
    pub async fn respond(&self, raw: &[u8]) -> Vec<Outcome> {
        match event::parse(raw, &self.routes.allow.sns_topics) {
            Ok(events) => self.handle_all(raw, events).await,
            Err(r) => vec![self.refuse(raw, None, r).await],
        }
    }

    /// The body of one SQS message.
    pub async fn respond_body(&self, body: &[u8], message_id: Option<String>) -> Vec<Outcome> {
        match event::parse_body(body, message_id, &self.routes.allow.sns_topics) {
            Ok(events) => self.handle_all(body, events).await,
            Err(r) => vec![self.refuse(body, None, r).await],
        }
    }

    async fn handle_all(&self, raw: &[u8], events: Vec<Event>) -> Vec<Outcome> {
        // One delivery (a Security Hub event with many findings) may name
        // several functions; a route bounds how many it acts on at once.
        let mut per_route: HashMap<&str, usize> = HashMap::new();
        for e in &events {
            if let Ok(d) = decide(&self.routes, e) {
                *per_route.entry(d.route.name.as_str()).or_default() += 1;
            }
        }
        let over = self.routes.routes.iter().find(|r| {
            per_route
                .get(r.name.as_str())
                .is_some_and(|n| *n > r.max_targets as usize)
        });
        if let Some(route) = over {
            let n = per_route.get(route.name.as_str()).copied().unwrap_or(0);
            let refusal = Refusal::new(
                "too_many_targets",
                format!(
                    "the event names {n} functions for route `{}`, which acts on at most {} per event (`max_targets`)",
                    route.name, route.max_targets
                ),
            );
            return vec![self.refuse(raw, events.first(), refusal).await];
        }
        let mut out = Vec::new();
        for e in events {
            let received_at = crate::time::now_rfc3339();
            let clocks = self.clocks().await;
            let start = Milestone::sum(&clocks);
            let mut outcome = self.handle(raw, e).await;
            if let Outcome::Responded(r) = &mut outcome {
                let whole = Split::between(&start, &Milestone::sum(&self.clocks().await));
                r.timing = Timing {
                    received_at,
                    handled_ms: whole.elapsed_ms,
                    aws_ms: whole.aws_ms,
                    paced_ms: whole.paced_ms,
                    own_ms: whole.own_ms,
                    to_contain: r.first_change.as_ref().map(|(m, calls)| {
                        // Every call of one event goes through one
                        // connection (re-read and run alike); one made
                        // for this event started at zero.
                        let before = clocks
                            .iter()
                            .find(|(c, _)| Arc::ptr_eq(c, calls))
                            .map(|(_, m)| *m)
                            .unwrap_or(Milestone::zero(start.at));
                        Split::between(
                            &Milestone {
                                at: start.at,
                                ..before
                            },
                            m,
                        )
                    }),
                };
            }
            out.push(outcome);
        }
        out
    }

    /// Every connection's clocks, now.
    async fn clocks(&self) -> Vec<(Arc<CallRecorder>, Milestone)> {
        self.connections
            .lock()
            .await
            .values()
            .map(|c| (c.aws.calls.clone(), Milestone::now(&c.aws)))
            .collect()
    }

    async fn refuse(&self, raw: &[u8], event: Option<&Event>, refusal: Refusal) -> Outcome {
        let claimed = event.and_then(|e| serde_json::to_value(e).ok());
        let logged = refusals::record(
            &*self.store,
            &self.run,
            &refusal,
            refusals::describe(raw, claimed),
        )
        .await;
        if let Err(e) = logged {
            tracing::error!(error = %e, "could not record a refusal in the refusals log");
        }
        tracing::warn!(code = refusal.code, reason = %refusal.reason, "event refused");
        Outcome::Refused {
            code: refusal.code,
            reason: refusal.reason,
            event: event.map(Event::describe),
        }
    }

    async fn handle(&self, raw: &[u8], event: Event) -> Outcome {
        let decision = match decide(&self.routes, &event) {
            Ok(d) => d,
            Err(r) => return self.refuse(raw, Some(&event), r).await,
        };
        let conn = match self.connection(&decision, &event).await {
            Ok(c) => c,
            Err(o) => return o,
        };
        if let Err(r) = self.check_caller(&decision, &event, &conn.caller) {
            return self.refuse(raw, Some(&event), r).await;
        }
        let truth = match reread(&conn.aws, &event).await {
            Ok(t) => t,
            Err(RereadError::Refused(r)) => return self.refuse(raw, Some(&event), r).await,
            Err(RereadError::Failed(e)) => {
                return Outcome::Deferred {
                    reason: format!("could not re-read the event's source: {e}"),
                    hint: e.hint,
                    incident: Some(decision.incident.to_string()),
                }
            }
        };
        // Act on what was re-read: routed again on AWS's copy (a forged
        // severity or finding type must not pick a route the real finding
        // would not), it must choose the same route and the same function.
        match decide(&self.routes, &truth) {
            Ok(again)
                if again.route.name == decision.route.name
                    && again.function == decision.function => {}
            Ok(again) => {
                let r = Refusal::new(
                    "reread_mismatch",
                    format!(
                        "the event selects route `{}` for function {}, but what AWS holds selects route `{}` for function {}",
                        decision.route.name, decision.function, again.route.name, again.function
                    ),
                );
                return self.refuse(raw, Some(&event), r).await;
            }
            Err(r) => {
                let r = Refusal::new(
                    "reread_mismatch",
                    format!("what AWS holds would not be acted on: {}", r.reason),
                );
                return self.refuse(raw, Some(&event), r).await;
            }
        }
        self.run_playbook(&decision, &event, &truth, conn).await
    }

    /// Credentials must be for the event's account, unless the route
    /// assumes a role there.
    fn check_caller(
        &self,
        d: &Decision<'_>,
        event: &Event,
        caller: &Caller,
    ) -> Result<(), Refusal> {
        let account = event.account();
        if caller.account == account {
            return Ok(());
        }
        Err(Refusal::new(
            "account_mismatch",
            format!(
                "the event is about account {account} but the responder's credentials are for {} and route `{}` assumes no role there",
                caller.account, d.route.name
            ),
        ))
    }

    async fn connection(&self, d: &Decision<'_>, event: &Event) -> Result<Connected, Outcome> {
        let region = event.region().to_string();
        let role = d.route.assume_role.get(event.account()).cloned();
        let key = format!("{region}|{}", role.as_deref().unwrap_or(""));
        let mut cache = self.connections.lock().await;
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let settings = AwsSettings {
            region: Some(region),
            ..self.settings.clone()
        };
        let deferred = |e: crate::aws::AwsError| Outcome::Deferred {
            reason: format!("could not reach AWS: {e}"),
            hint: e.hint.clone(),
            incident: Some(d.incident.to_string()),
        };
        let mut aws = Aws::connect(&settings).await.map_err(deferred)?;
        if let Some(role) = &role {
            aws = aws
                .assuming(role, "firebreak-responder")
                .await
                .map_err(deferred)?;
        }
        let caller = aws.caller().await.map_err(deferred)?;
        let c = Connected { aws, caller };
        cache.insert(key, c.clone());
        Ok(c)
    }

    async fn run_playbook(
        &self,
        d: &Decision<'_>,
        event: &Event,
        truth: &Event,
        conn: Connected,
    ) -> Outcome {
        let route = d.route;
        let resumed = self.store.exists(&d.incident).unwrap_or(false);
        let mut params = route.params.clone();
        params.insert("function".into(), json!(d.function));
        let details = json!({
            "playbook": {"name": route.playbook.name, "path": route.playbook.source.display_path(), "sha256": route.playbook.sha256},
            "params": params,
            "phases": route.phases,
            "route": route.name,
            "routes_sha256": self.routes.sha256,
        });
        let opened = Session::open_connected(
            &*self.store,
            &d.incident,
            conn.aws,
            conn.caller,
            "firebreak respond",
            details,
        );
        let session = match opened {
            Ok(s) => s,
            Err(EngineError::State(e @ StateError::Locked { .. })) => {
                return Outcome::Deferred {
                    reason: e.to_string(),
                    hint: "nothing to do: that responder finishes it, or it is taken over once its lease expires".into(),
                    incident: Some(d.incident.to_string()),
                }
            }
            Err(e) => return self.failed(d, e),
        };
        let trigger =
            json!({"event": event, "reread": truth, "route": route.name, "function": d.function});
        if let Err(e) = session.audit(AuditEvent::Triggered, None, trigger) {
            return self.failed(d, e);
        }
        let result = async {
            let request = RunRequest {
                playbook: &route.playbook,
                params: &params,
                phases: &route.phases,
                targets: Targets::AsGiven,
                concurrency: 1,
            };
            // A route is approved ahead of the alarm: as with `run --yes`,
            // harm-stopping steps start once planned, and a role quarantine
            // whose scope the route chose does not wait for the region's
            // listing (its blast radius is named after containment).
            session
                .plan_and_execute(&request, "firebreak respond")
                .await
        }
        .await;
        let (set, report) = match result {
            Ok(x) => x,
            Err(e) => return self.failed(d, e),
        };
        let mut responded = Responded {
            incident: d.incident.to_string(),
            route: route.name.clone(),
            function: d.function.clone(),
            account: event.account().to_string(),
            region: event.region().to_string(),
            playbook: route.playbook.name.clone(),
            playbook_path: route.playbook.source.display_path(),
            resumed,
            status: report.status(),
            summary: report.summary(set.summary()),
            decisions: report
                .decisions
                .iter()
                .filter_map(|x| serde_json::to_value(x).ok())
                .collect(),
            failures: report
                .failures
                .iter()
                .filter_map(|x| serde_json::to_value(x).ok())
                .collect(),
            notified: None,
            timing: Timing::default(),
            first_change: session
                .first_change()
                .map(|m| (m, session.aws.calls.clone())),
        };
        if let Some(topic) = &route.notify {
            responded.notified = Some(notify::send(&session.aws, topic, &responded).await);
        }
        drop(session);
        Outcome::Responded(Box::new(responded))
    }

    /// The run could not finish. Its journal holds what was done, so the
    /// message is kept: the redelivery resumes the incident.
    fn failed(&self, d: &Decision<'_>, e: EngineError) -> Outcome {
        Outcome::Deferred {
            reason: format!("incident {}: {e}", d.incident),
            hint: e.hint(),
            incident: Some(d.incident.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_split_is_what_was_left_after_aws_and_pacing() {
        let t0 = Instant::now();
        let start = Milestone {
            at: t0,
            aws_wait: Duration::from_millis(500),
            paced: Duration::from_millis(7),
            waited: Duration::from_millis(505),
        };
        let end = Milestone {
            at: t0 + Duration::from_millis(90),
            aws_wait: Duration::from_millis(560),
            paced: Duration::from_millis(17),
            waited: Duration::from_millis(575),
        };
        let s = Split::between(&start, &end);
        assert_eq!(
            (s.elapsed_ms, s.aws_ms, s.paced_ms, s.waiting_ms, s.own_ms),
            (90, 60, 10, 70, 20)
        );
        // Requests side by side: the sums pass the wall clock, the time
        // waited does not, and the own share is what is left of it.
        let side_by_side = Milestone {
            aws_wait: Duration::from_millis(700),
            ..end
        };
        let s = Split::between(&start, &side_by_side);
        assert_eq!((s.aws_ms, s.waiting_ms, s.own_ms), (200, 70, 20));
        // Clocks shared with concurrent events can run ahead of the wall
        // clock; the own share never goes negative.
        let busy = Milestone {
            waited: Duration::from_millis(700),
            ..end
        };
        assert_eq!(Split::between(&start, &busy).own_ms, 0);
    }
}
