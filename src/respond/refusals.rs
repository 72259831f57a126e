//! The refusals log: every event the responder would not act on, in the
//! audit trail's own hash-chained format, one log per UTC day in the same
//! state store as the incidents (so `firebreak audit verify --incident
//! refusals-YYYYMMDD` checks it, and a fleet shares it).

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::event::Refusal;
use crate::state::{AuditEvent, Incident, IncidentId, StateError, StateStore};

/// The id of today's refusals log.
pub fn log_id() -> Result<IncidentId, StateError> {
    IncidentId::parse(&format!("refusals-{}", chrono::Utc::now().format("%Y%m%d")))
}

/// What the log keeps of the event: its hash and size always (so the
/// original can be matched later), what it claimed when it parsed.
pub fn describe(raw: &[u8], parsed: Option<Value>) -> Value {
    json!({
        "sha256": hex::encode(Sha256::digest(raw)),
        "bytes": raw.len(),
        "claimed": parsed,
    })
}

/// Appends one refusal. Several responders may refuse at once: the log is
/// locked per append, and a held lock is waited for briefly.
pub async fn record(
    store: &dyn StateStore,
    run: &str,
    refusal: &Refusal,
    event: Value,
) -> Result<(), StateError> {
    let id = log_id()?;
    let mut attempt = 0;
    loop {
        match Incident::open_in(store, &id, run, "firebreak respond") {
            Ok(mut log) => {
                let data = json!({"code": refusal.code, "reason": refusal.reason, "event": event});
                log.audit
                    .append(AuditEvent::EventRefused.as_str(), None, data)?;
                return log.release();
            }
            Err(StateError::Locked { .. }) if attempt < 100 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
