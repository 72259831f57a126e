//! Every kind of audit record, by name. The trail stores the name as text
//! (`event` in each JSON line, documented in docs/architecture.md); code
//! speaks this enum, so a misspelt event is a compile error, not a record
//! that no reader ever finds.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditEvent {
    /// A command started: playbook, params, phases, caller, endpoint.
    #[serde(rename = "run_started")]
    RunStarted,
    /// `--target` selectors and what they matched.
    #[serde(rename = "targets")]
    Targets,
    /// What a step read.
    #[serde(rename = "observation")]
    Observation,
    /// A change a plan contains.
    #[serde(rename = "planned")]
    Planned,
    /// A step held until someone decides (contract 14).
    #[serde(rename = "held")]
    Held,
    /// A step whose `when` was false.
    #[serde(rename = "skipped")]
    Skipped,
    #[serde(rename = "plan_saved")]
    PlanSaved,
    /// Confirmation refused, or another reason nothing was changed.
    #[serde(rename = "refused")]
    Refused,
    /// About to make an AWS call that changes something (after the journal
    /// intent).
    #[serde(rename = "applying")]
    Applying,
    #[serde(rename = "applied")]
    Applied,
    /// The call failed in a way that may have taken effect.
    #[serde(rename = "outcome_unknown")]
    OutcomeUnknown,
    /// An interrupted earlier run's change, confirmed by re-observation.
    #[serde(rename = "confirmed")]
    Confirmed,
    #[serde(rename = "already_satisfied")]
    AlreadySatisfied,
    #[serde(rename = "verification")]
    Verification,
    #[serde(rename = "error")]
    Error,
    /// A torn last record cut off on open.
    #[serde(rename = "repaired")]
    Repaired,
    /// One `firebreak recover` decision per item.
    #[serde(rename = "recover_planned")]
    RecoverPlanned,
    #[serde(rename = "run_finished")]
    RunFinished,
    /// An evidence manifest written, with its hash.
    #[serde(rename = "evidence.manifest")]
    EvidenceManifest,
    /// The audit trail copied to the forensic bucket, with its hash.
    #[serde(rename = "evidence.audit_copy")]
    EvidenceAuditCopy,
    /// The alarm or finding that started this incident, as delivered and
    /// as re-read from AWS (`firebreak respond`, `watch`).
    #[serde(rename = "triggered")]
    Triggered,
    /// An event the responder would not act on, and why (the refusals log).
    #[serde(rename = "event_refused")]
    EventRefused,
    /// Every function a change affected, named after containment when the
    /// change went on before the region's functions were listed (a role
    /// quarantine in `run --yes`, contract 13).
    #[serde(rename = "blast_radius")]
    BlastRadius,
}

impl AuditEvent {
    pub const ALL: [AuditEvent; 23] = [
        AuditEvent::RunStarted,
        AuditEvent::Targets,
        AuditEvent::Observation,
        AuditEvent::Planned,
        AuditEvent::Held,
        AuditEvent::Skipped,
        AuditEvent::PlanSaved,
        AuditEvent::Refused,
        AuditEvent::Applying,
        AuditEvent::Applied,
        AuditEvent::OutcomeUnknown,
        AuditEvent::Confirmed,
        AuditEvent::AlreadySatisfied,
        AuditEvent::Verification,
        AuditEvent::Error,
        AuditEvent::Repaired,
        AuditEvent::RecoverPlanned,
        AuditEvent::RunFinished,
        AuditEvent::EvidenceManifest,
        AuditEvent::EvidenceAuditCopy,
        AuditEvent::Triggered,
        AuditEvent::EventRefused,
        AuditEvent::BlastRadius,
    ];

    /// The name written in the trail.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditEvent::RunStarted => "run_started",
            AuditEvent::Targets => "targets",
            AuditEvent::Observation => "observation",
            AuditEvent::Planned => "planned",
            AuditEvent::Held => "held",
            AuditEvent::Skipped => "skipped",
            AuditEvent::PlanSaved => "plan_saved",
            AuditEvent::Refused => "refused",
            AuditEvent::Applying => "applying",
            AuditEvent::Applied => "applied",
            AuditEvent::OutcomeUnknown => "outcome_unknown",
            AuditEvent::Confirmed => "confirmed",
            AuditEvent::AlreadySatisfied => "already_satisfied",
            AuditEvent::Verification => "verification",
            AuditEvent::Error => "error",
            AuditEvent::Repaired => "repaired",
            AuditEvent::RecoverPlanned => "recover_planned",
            AuditEvent::RunFinished => "run_finished",
            AuditEvent::EvidenceManifest => "evidence.manifest",
            AuditEvent::EvidenceAuditCopy => "evidence.audit_copy",
            AuditEvent::Triggered => "triggered",
            AuditEvent::EventRefused => "event_refused",
            AuditEvent::BlastRadius => "blast_radius",
        }
    }

    /// The event a trail line names, if firebreak knows it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for e in AuditEvent::ALL {
            assert_eq!(AuditEvent::parse(e.as_str()), Some(e));
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::json!(e.as_str())
            );
        }
        assert_eq!(AuditEvent::parse("aplied"), None);
    }
}
