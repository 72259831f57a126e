//! Chain of custody at the end of a run (design contracts 6 and 9).
//!
//! When the playbook writes evidence, two more things go to its forensic
//! bucket after every step has run:
//! - the state each changing step observed *before* its change
//!   (`pre-change/<step>.json`), listed in the target's manifest, so that
//!   containing first loses nothing: what the role, the policy or the event
//!   sources looked like is preserved like any other artifact;
//! - a copy of the incident's audit trail as it stands
//!   (`<incident>/<account>/<region>/audit/audit.<lines>.jsonl`), named by
//!   its length so each run's copy is a new object and a repeated copy of
//!   the same trail is a no-op. Its hash is appended to the trail
//!   (`evidence.audit_copy`), which the next copy and `evidence verify`
//!   carry forward.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{EngineError, Session};
use crate::action::evidence::{
    evidence_err, open_store, retention_from, write_listed, Listed, ManifestTarget,
};
use crate::action::ActionError;
use crate::evidence::audit_copy::AuditCopy;
use crate::evidence::store::{artifact_key, ForensicStore, Retention};
use crate::plan::{Plan, StepStatus};
use crate::state::AuditEvent;
use crate::state::JournalEvent;

/// Where a run wrote evidence, kept with the incident's state (metadata
/// `custody`) so that `recover`, which works from the journal alone,
/// copies its trail there too.
const CUSTODY_META: &str = "custody";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CustodyConfig {
    bucket: String,
    retention: Retention,
    role: Option<String>,
}
const EVIDENCE_ACTIONS: [&str; 3] = ["evidence.", "logs.", "cloudtrail."];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CustodyReport {
    pub bucket: Option<String>,
    /// `pre-change/...` objects written this run.
    pub pre_change: Vec<String>,
    pub audit_copy: Option<AuditCopy>,
}

/// The forensic bucket (and retention) the playbook's evidence steps use:
/// the first evidence step with a `bucket` argument.
pub fn evidence_bucket(plans: &[Plan]) -> Option<(String, Retention, Option<String>)> {
    plans.iter().flat_map(|p| &p.steps).find_map(|s| {
        if !EVIDENCE_ACTIONS.iter().any(|p| s.action.starts_with(p)) {
            return None;
        }
        let bucket = s.args.get("bucket")?.as_str()?.to_string();
        let role = s
            .args
            .get("bucket_role")
            .and_then(Value::as_str)
            .map(str::to_string);
        Some((bucket, retention_from(&s.args), role))
    })
}

fn custody_err(source: ActionError) -> EngineError {
    EngineError::Step {
        step: "chain-of-custody".into(),
        action: "evidence".into(),
        source,
    }
}

/// The function a plan is about: the first step aimed at a Lambda function.
fn function_of(plan: &Plan) -> Option<String> {
    plan.steps.iter().find_map(|s| {
        let t = s.target.as_deref()?;
        let (_, rest) = t.split_once(":function:")?;
        Some(rest.split(':').next().unwrap_or(rest).to_string())
    })
}

impl Session {
    /// Preserves pre-change observations and copies the audit trail; a no-op
    /// for a playbook that writes no evidence.
    pub async fn seal(&self, plans: &[Plan]) -> Result<CustodyReport, EngineError> {
        let Some((bucket, retention, role)) = evidence_bucket(plans) else {
            return Ok(CustodyReport::default());
        };
        self.remember_custody(&CustodyConfig {
            bucket: bucket.clone(),
            retention,
            role: role.clone(),
        })?;
        let store = open_store(
            &self.aws,
            &self.run,
            &bucket,
            role.as_deref(),
            Some(retention),
            &self.incident_id,
        )
        .await
        .map_err(custody_err)?;
        let mut report = CustodyReport {
            bucket: Some(bucket.clone()),
            ..CustodyReport::default()
        };
        for plan in plans {
            report
                .pre_change
                .extend(self.seal_pre_change(&store, plan).await?);
        }
        // A run that changed nothing adds only reads to the trail: the
        // copy waits for the next run that does something, so a repeated
        // run writes nothing new.
        let changed = plans.iter().any(|p| p.summary().changes > 0);
        if changed || !report.pre_change.is_empty() {
            report.audit_copy = Some(self.copy_audit(&store).await?);
        }
        Ok(report)
    }

