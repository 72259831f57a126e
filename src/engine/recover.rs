//! `recover`: the inverse of every change this incident applied, from the
//! journal, newest first.
//!
//! For each resource attribute the journal touched, the *original* value is
//! the `before` of its earliest intent, and the value firebreak left is the
//! `after` of its latest. Re-observing decides:
//!   - now == original: already restored (e.g. by the playbook's recover
//!     phase): nothing to do, never undone twice;
//!   - now == what firebreak left: restore it;
//!   - anything else: someone changed it since; reported, never guessed.
//!
//! A restoration that would re-open a door (public or cross-account access,
//! broad permissions) is held back unless `--include-risky` is given.

use crate::state::AuditEvent;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::{EngineError, Session};
use crate::action::{registry, Action, StepContext};
use crate::aws::CallCounts;
use crate::evidence::audit_copy::AuditCopy;
use crate::plan::{short, Change};
use crate::state::{JournalEvent, JournalRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Will be restored.
    Restore,
    /// Would re-open access: held back (see `reason`).
    Held,
    /// Dropped with `--exclude`.
    Excluded,
    /// Already at its original value.
    Restored,
    /// Changed by someone else since: cannot be restored exactly.
    Drifted,
    /// Listed, never restored (a rotated secret); `reason` says what to do.
    Kept,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecoverItem {
    /// What `--exclude` names: `ATTRIBUTE@RESOURCE`.
    pub id: String,
    pub status: ItemStatus,
    /// Current → original.
    pub change: Change,
    /// Where the original value comes from.
    pub recorded_by_step: String,
    pub recorded_at: String,
    pub recorded_by_run: String,
    pub action: String,
    pub reason: Option<String>,
    #[serde(skip)]
    order: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecoverOutcome {
    pub id: String,
    pub ok: bool,
    pub detail: String,
}

/// Counts of a recovery, for the summary line and JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecoverSummary {
    /// Items to restore (what `--dry-run` says is pending).
    pub changes: usize,
    pub restore: usize,
    pub held: usize,
    pub excluded: usize,
    pub already_restored: usize,
    pub drifted: usize,
    /// Listed, never restored (rotated secrets).
    pub kept: usize,
    pub restored: usize,
    pub failed: usize,
}

/// What `firebreak recover` (or any other caller) gets back.
#[derive(Debug, Clone, Serialize)]
pub struct RecoverReport {
    pub incident: String,
    pub dry_run: bool,
    /// Newest change first.
    pub items: Vec<RecoverItem>,
    pub outcomes: Vec<RecoverOutcome>,
    /// Where the trail was copied once something was restored.
    pub audit_copy: Option<AuditCopy>,
    /// The one line on indicators of compromise that keep (or, with
    /// `--accept-indicators`, do not keep) containment in place.
    pub indicators: Option<String>,
    pub api_calls: CallCounts,
}

impl RecoverReport {
    pub fn count(&self, status: ItemStatus) -> usize {
        self.items.iter().filter(|i| i.status == status).count()
    }

    pub fn summary(&self) -> RecoverSummary {
        let failed = self.outcomes.iter().filter(|o| !o.ok).count();
        let restore = self.count(ItemStatus::Restore);
        RecoverSummary {
            changes: restore,
            restore,
            held: self.count(ItemStatus::Held),
            excluded: self.count(ItemStatus::Excluded),
            already_restored: self.count(ItemStatus::Restored),
            drifted: self.count(ItemStatus::Drifted),
            kept: self.count(ItemStatus::Kept),
            restored: self.outcomes.len() - failed,
            failed,
        }
    }
}

fn resource_name(arn: &str) -> &str {
    arn.rsplit(['/', ':']).next().unwrap_or(arn)
}

pub fn item_id(change: &Change) -> String {
    format!("{}@{}", change.attribute, resource_name(&change.target))
}

struct Touched<'a> {
    first: &'a JournalRecord,
    last: &'a JournalRecord,
}

/// Attributes this incident changed (or may have changed: in doubt), keyed
/// by (target, attribute). Failed attempts changed nothing.
fn touched(history: &crate::state::History) -> BTreeMap<(String, String), Touched<'_>> {
    let mut out: BTreeMap<(String, String), Touched<'_>> = BTreeMap::new();
    // Recovery to a baseline journals its own changes: they are not
    // containment to undo.
    for r in history
        .iter()
        .filter(|r| r.event == JournalEvent::Intent && r.step != super::recover_baseline::STEP)
    {
        let failed = history.iter().any(|o| {
            o.seq > r.seq
                && o.event == JournalEvent::Failed
                && o.step == r.step
                && o.change.same_intent(&r.change)
        });
        if failed {
            continue;
        }
        out.entry((r.change.target.clone(), r.change.attribute.clone()))
            .and_modify(|t| t.last = r)
            .or_insert(Touched { first: r, last: r });
    }
    out
}

