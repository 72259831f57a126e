//! Contract 12: after applying, every mutating step that ran is checked by
//! reading AWS back.

use super::apply::TargetProgress;
use super::report::{RunReport, StepCheck};
use super::{find_step, EngineError, Session};
use crate::action::{Check, Observation};
use crate::plan::{Plan, StepStatus};
use crate::playbook::Playbook;
use crate::state::AuditEvent;
use serde_json::Value;

impl Session {
    /// Contract 12: every mutating step that ran is checked after the
    /// fact. `report` holds this target's failures (their steps are not
    /// verified); when the target's run was aborted, only the steps it
    /// reached are.
    pub(crate) async fn verify_plan(
        &self,
        plan: &Plan,
        playbook: &Playbook,
        report: &mut RunReport,
        progress: &TargetProgress,
    ) -> Result<(), EngineError> {
        for sp in &plan.steps {
            let failed = report
                .failures
                .iter()
                .any(|f| f.step == sp.id && f.target == sp.target);
            let unreached = progress.aborted_at.is_some() && !progress.reached.contains(&sp.id);
            let unverifiable = matches!(
                sp.status,
                StepStatus::Read | StepStatus::Skipped | StepStatus::Held | StepStatus::Failed
            );
            if unverifiable || failed || unreached {
                continue;
            }
            let step = find_step(playbook, &sp.id)?;
            let history = self.incident().journal.snapshot();
            let observed = Observation {
                target: sp.target.clone().unwrap_or_default(),
                state: sp.observed.clone().unwrap_or(Value::Null),
            };
            let mut cx = self.step_context(&sp.args, &history, &sp.id);
            cx.verifying = true;
            let checks = match tokio::time::timeout(
                step.timeout,
                step.action.verify(&cx, &observed),
            )
            .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => vec![Check {
                    name: "verification".into(),
                    target: observed.target.clone(),
                    passed: false,
                    detail: format!("could not verify: {e}"),
                }],
                Err(_) => vec![Check {
                    name: "verification".into(),
                    target: observed.target.clone(),
                    passed: false,
                    detail: "verification timed out".into(),
                }],
            };
            for check in checks {
                self.audit(
                    AuditEvent::Verification,
                    Some(&sp.id),
                    serde_json::to_value(&check).unwrap_or(Value::Null),
                )?;
                report.checks.push(StepCheck {
                    step: sp.id.clone(),
                    check,
                });
            }
        }
        Ok(())
    }
}