    async fn seal_pre_change(
        &self,
        store: &ForensicStore,
        plan: &Plan,
    ) -> Result<Vec<String>, EngineError> {
        let Some(function) = function_of(plan) else {
            return Ok(Vec::new());
        };
        let prefix = artifact_key(&[&plan.incident, &plan.account, &plan.region, &function])
            .map_err(|e| custody_err(evidence_err(e)))?;
        let mut listed = Vec::new();
        let mut written = Vec::new();
        for step in &plan.steps {
            // Only steps that changed something this run observed a state
            // that is now gone; evidence steps preserve their own.
            let evidence = EVIDENCE_ACTIONS.iter().any(|p| step.action.starts_with(p));
            let Some(target) = &step.target else {
                continue;
            };
            if evidence {
                continue;
            }
            let doc = match (&step.observed, step.status == StepStatus::Changes) {
                (Some(observed), true) => json!({
                    "step": step.id,
                    "action": step.action,
                    "target": target,
                    "observed_before_change": observed,
                    "observed_at": plan.created_at,
                }),
                _ => {
                    // Changed by an earlier run that broke off before it
                    // could seal: the journal still holds each prior value.
                    let recorded = self.recorded_before(&step.id, target);
                    if recorded.is_empty() {
                        continue;
                    }
                    json!({
                        "step": step.id,
                        "action": step.action,
                        "target": target,
                        "recorded_before_change": recorded,
                        "note": "the run that made these changes ended before it could preserve its full observation; these are the prior values its journal recorded before each call",
                    })
                }
            };
            let file = artifact_key(&[&format!("{}.json", step.id)])
                .map_err(|e| custody_err(evidence_err(e)))?;
            let key = format!("{prefix}/pre-change/{file}");
            let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
            bytes.push(b'\n');
            // The first pre-change state is the one that matters: a later
            // run observes the contained state, which is not evidence.
            if store
                .head(&key)
                .await
                .map_err(|e| custody_err(e.into()))?
                .is_none()
            {
                store
                    .put(&key, bytes)
                    .await
                    .map_err(|e| custody_err(evidence_err(e)))?;
                written.push(key.clone());
            }
            listed.push(Listed {
                name: format!("pre-change/{}.json", step.id),
                key,
                source: format!("{} (observed by firebreak before its change)", step.action),
                reported_sha256: None,
            });
        }
        if written.is_empty() {
            return Ok(written);
        }
        let target = ManifestTarget {
            incident: &plan.incident,
            account: &plan.account,
            region: &plan.region,
            function: &function,
            collector: &self.caller.arn,
        };
        let record = write_listed(store, &target, &listed)
            .await
            .map_err(custody_err)?;
        self.audit(
            AuditEvent::EvidenceManifest,
            None,
            serde_json::to_value(&record).unwrap_or(Value::Null),
        )?;
        Ok(written)
    }

    fn remember_custody(&self, c: &CustodyConfig) -> Result<(), EngineError> {
        Ok(self.incident().write_meta(CUSTODY_META, c)?)
    }

    /// After `recover` restored something: copies the audit trail to the
    /// bucket an earlier run of this incident wrote its evidence to.
    pub async fn seal_recover(&self) -> Result<Option<AuditCopy>, EngineError> {
        match self.custody_store().await? {
            Some(store) => self.copy_audit(&store).await.map(Some),
            None => Ok(None),
        }
    }

    /// The forensic bucket an earlier run of this incident wrote its
    /// evidence to (`None`: it wrote none).
    pub async fn custody_store(&self) -> Result<Option<ForensicStore>, EngineError> {
        let read = self.incident().read_meta::<CustodyConfig>(CUSTODY_META);
        let c = match read {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None), // this incident wrote no evidence
            Err(e @ crate::state::StateError::Corrupt { .. }) => {
                return Err(custody_err(ActionError::input(
                    format!("the incident's custody record is not valid: {e}"),
                    "it records where the incident's evidence went; restore it from a backup or delete it to skip the copy",
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let store = open_store(
            &self.aws,
            &self.run,
            &c.bucket,
            c.role.as_deref(),
            Some(c.retention),
            &self.incident_id,
        )
        .await
        .map_err(custody_err)?;
        Ok(Some(store))
    }

    /// The prior value of every change the journal saw applied by `step`
    /// on `target`, oldest first.
    fn recorded_before(&self, step: &str, target: &str) -> Vec<Value> {
        self.incident()
            .journal
            .records()
            .iter()
            .filter(|r| {
                r.event == JournalEvent::Applied && r.step == step && r.change.target == target
            })
            .map(|r| {
                json!({
                    "attribute": r.change.attribute,
                    "before": r.change.before,
                    "after": r.change.after,
                    "applied_at": r.time,
                })
            })
            .collect()
    }

    async fn copy_audit(&self, store: &ForensicStore) -> Result<AuditCopy, EngineError> {
        let bytes = self.incident().audit.trail_bytes()?;
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        let key = artifact_key(&[
            &self.incident_id,
            &self.caller.account,
            &self.aws.region,
            "audit",
            &format!("audit.{lines:06}.jsonl"),
        ])
        .map_err(|e| custody_err(evidence_err(e)))?;
        let stored = store
            .put(&key, bytes)
            .await
            .map_err(|e| custody_err(evidence_err(e)))?;
        let copy = AuditCopy {
            bucket: store.facts().bucket.clone(),
            key,
            sha256: stored.sha256,
            size: stored.size,
            lines,
        };
        self.audit(
            AuditEvent::EvidenceAuditCopy,
            None,
            serde_json::to_value(&copy).unwrap_or(Value::Null),
        )?;
        Ok(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_is_read_from_a_step_target() {
        let plan: Plan = serde_json::from_value(json!({
            "format": 1, "incident": "INC-1",
            "playbook": {"name": "p", "path": "p.yaml", "sha256": "x"},
            "params": {}, "phases": ["identify"], "account": "1", "region": "r",
            "created_at": "t",
            "steps": [
                {"id": "a", "phase": "identify", "action": "iam.quarantine_role", "status": "read",
                 "args": {}, "target": "arn:aws:iam::1:role/x", "observed": null, "changes": [], "outputs": {}, "note": null},
                {"id": "b", "phase": "contain", "action": "lambda.set_concurrency", "status": "changes",
                 "args": {"bucket": "b"}, "target": "arn:aws:lambda:r:1:function:fn:live", "observed": null, "changes": [], "outputs": {}, "note": null}
            ]
        }))
        .unwrap();
        assert_eq!(function_of(&plan).as_deref(), Some("fn"));
        // A bucket on a non-evidence step is not the forensic bucket.
        assert_eq!(evidence_bucket(std::slice::from_ref(&plan)), None);
    }
}