impl Session {
    fn context<'s>(
        &'s self,
        history: &'s crate::state::History,
        args: &'s serde_json::Map<String, Value>,
    ) -> StepContext<'s> {
        self.step_context(args, history, "recover")
    }

    pub async fn plan_recover(
        &self,
        include_risky: bool,
        exclude: &[String],
    ) -> Result<Vec<RecoverItem>, EngineError> {
        self.plan_recover_of(include_risky, exclude, None).await
    }

    /// `plan_recover` limited to the changes of `only` these actions
    /// (`None`: all); the others are not even read.
    pub async fn plan_recover_of(
        &self,
        include_risky: bool,
        exclude: &[String],
        only: Option<&[&str]>,
    ) -> Result<Vec<RecoverItem>, EngineError> {
        let history = self.incident().journal.snapshot();
        let in_doubt: Vec<JournalRecord> = self
            .incident()
            .journal
            .in_doubt()
            .into_iter()
            .cloned()
            .collect();
        let args = serde_json::Map::new();
        let mut items = Vec::new();
        for ((target, attribute), t) in touched(&history) {
            if only.is_some_and(|o| !o.contains(&t.first.action.as_str())) {
                continue;
            }
            let action: &dyn Action = registry::find(&t.first.action).ok_or_else(|| {
                EngineError::PlanMismatch(format!(
                    "the journal names action `{}`, which this firebreak does not know",
                    t.first.action
                ))
            })?;
            if !action.undoable() {
                continue;
            }
            let cx = self.context(&history, &args);
            let now = action
                .read(&cx, &target, &attribute)
                .await
                .map_err(|source| EngineError::Step {
                    step: "recover".into(),
                    action: t.first.action.clone(),
                    source,
                })?;
            let original = t.first.change.before.clone();
            let left = t.last.change.after.clone();
            // An interrupted last attempt may not have landed: its `before`
            // is then the value firebreak left, and restoring is still right.
            let interrupted =
                in_doubt.iter().any(|r| r.seq == t.last.seq) && now == t.last.change.before;
            let change = Change::new(
                &target,
                &attribute,
                now.clone(),
                original.clone(),
                format!(
                    "recover: the value before step `{}` changed it",
                    t.first.step
                ),
            );
            let id = item_id(&change);
            let (status, reason) = if now == original {
                (
                    ItemStatus::Restored,
                    Some("already at its original value".to_string()),
                )
            } else if now != left && !interrupted {
                (
                    ItemStatus::Drifted,
                    Some(format!("changed since firebreak left it at {}: now {}; not restored, review by hand", short(&left), short(&now))),
                )
            } else if let Some(why) = action.never_restored() {
                (ItemStatus::Kept, Some(why.to_string()))
            } else if exclude.contains(&id) {
                (ItemStatus::Excluded, Some("excluded with --exclude".into()))
            } else {
                let risk = action.restore_risk(&cx, &change).await.map_err(|source| {
                    EngineError::Step {
                        step: "recover".into(),
                        action: t.first.action.clone(),
                        source,
                    }
                })?;
                match risk {
                    Some(r) if !include_risky => (
                        ItemStatus::Held,
                        Some(format!(
                            "held back: restoring it {r}; pass --include-risky to restore it too"
                        )),
                    ),
                    Some(r) => (
                        ItemStatus::Restore,
                        Some(format!("restored although it {r} (--include-risky)")),
                    ),
                    None => (ItemStatus::Restore, None),
                }
            };
            self.audit(
                AuditEvent::RecoverPlanned,
                None,
                json!({"id": id, "status": status, "change": change, "reason": reason}),
            )?;
            items.push(RecoverItem {
                id,
                status,
                change,
                recorded_by_step: t.first.step.clone(),
                recorded_at: t.first.time.clone(),
                recorded_by_run: t.first.run.clone(),
                action: t.first.action.clone(),
                reason,
                order: t.last.seq,
            });
        }
        let unknown: Vec<&String> = exclude
            .iter()
            .filter(|x| !items.iter().any(|i| &i.id == *x))
            .collect();
        if !unknown.is_empty() {
            let message = format!(
                "--exclude names no item of this incident: {} (the items are: {})",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                items
                    .iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Err(EngineError::Step {
                step: "recover".into(),
                action: "recover".into(),
                source: crate::action::ActionError::input(
                    message,
                    "copy the item id from `firebreak recover --dry-run`; nothing was changed",
                ),
            });
        }
        // Newest change first: the reverse of the order they were made.
        items.sort_by_key(|i| std::cmp::Reverse(i.order));
        Ok(items)
    }

    /// Applies the items marked `Restore`, journaled like any change.
    pub async fn apply_recover(
        &self,
        items: &[RecoverItem],
    ) -> Result<Vec<RecoverOutcome>, EngineError> {
        let mut outcomes = Vec::new();
        for item in items.iter().filter(|i| i.status == ItemStatus::Restore) {
            let Some(action) = registry::find(&item.action) else {
                continue;
            };
            // Re-read right before the call: a change made while the
            // confirmation prompt waited is reported, never overwritten.
            let history = self.incident().journal.snapshot();
            let args = serde_json::Map::new();
            let now = action
                .read(
                    &self.context(&history, &args),
                    &item.change.target,
                    &item.change.attribute,
                )
                .await;
            if !matches!(&now, Ok(v) if *v == item.change.before) {
                let detail = match now {
                    Ok(v) => format!(
                        "changed while waiting: now {}; not restored, review by hand",
                        short(&v)
                    ),
                    Err(e) => format!("could not re-read it before restoring: {e}"),
                };
                self.audit(
                    AuditEvent::Error,
                    Some("recover"),
                    json!({"id": item.id, "message": detail}),
                )?;
                outcomes.push(RecoverOutcome {
                    id: item.id.clone(),
                    ok: false,
                    detail,
                });
                continue;
            }
            let run = self.incident().audit.run.clone();
            let record = |event| JournalRecord {
                seq: 0,
                time: crate::time::now_rfc3339(),
                run: run.clone(),
                event,
                step: "recover".into(),
                action: item.action.clone(),
                change: item.change.clone(),
                confirmed_by_observation: false,
                error: None,
            };
            let intent = record(JournalEvent::Intent);
            self.incident().journal.append(intent)?;
            self.audit(AuditEvent::Applying, Some("recover"), json!(item.change))?;
            crate::hooks::pause_point("before_apply", "recover");
            let history = self.incident().journal.snapshot();
            let args = serde_json::Map::new();
            let result = action
                .apply(&self.context(&history, &args), &item.change)
                .await;
            crate::hooks::pause_point("after_apply", "recover");
            match result {
                Ok(()) => {
                    let applied = record(JournalEvent::Applied);
                    self.incident().journal.append(applied)?;
                    self.audit(AuditEvent::Applied, Some("recover"), json!(item.change))?;
                    let history = self.incident().journal.snapshot();
                    let now = action
                        .read(
                            &self.context(&history, &args),
                            &item.change.target,
                            &item.change.attribute,
                        )
                        .await;
                    let (ok, detail) = match now {
                        Ok(v) if v == item.change.after => {
                            (true, "restored; reads back as recorded".to_string())
                        }
                        Ok(v) => (
                            false,
                            format!("AWS accepted the change but it reads {}", short(&v)),
                        ),
                        Err(e) => (false, format!("restored, but could not read it back: {e}")),
                    };
                    self.audit(
                        AuditEvent::Verification,
                        Some("recover"),
                        json!({"id": item.id, "passed": ok, "detail": detail}),
                    )?;
                    outcomes.push(RecoverOutcome {
                        id: item.id.clone(),
                        ok,
                        detail,
                    });
                }
                Err(e) => {
                    if !e.outcome_unknown() {
                        let mut failed = record(JournalEvent::Failed);
                        failed.error = Some(e.to_string());
                        self.incident().journal.append(failed)?;
                    }
                    self.audit(
                        AuditEvent::Error,
                        Some("recover"),
                        json!({"id": item.id, "message": e.to_string(), "hint": e.hint()}),
                    )?;
                    outcomes.push(RecoverOutcome {
                        id: item.id.clone(),
                        ok: false,
                        detail: format!("{e} (hint: {})", e.hint()),
                    });
                }
            }
        }
        Ok(outcomes)
    }
}

impl Session {
    /// A recovery after its plan (`plan_recover`) and any confirmation:
    /// restores what is to be restored (nothing with `dry_run`), records
    /// the end in the trail and, once something was restored, copies the
    /// trail to the incident's forensic bucket.
    pub async fn execute_recover(
        &self,
        items: Vec<RecoverItem>,
        dry_run: bool,
    ) -> Result<RecoverReport, EngineError> {
        let outcomes = if dry_run {
            Vec::new()
        } else {
            self.apply_recover(&items).await?
        };
        let failed = outcomes.iter().filter(|o| !o.ok).count();
        self.audit(
            AuditEvent::RunFinished,
            None,
            json!({"command": "firebreak recover", "restored": outcomes.len() - failed, "failed": failed}),
        )?;
        // The trail now records what was restored: it joins the evidence.
        let audit_copy = if outcomes.is_empty() {
            None
        } else {
            self.seal_recover().await?
        };
        Ok(RecoverReport {
            incident: self.incident_id().to_string(),
            dry_run,
            items,
            outcomes,
            audit_copy,
            indicators: None,
            api_calls: self.aws.api_calls(),
        })
    }
}
