//! Rotating what the function could read, as part of `recover --to-baseline`.
//!
//! Every secret and SecureString parameter the function's role (and its
//! environment) lets it read must be assumed stolen while the attacker's
//! code ran: the baseline restores the function, not its credentials. The
//! plan reuses the playbook's actions (`secrets.discover`, then
//! `secrets.rotate` and `ssm.rotate_parameter`), so it rotates exactly as
//! containment does. Each rotation carries the incident's token (the
//! Secrets Manager `ClientRequestToken`, the SSM history marker): a
//! secret already rotated for this incident, by containment or by an
//! earlier or interrupted recover, observes as `rotated` and plans
//! nothing, and the journal records each call like any other change.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{EngineError, Session, STEP};
use crate::action::{registry, ActionError};
use crate::plan::Change;
use crate::state::{AuditEvent, JournalEvent, JournalRecord};

/// One secret or parameter to rotate.
#[derive(Debug, Clone, Serialize)]
pub struct RotationItem {
    /// `secrets.rotate` or `ssm.rotate_parameter`.
    pub action: String,
    pub change: Change,
    /// The action's arguments (`generate` decides how it rotates).
    #[serde(skip)]
    args: Map<String, Value>,
}

/// The rotations of one function, and what could not be rotated here.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rotations {
    pub items: Vec<RotationItem>,
    /// Notes of the rotating actions (e.g. "rotate at the source").
    pub notes: Vec<String>,
}

fn step_err(action: &str, source: ActionError) -> EngineError {
    EngineError::Step {
        step: STEP.into(),
        action: action.into(),
        source,
    }
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

impl Session {
    async fn plan_action(
        &self,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<crate::action::Planned, EngineError> {
        let action = registry::find(name).ok_or_else(|| {
            step_err(
                name,
                ActionError::input(format!("no action {name}"), "this is a bug in firebreak"),
            )
        })?;
        let history = self.incident().journal.snapshot();
        let cx = self.step_context(args, &history, STEP);
        let seen = action.observe(&cx).await.map_err(|e| step_err(name, e))?;
        action.plan(&cx, &seen).map_err(|e| step_err(name, e))
    }

    /// What rotating `function`'s readable secrets and parameters takes
    /// now (nothing for those already rotated for this incident).
    pub async fn plan_rotations(
        &self,
        function: &str,
        generate: bool,
    ) -> Result<Rotations, EngineError> {
        let mut args = Map::new();
        args.insert("function".into(), json!(function));
        let found = self.plan_action("secrets.discover", &args).await?;
        let mut out = Rotations::default();
        for (name, key, list_of) in [
            ("secrets.rotate", "secrets", "secrets"),
            ("ssm.rotate_parameter", "parameters", "parameters"),
        ] {
            let readable = list(&found.outputs[list_of]);
            if readable.is_empty() {
                continue;
            }
            let mut args = Map::new();
            args.insert(key.into(), Value::Array(readable));
            args.insert("generate".into(), json!(generate));
            let planned = self.plan_action(name, &args).await?;
            out.notes.extend(planned.note);
            out.items
                .extend(planned.changes.into_iter().map(|change| RotationItem {
                    action: name.into(),
                    change,
                    args: args.clone(),
                }));
        }
        for i in &out.items {
            self.audit(
                AuditEvent::RecoverPlanned,
                Some(STEP),
                json!({"id": format!("rotate:{}", i.change.target), "action": i.action, "change": i.change}),
            )?;
        }
        Ok(out)
    }

    /// Rotates one, journaled (intent before the call, outcome after).
    pub async fn apply_rotation(&self, item: &RotationItem) -> super::BaselineOutcome {
        let id = format!("rotate:{}", item.change.target);
        let fail = |detail: String| super::BaselineOutcome {
            id: id.clone(),
            ok: false,
            detail,
        };
        let Some(action) = registry::find(&item.action) else {
            return fail(format!("no action {}", item.action));
        };
        let run = self.incident().audit.run.clone();
        let record = |event| JournalRecord {
            seq: 0,
            time: crate::time::now_rfc3339(),
            run: run.clone(),
            event,
            step: STEP.into(),
            action: item.action.clone(),
            change: item.change.clone(),
            confirmed_by_observation: false,
            error: None,
        };
        if let Err(e) = self.incident().journal.append(record(JournalEvent::Intent)) {
            return fail(format!(
                "not applied: the journal could not be written: {e}"
            ));
        }
        if let Err(e) = self.audit(
            AuditEvent::Applying,
            Some(STEP),
            json!({"id": id, "change": item.change}),
        ) {
            return fail(format!(
                "not applied: the audit trail could not be written: {e}"
            ));
        }
        let history = self.incident().journal.snapshot();
        let result = action
            .apply(&self.step_context(&item.args, &history, STEP), &item.change)
            .await;
        match result {
            Ok(()) => {
                let _ = self
                    .incident()
                    .journal
                    .append(record(JournalEvent::Applied));
                let _ = self.audit(AuditEvent::Applied, Some(STEP), json!({"id": id}));
                super::BaselineOutcome {
                    id: id.clone(),
                    ok: true,
                    detail: "rotated for this incident (never restored)".into(),
                }
            }
            Err(e) => self.not_applied(&id, record(JournalEvent::Failed), &e),
        }
    }
}
