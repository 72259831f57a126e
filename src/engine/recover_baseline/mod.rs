//! `firebreak recover --to-baseline`: bring each function of an incident
//! back to its newest baseline taken before the incident started.
//!
//! The plan is the drift between that baseline and a fresh capture, one
//! item per difference, each with the operation that removes it
//! (`ops`). What the attacker added is put in the incident's forensic
//! bucket before it is deleted. Firebreak's own containment (the throttle
//! and the role quarantine) is not drift: it is lifted last, by plain
//! recover's items for those two actions, and only once a fresh capture
//! shows no blocking drift left.
//!
//! Every change is journaled (intent before the call, applied or failed
//! after) and audited like any other; a re-run re-captures and plans only
//! what is still different, so a crash anywhere is resumed by running the
//! command again.

mod ops;
mod secrets;

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use super::recover::{ItemStatus, RecoverItem, RecoverOutcome};
use super::{EngineError, Session};
use crate::action::evidence::open_store;
use crate::action::iam::quarantine_role::{DENY_POLICY, REVOKE_POLICY};
use crate::action::ActionError;
use crate::aws::CallCounts;
use crate::baseline::capture::{capture, Scope};
use crate::baseline::{drift, Baseline, BaselineError, BaselineStore, Drift, DriftKind, EnvKey};
use crate::evidence::audit_copy::AuditCopy;
use crate::plan::Change;
use crate::state::{AuditEvent, JournalEvent, JournalRecord};

pub use ops::Op;
pub use secrets::{RotationItem, Rotations};

