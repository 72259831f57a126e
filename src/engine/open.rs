//! Starting a run: the incident opened and locked, AWS reached, the caller
//! known, the start recorded. Every entry point (CLI, queue worker, Lambda
//! handler, drill) opens its session here, so each run's trail begins the
//! same way.

use serde_json::{json, Value};

use super::{EngineError, Session};
use crate::aws::{Aws, AwsSettings, Caller};
use crate::state::{AuditEvent, Incident, IncidentId, StateStore};

/// A run id: the time and the process, unique enough to tell runs apart
/// in one incident's trail.
pub fn new_run_id() -> String {
    format!(
        "run-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    )
}

impl Session {
    /// Opens (and locks) the incident in `store`, reaches AWS with
    /// `settings`, learns the caller and records the start of `command`
    /// with `details` in the audit trail. A torn last record left by a
    /// crash is cut off and reported; a failure to reach AWS is recorded
    /// in the trail before it is returned.
    pub async fn open(
        store: &dyn StateStore,
        id: &IncidentId,
        settings: &AwsSettings,
        command: &str,
        details: Value,
    ) -> Result<Session, EngineError> {
        let mut incident = open_repaired(store, id, command)?;
        let connected = match Aws::connect(settings).await {
            Ok(aws) => aws.caller().await.map(|c| (aws, c)),
            Err(e) => Err(e),
        };
        let (aws, caller) = match connected {
            Ok(x) => x,
            Err(e) => {
                incident.audit.append(
                    AuditEvent::Error.as_str(),
                    None,
                    json!({"message": e.to_string(), "hint": e.hint}),
                )?;
                return Err(EngineError::Connect(Box::new(e)));
            }
        };
        Self::start(incident, aws, caller, settings.dry_run, command, details)
    }

    /// Opens (and locks) the incident with a connection already made: a
    /// responder handling many events reaches AWS once, not per event.
    pub fn open_connected(
        store: &dyn StateStore,
        id: &IncidentId,
        aws: Aws,
        caller: Caller,
        command: &str,
        details: Value,
    ) -> Result<Session, EngineError> {
        let incident = open_repaired(store, id, command)?;
        let dry_run = aws.dry_run;
        Self::start(incident, aws, caller, dry_run, command, details)
    }

    fn start(
        mut incident: Incident,
        aws: Aws,
        caller: Caller,
        dry_run: bool,
        command: &str,
        mut details: Value,
    ) -> Result<Session, EngineError> {
        incident.audit.caller = Some(caller.clone());
        details["command"] = json!(command);
        details["dry_run"] = json!(dry_run);
        details["region"] = json!(aws.region);
        details["endpoint_url"] = json!(aws.endpoint_url);
        details["firebreak_version"] = json!(env!("CARGO_PKG_VERSION"));
        incident
            .audit
            .append(AuditEvent::RunStarted.as_str(), None, details)?;
        Ok(Session::new(aws, caller, incident))
    }
}

/// The incident locked, a torn last record left by a crash cut off and
/// reported in the trail.
fn open_repaired(
    store: &dyn StateStore,
    id: &IncidentId,
    command: &str,
) -> Result<Incident, EngineError> {
    let mut incident = Incident::open_in(store, id, &new_run_id(), command)?;
    if incident.journal.torn_bytes > 0 || incident.audit.torn_bytes > 0 {
        let (j, a) = (incident.journal.torn_bytes, incident.audit.torn_bytes);
        incident.audit.append(
            AuditEvent::Repaired.as_str(),
            None,
            json!({"journal_torn_bytes": j, "audit_torn_bytes": a, "detail": "an interrupted write left an incomplete last record; it was cut off"}),
        )?;
    }
    Ok(incident)
}