/// The journal's step name for these changes.
pub const STEP: &str = "recover-baseline";
/// The journal's action name for these changes.
pub const ACTION: &str = "baseline.restore";
/// Plain recover's actions that are containment, lifted last.
const CONTAINMENT_ACTIONS: [&str; 2] = ["lambda.set_concurrency", "iam.quarantine_role"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineItemStatus {
    /// Will be put back as the baseline has it.
    Restore,
    /// Not in the baseline: will be preserved as evidence, then removed.
    Remove,
    /// Left as it is, by design (a version published since: evidence).
    Kept,
    /// Cannot be restored automatically; `reason` says what to do. Blocks
    /// lifting containment.
    Held,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineItem {
    /// `kind:resource:field` (the drift's id).
    pub id: String,
    pub function: String,
    pub status: BaselineItemStatus,
    pub drift: Drift,
    pub op: Op,
    pub reason: Option<String>,
}

impl BaselineItem {
    pub fn is_change(&self) -> bool {
        matches!(
            self.status,
            BaselineItemStatus::Restore | BaselineItemStatus::Remove
        )
    }
}

/// One function's part of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionPlan {
    pub function: String,
    /// Where the baseline came from and when it was taken.
    pub baseline_taken_at: String,
    pub items: Vec<BaselineItem>,
    /// The secrets and parameters it could read, rotated after the
    /// restore (each once per incident).
    pub rotations: Rotations,
    #[serde(skip)]
    baseline: Box<Baseline>,
}

impl FunctionPlan {
    /// Changes this function's part makes: restores, removals, rotations.
    pub fn changes(&self) -> usize {
        self.items.iter().filter(|i| i.is_change()).count() + self.rotations.items.len()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineOutcome {
    pub id: String,
    pub ok: bool,
    pub detail: String,
}

/// Lifting containment: what plain recover would restore for the throttle
/// and the role quarantine, and whether it was allowed.
#[derive(Debug, Clone, Serialize)]
pub struct Lift {
    pub items: Vec<RecoverItem>,
    /// Why it was not lifted (drift left, or a dry run).
    pub withheld: Option<String>,
    pub outcomes: Vec<RecoverOutcome>,
}

impl Lift {
    pub fn pending(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.status == ItemStatus::Restore)
            .count()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineRecoverReport {
    pub incident: String,
    pub dry_run: bool,
    pub store: String,
    pub functions: Vec<FunctionPlan>,
    pub outcomes: Vec<BaselineOutcome>,
    pub lift: Lift,
    /// Blocking drift left after the restore (ids), from a fresh capture.
    pub remaining: Vec<String>,
    pub audit_copy: Option<AuditCopy>,
    pub api_calls: CallCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BaselineSummary {
    /// Changes pending (`--dry-run`) or planned: restores, removals and
    /// containment to lift.
    pub changes: usize,
    pub restore: usize,
    pub remove: usize,
    /// Secrets and parameters to rotate.
    pub rotate: usize,
    pub kept: usize,
    pub held: usize,
    pub lift: usize,
    pub applied: usize,
    pub failed: usize,
}

impl BaselineRecoverReport {
    pub fn items(&self) -> impl Iterator<Item = &BaselineItem> {
        self.functions.iter().flat_map(|f| f.items.iter())
    }

    pub fn summary(&self) -> BaselineSummary {
        let count = |s| self.items().filter(|i| i.status == s).count();
        let (restore, remove) = (
            count(BaselineItemStatus::Restore),
            count(BaselineItemStatus::Remove),
        );
        let lift = self.lift.pending();
        let rotate: usize = self.functions.iter().map(|f| f.rotations.items.len()).sum();
        let failed = self.outcomes.iter().filter(|o| !o.ok).count()
            + self.lift.outcomes.iter().filter(|o| !o.ok).count();
        let applied = self.outcomes.iter().filter(|o| o.ok).count()
            + self.lift.outcomes.iter().filter(|o| o.ok).count();
        BaselineSummary {
            changes: restore + remove + rotate + lift,
            restore,
            remove,
            rotate,
            kept: count(BaselineItemStatus::Kept),
            held: count(BaselineItemStatus::Held),
            lift,
            applied,
            failed,
        }
    }
}

fn baseline_err(e: BaselineError) -> EngineError {
    let source = match e {
        BaselineError::Aws(a) => ActionError::Aws(a),
        other => ActionError::input(other.to_string(), other.hint().to_string()),
    };
    EngineError::Step {
        step: STEP.into(),
        action: ACTION.into(),
        source,
    }
}

fn input(message: String, hint: &str) -> EngineError {
    baseline_err(BaselineError::input(message, hint))
}

/// The function name in a Lambda function ARN (qualifier dropped).
fn function_of_arn(arn: &str) -> Option<String> {
    let (_, rest) = arn.split_once(":function:")?;
    rest.split(':').next().map(str::to_string)
}

impl Session {
    /// The functions this incident worked on, from its journal.
    pub fn incident_functions(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .incident()
            .journal
            .records()
            .iter()
            // The attacker's own functions that containment throttled have
            // no baseline: their victim's recovery deletes them.
            .filter(|r| r.action != "lambda.contain_rogue_functions")
            .filter_map(|r| function_of_arn(&r.change.target))
            .collect();
        set.into_iter().collect()
    }

    /// (role name, `inline_policy:NAME` / `attached_policy:ARN`) the
    /// incident's quarantine changed: drift it explains.
    fn quarantined(&self) -> BTreeSet<String> {
        self.incident()
            .journal
            .records()
            .iter()
            .filter(|r| r.event == JournalEvent::Intent && r.action == "iam.quarantine_role")
            .map(|r| r.change.attribute.clone())
            .collect()
    }

    fn is_containment(&self, quarantined: &BTreeSet<String>, d: &Drift) -> bool {
        match d.kind {
            // Firebreak's denies added, and the policies it took off (it
            // puts back those in the baseline when it lifts the quarantine).
            DriftKind::RoleInline => {
                let by_us = quarantined.contains(&format!("inline_policy:{}", d.field));
                by_us
                    && (d.current.is_null()
                        || d.baseline.is_null()
                            && (d.field == DENY_POLICY || d.field == REVOKE_POLICY))
            }
            DriftKind::RoleAttached => {
                d.current.is_null() && quarantined.contains(&format!("attached_policy:{}", d.field))
            }
            _ => false,
        }
    }

    async fn capture_like(&self, b: &Baseline, key: &EnvKey) -> Result<Baseline, EngineError> {
        let scope = Scope {
            deploy_users: b.deploy_users.keys().cloned().collect(),
        };
        capture(&self.aws, &self.caller.account, &b.function, key, &scope)
            .await
            .map_err(baseline_err)
    }

    /// Blocking drift of `b` now, without the incident's own containment.
    async fn blocking_drift(
        &self,
        b: &Baseline,
        key: &EnvKey,
    ) -> Result<(Baseline, Vec<Drift>), EngineError> {
        let now = self.capture_like(b, key).await?;
        let quarantined = self.quarantined();
        let d = drift(b, &now)
            .into_iter()
            .filter(|d| !self.is_containment(&quarantined, d))
            .collect();
        Ok((now, d))
    }

    /// The plan: for each function, its baseline (the newest taken before
    /// the incident started) against a fresh capture.
    pub async fn plan_recover_baseline(
        &self,
        store: &BaselineStore,
        functions: &[String],
        key: &EnvKey,
        generate_secrets: bool,
    ) -> Result<Vec<FunctionPlan>, EngineError> {
        let started_at = self.incident().meta.started_at.clone();
        let mut plans = Vec::new();
        for f in functions {
            let b = store
                .newest_before(&self.aws, &self.caller.account, &self.aws.region, f, &started_at)
                .await
                .map_err(baseline_err)?
                .ok_or_else(|| {
                    input(
                        format!(
                            "no baseline of function `{f}` ({} {}) taken before the incident started ({started_at}) in {store}",
                            self.caller.account, self.aws.region
                        ),
                        "check --store, --region and the account; baselines are taken with `firebreak baseline --target FUNCTION --store ...`",
                    )
                })?;
            if b.env_key_id != key.id() {
                return Err(input(
                    format!(
                        "the baseline of `{f}` taken at {} was hashed with another key ({}) than this store's ({})",
                        b.taken_at,
                        b.env_key_id,
                        key.id()
                    ),
                    "set FIREBREAK_BASELINE_KEY to the key used when the baseline was taken (or use the store's baseline.key)",
                ));
            }
            let (now, drifts) = self.blocking_drift(&b, key).await?;
            let items = ops::plan(&b, &now, drifts);
            for i in &items {
                self.audit(
                    AuditEvent::RecoverPlanned,
                    Some(STEP),
                    json!({"id": i.id, "function": i.function, "status": i.status, "op": i.op, "baseline": i.drift.baseline, "current": i.drift.current, "reason": i.reason}),
                )?;
            }
            let rotations = self.plan_rotations(f, generate_secrets).await?;
            plans.push(FunctionPlan {
                function: f.clone(),
                baseline_taken_at: b.taken_at.clone(),
                items,
                rotations,
                baseline: Box::new(b),
            });
        }
        Ok(plans)
    }

    /// Plain recover's items for the throttle and the role quarantine,
    /// without putting back what the baseline does not have (an
    /// attacker's policy the quarantine took off stays off).
    async fn containment_items(
        &self,
        include_risky: bool,
        plans: &[FunctionPlan],
    ) -> Result<Vec<RecoverItem>, EngineError> {
        let mut items = self
            .plan_recover_of(include_risky, &[], Some(&CONTAINMENT_ACTIONS))
            .await?;
        for i in items.iter_mut().filter(|i| i.status == ItemStatus::Restore) {
            let role = plans
                .iter()
                .filter_map(|p| p.baseline.role.as_ref())
                .find(|r| r.arn == i.change.target);
            let Some(role) = role else { continue };
            let attr = &i.change.attribute;
            let in_baseline = if let Some(name) = attr.strip_prefix("inline_policy:") {
                i.change.after.is_null() || role.inline.get(name) == Some(&i.change.after)
            } else if let Some(arn) = attr.strip_prefix("attached_policy:") {
                i.change.after.is_null() || role.attached.iter().any(|a| a == arn)
            } else {
                true
            };
            if !in_baseline {
                i.status = ItemStatus::Excluded;
                i.reason = Some(
                    "not in the baseline: left off (the quarantine's backup of it is in the journal)"
                        .into(),
                );
            }
        }
        Ok(items)
    }

    async fn apply_item(
        &self,
        plan: &FunctionPlan,
        item: &BaselineItem,
        evidence: Option<&crate::evidence::store::ForensicStore>,
        key: &EnvKey,
        store: &BaselineStore,
    ) -> BaselineOutcome {
        let change = Change::new(
            &plan.baseline.function_arn,
            &item.id,
            item.drift.current.clone(),
            item.drift.baseline.clone(),
            format!(
                "recover to the baseline taken at {}",
                plan.baseline_taken_at
            ),
        );
        let run = self.incident().audit.run.clone();
        let record = |event| JournalRecord {
            seq: 0,
            time: crate::time::now_rfc3339(),
            run: run.clone(),
            event,
            step: STEP.into(),
            action: ACTION.into(),
            change: change.clone(),
            confirmed_by_observation: false,
            error: None,
        };
        let fail = |detail: String| BaselineOutcome {
            id: item.id.clone(),
            ok: false,
            detail,
        };
        if let Err(e) = self.incident().journal.append(record(JournalEvent::Intent)) {
            return fail(format!(
                "not applied: the journal could not be written: {e}"
            ));
        }
        if let Err(e) = self.audit(
            AuditEvent::Applying,
            Some(STEP),
            json!({"id": item.id, "op": item.op, "change": change}),
        ) {
            return fail(format!(
                "not applied: the audit trail could not be written: {e}"
            ));
        }
        crate::hooks::pause_point("before_apply", STEP);
        let cx = ops::Cx {
            aws: &self.aws,
            baseline: &plan.baseline,
            evidence,
            incident: self.incident_id(),
            account: &self.caller.account,
            key,
            store,
        };
        let result = ops::apply(&cx, &item.op).await;
        crate::hooks::pause_point("after_apply", STEP);
        match result {
            Ok(written) => {
                let _ = self
                    .incident()
                    .journal
                    .append(record(JournalEvent::Applied));
                let _ = self.audit(
                    AuditEvent::Applied,
                    Some(STEP),
                    json!({"id": item.id, "evidence": written}),
                );
                let detail = if written.is_empty() {
                    "done".to_string()
                } else {
                    format!("done; preserved first: {}", written.join(", "))
                };
                BaselineOutcome {
                    id: item.id.clone(),
                    ok: true,
                    detail,
                }
            }
            Err(e) => self.not_applied(&item.id, record(JournalEvent::Failed), &e),
        }
    }

    /// A baseline change (a restore or a rotation) that did not go
    /// through. The journal says failed only when AWS answered: an unknown
    /// outcome stays in doubt, so the next run re-observes it instead of
    /// trusting either answer.
    fn not_applied(&self, id: &str, mut failed: JournalRecord, e: &ActionError) -> BaselineOutcome {
        if !e.outcome_unknown() {
            failed.error = Some(e.to_string());
            let _ = self.incident().journal.append(failed);
        }
        let _ = self.audit(
            AuditEvent::Error,
            Some(STEP),
            json!({"id": id, "message": e.to_string(), "hint": e.hint()}),
        );
        BaselineOutcome {
            id: id.to_string(),
            ok: false,
            detail: format!("{e} (hint: {})", e.hint()),
        }
    }

    /// Applies the plan (nothing with `dry_run`), then lifts containment
    /// if a fresh capture shows no blocking drift; copies the trail to the
    /// forensic bucket once something changed.
    pub async fn execute_recover_baseline(
        &self,
        store: &BaselineStore,
        plans: Vec<FunctionPlan>,
        key: &EnvKey,
        dry_run: bool,
        include_risky: bool,
        forensic_bucket: Option<&str>,
    ) -> Result<BaselineRecoverReport, EngineError> {
        let mut outcomes = Vec::new();
        let changes: usize = plans.iter().map(FunctionPlan::changes).sum();
        let needs_evidence = plans.iter().any(|p| {
            p.items
                .iter()
                .any(|i| i.is_change() && i.op.preserves_evidence())
        });
        let evidence = match (dry_run || !needs_evidence, forensic_bucket) {
            (true, _) => None,
            (false, None) => self.custody_store().await?,
            (false, Some(bucket)) => Some(
                open_store(&self.aws, &self.run, bucket, None, None, self.incident_id())
                    .await
                    .map_err(|source| EngineError::Step {
                        step: STEP.into(),
                        action: ACTION.into(),
                        source,
                    })?,
            ),
        };
        if !dry_run && changes > 0 {
            for plan in &plans {
                // Compare-and-swap at plan level: what moved since the plan
                // (a change made while the prompt waited) is not touched.
                let (now, fresh) = self.blocking_drift(&plan.baseline, key).await?;
                let fresh = ops::plan(&plan.baseline, &now, fresh);
                for item in plan.items.iter().filter(|i| i.is_change()) {
                    if !fresh
                        .iter()
                        .any(|f| f.id == item.id && f.drift.current == item.drift.current)
                    {
                        let detail = "changed while waiting (or already restored): not touched; run the command again to re-plan".to_string();
                        self.audit(
                            AuditEvent::Error,
                            Some(STEP),
                            json!({"id": item.id, "message": detail}),
                        )?;
                        outcomes.push(BaselineOutcome {
                            id: item.id.clone(),
                            ok: false,
                            detail,
                        });
                        continue;
                    }
                    if item.op.preserves_evidence() && evidence.is_none() {
                        let detail = "not removed: this incident has no forensic bucket to preserve it in first; pass --forensic-bucket BUCKET (or run the containment playbook, which records one) and recover again".to_string();
                        self.audit(
                            AuditEvent::Error,
                            Some(STEP),
                            json!({"id": item.id, "message": detail}),
                        )?;
                        outcomes.push(BaselineOutcome {
                            id: item.id.clone(),
                            ok: false,
                            detail,
                        });
                        continue;
                    }
                    outcomes.push(
                        self.apply_item(plan, item, evidence.as_ref(), key, store)
                            .await,
                    );
                }
                // After the restore: the attacker's code no longer runs
                // to read a new value.
                for r in &plan.rotations.items {
                    outcomes.push(self.apply_rotation(r).await);
                }
            }
        }
        // Lifting containment: last, and only over no drift.
        let mut remaining = Vec::new();
        let held: Vec<String> = plans
            .iter()
            .flat_map(|p| p.items.iter())
            .filter(|i| i.status == BaselineItemStatus::Held)
            .map(|i| i.id.clone())
            .collect();
        if dry_run {
            remaining = plans
                .iter()
                .flat_map(|p| p.items.iter())
                .filter(|i| i.status != BaselineItemStatus::Kept)
                .map(|i| format!("{}: {}", i.function, i.id))
                .collect();
        } else {
            for plan in &plans {
                let (now, left) = self.blocking_drift(&plan.baseline, key).await?;
                remaining.extend(
                    ops::plan(&plan.baseline, &now, left)
                        .iter()
                        .filter(|i| i.status != BaselineItemStatus::Kept)
                        .map(|i| format!("{}: {}", plan.function, i.id)),
                );
            }
        }
        let items = self.containment_items(include_risky, &plans).await?;
        let mut lift = Lift {
            items,
            withheld: None,
            outcomes: Vec::new(),
        };
        if lift.pending() > 0 {
            if dry_run {
                lift.withheld = Some(if changes > 0 || !held.is_empty() {
                    "lifted after the restore, only if a fresh capture then shows no drift from the baseline".into()
                } else {
                    "no drift from the baseline: containment would be lifted".into()
                });
            } else if !remaining.is_empty() {
                let why = format!(
                    "containment kept: drift from the baseline remains ({})",
                    remaining.join(", ")
                );
                self.audit(AuditEvent::Refused, Some(STEP), json!({"message": why}))?;
                lift.withheld = Some(why);
            } else {
                lift.outcomes = self.apply_recover(&lift.items).await?;
            }
        }
        let failed = outcomes.iter().filter(|o| !o.ok).count()
            + lift.outcomes.iter().filter(|o| !o.ok).count();
        let applied = outcomes.len() + lift.outcomes.len() - failed;
        self.audit(
            AuditEvent::RunFinished,
            None,
            json!({"command": "firebreak recover --to-baseline", "applied": applied, "failed": failed, "remaining": remaining}),
        )?;
        let audit_copy = if outcomes.is_empty() && lift.outcomes.is_empty() {
            None
        } else {
            self.seal_recover().await?
        };
        Ok(BaselineRecoverReport {
            incident: self.incident_id().to_string(),
            dry_run,
            store: store.to_string(),
            functions: plans,
            outcomes,
            lift,
            remaining,
            audit_copy,
            api_calls: self.aws.api_calls(),
        })
    }
}

/// Drift ids of a report, for tests and messages.
pub fn ids(items: &[BaselineItem]) -> Vec<String> {
    items.iter().map(|i| i.id.clone()).collect()
}
