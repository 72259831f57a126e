//! Applying a plan under the journal: re-observe, journal the intent
//! (fsync), call AWS, journal the outcome (see the module head of
//! `engine`).

use crate::state::AuditEvent;
use serde_json::{json, Map, Value};

use super::planning::backoff;
use super::report::{Aborted, ChangeOutcome, Outcome, RunReport, StepFailure};
use super::{find_step, EngineError, Session};
use crate::action::spec::HarmOrder;
use crate::action::{Observation, Receipt};
use crate::hooks;
use crate::plan::{short, Change, Plan, StepPlan, StepStatus};
use crate::playbook::model::OnError;
use crate::playbook::{Playbook, Step};
use crate::state::{JournalEvent, JournalRecord};

/// When a step reads AWS again right before its changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reread {
    /// Always: the plan may be minutes old (it was confirmed, or saved).
    Always,
    /// Only for state other targets may change (`ActionSpec::own_state`):
    /// the plan was made by this target's own run a moment ago (`run
    /// --yes`), so its observation of the function's own state is as
    /// recent as a re-read would be, and the re-read would only spend the
    /// quota every other target is waiting for (issue 15).
    SharedState,
}

/// Which of a plan's changes one pass over it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Containment: the harm-stopping steps' changes that stop harm
    /// (`Action::change_stops_harm`), for every target, before anything
    /// else.
    Harm,
    /// Everything else: the other steps, and what the harm-stopping steps
    /// left for after containment (a quarantine's detach and deletions).
    Rest,
}

impl Pass {
    /// Whether this pass applies `change` of `step`.
    fn takes(self, step: &Step, change: &Change) -> bool {
        let harm = step.action.spec().stops_harm && step.action.change_stops_harm(change);
        harm == (self == Pass::Harm)
    }

    /// Whether this is the first pass `step` is in, where its doubts (an
    /// earlier run's intents with no outcome) are settled.
    fn settles_doubts(self, step: &Step) -> bool {
        self == Pass::Harm || !step.action.spec().stops_harm
    }

    /// The planned changes of `sp` this pass applies.
    fn changes(self, step: &Step, sp: &StepPlan) -> Vec<Change> {
        sp.changes
            .iter()
            .filter(|c| self.takes(step, c))
            .cloned()
            .collect()
    }
}

/// What one step's changes came to.
pub(crate) struct StepApplied {
    pub outcomes: Vec<ChangeOutcome>,
    /// Changes AWS refused (each journaled as failed), or, for an action
    /// whose changes are independent, left in doubt; the others went on.
    pub failed: Vec<Failed>,
}

/// A step's failure, and the resource of the one change it concerns
/// (`None`: the step as a whole, e.g. it could not be re-observed).
pub(crate) struct Failed {
    pub resource: Option<String>,
    pub error: EngineError,
}

impl Failed {
    fn step(error: EngineError) -> Self {
        Self {
            resource: None,
            error,
        }
    }
}

/// Where one target's run has got to.
#[derive(Debug, Default)]
pub(crate) struct TargetProgress {
    /// Steps that ran, or had nothing to do, before any abort.
    pub reached: Vec<String>,
    pub aborted_at: Option<String>,
    /// A `Preserve` step failed and aborted: nothing after it may remove
    /// what it was to keep. Apart from `aborted_at`, which holds only the
    /// first abort: a throttle or deny applied early may have failed first.
    pub preserve_failed: bool,
    /// Harm-stopping steps `run --yes` applied while the target was still
    /// being planned (`planning::Containing`): the harm pass skips them.
    pub applied_early: Vec<String>,
}

impl TargetProgress {
    /// Adds what one step applied early came to.
    pub(crate) fn merge_early(&mut self, step: &str, part: TargetProgress) {
        self.applied_early.push(step.to_string());
        for s in part.reached {
            reach(self, &s);
        }
        if self.aborted_at.is_none() {
            self.aborted_at = part.aborted_at;
        }
        self.preserve_failed |= part.preserve_failed;
    }
}

/// Where a step is applied among the steps applied together with it.
fn apply_rank(step: &Step) -> HarmOrder {
    let spec = step.action.spec();
    if spec.stops_harm {
        spec.harm_order
    } else {
        HarmOrder::Access
    }
}

/// Whether pass 1's calls of `step` are served with every target's deny
/// and throttle (`call_path::Class::StopsHarm`) rather than after them:
/// what closes a way into the target function itself (its public access,
/// its event sources) waits, since its throttle already keeps it from
/// running; what stops harm the throttle does not (another principal's
/// keys, the attacker's own functions, secrets) does not wait.
fn goes_with_harm(spec: &crate::action::spec::ActionSpec) -> bool {
    spec.stops_harm
        && match spec.harm_order {
            HarmOrder::Shared | HarmOrder::Function => true,
            HarmOrder::Access => !spec.own_state,
            HarmOrder::Preserve => false,
        }
}

/// `step` ran (or had nothing to do); once, whichever passes it was in.
fn reach(progress: &mut TargetProgress, step: &str) {
    if !progress.reached.iter().any(|s| s == step) {
        progress.reached.push(step.to_string());
    }
}

pub(crate) fn target_function(plan: &Plan) -> Option<String> {
    plan.params
        .get("function")
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Session {
    /// Applies one target's plan through the runner (the same path as many
    /// targets), then verifies.
    pub async fn apply_plan(
        &self,
        plan: &Plan,
        playbook: &Playbook,
    ) -> Result<RunReport, EngineError> {
        self.apply_plans(playbook, std::slice::from_ref(plan), 1)
            .await
    }

    /// Applies what `pass` takes of `plan`, adding to `report` and to the
    /// target's `progress`. A target's steps stop at an `on_error: abort`
    /// failure or a stale change; other targets are not affected.
    pub(crate) async fn apply_steps(
        &self,
        plan: &Plan,
        playbook: &Playbook,
        reread: Reread,
        pass: Pass,
        report: &mut RunReport,
        progress: &mut TargetProgress,
    ) -> Result<(), EngineError> {
        let mut chosen = Vec::new();
        for sp in &plan.steps {
            let step = find_step(playbook, &sp.id)?;
            let spec = step.action.spec();
            let taken = match pass {
                // Not a step `run --yes` applied while planning.
                Pass::Harm => spec.stops_harm && !progress.applied_early.contains(&sp.id),
                // A harm-stopping step comes back only for what it left.
                Pass::Rest => !spec.stops_harm || !pass.changes(step, sp).is_empty(),
            };
            if taken {
                chosen.push((sp, step));
            }
        }
        // The harm-stopping steps in `HarmOrder` (a stable sort: the
        // playbook's order among equals); every other step as planned.
        chosen.sort_by_key(|(_, step)| apply_rank(step));
        let function = target_function(plan);
        self.apply_chosen(function, chosen, reread, pass, report, progress)
            .await
    }

    /// Applies `chosen` in the order given: what `apply_steps` chose of a
    /// plan, or one harm-stopping step `run --yes` applies as soon as it
    /// is planned (`planning::Containing`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_chosen(
        &self,
        function: Option<String>,
        chosen: Vec<(&StepPlan, &Step)>,
        reread: Reread,
        pass: Pass,
        report: &mut RunReport,
        progress: &mut TargetProgress,
    ) -> Result<(), EngineError> {
        for (sp, step) in chosen {
            // After an abort only the harm-stopping steps go on: each
            // stops harm on its own (contract 14), and a stale role must
            // not leave the function unthrottled. Not past a failed
            // `Preserve` step: what it keeps must be kept before the
            // others remove it.
            if progress.preserve_failed {
                break;
            }
            if progress.aborted_at.is_some() && !step.action.spec().stops_harm {
                continue;
            }
            // What the plan observed decides which doubts are this step's.
            let planned = sp.target.as_ref().map(|target| Observation {
                target: target.clone(),
                state: sp.observed.clone().unwrap_or(Value::Null),
            });
            let has_doubt =
                pass.settles_doubts(step) && !self.in_doubt_for(step, planned.as_ref()).is_empty();
            let work = match sp.status {
                StepStatus::Changes => !pass.changes(step, sp).is_empty() || has_doubt,
                StepStatus::Satisfied => has_doubt,
                StepStatus::Read | StepStatus::Skipped | StepStatus::Held | StepStatus::Failed => {
                    false
                }
            };
            if !work {
                reach(progress, &sp.id);
                continue;
            }
            // The heartbeat, before every step that changes something: a
            // shared store's lease stays ours through a long run, and a
            // responder that lost it (another took the incident over)
            // stops before its next change instead of racing the new holder.
            self.incident().renew_lease()?;
            let mut attempt = 0;
            loop {
                // A retry always reads again: part of the step may have
                // gone through.
                let reread = if attempt == 0 { reread } else { Reread::Always };
                let applying = self.apply_step(sp, step, reread, pass);
                let applied = if pass == Pass::Harm && goes_with_harm(step.action.spec()) {
                    applying.await
                } else {
                    crate::aws::call_path::after_harm(applying).await
                };
                let failed = match applied {
                    Ok(applied) => {
                        report.outcomes.extend(applied.outcomes);
                        applied.failed
                    }
                    Err(e) => vec![Failed::step(e)],
                };
                if failed.is_empty() {
                    reach(progress, &sp.id);
                    break;
                }
                // Retrying re-observes: what did go through is satisfied
                // by then and is not repeated.
                if failed.iter().all(|f| f.error.retryable()) && attempt < step.retries {
                    tracing::warn!(step = %step.id, attempt, "step failed, retrying after re-observing: {}", failed[0].error);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
                let mut refused = false;
                for f in failed {
                    refused |= matches!(f.error, EngineError::Stale { .. });
                    self.record_failure(sp, step, &f, report)?;
                }
                let aborts = refused || step.on_error == OnError::Abort;
                progress.preserve_failed |= aborts && apply_rank(step) == HarmOrder::Preserve;
                if aborts && progress.aborted_at.is_none() {
                    progress.aborted_at = Some(sp.id.clone());
                    report.aborted.push(Aborted {
                        function: function.clone(),
                        step: sp.id.clone(),
                    });
                }
                break;
            }
        }
        Ok(())
    }

    fn record_failure(
        &self,
        sp: &StepPlan,
        step: &Step,
        failed: &Failed,
        report: &mut RunReport,
    ) -> Result<(), EngineError> {
        let e = &failed.error;
        self.audit(
            AuditEvent::Error,
            Some(&sp.id),
            json!({"message": e.to_string(), "hint": e.hint(), "resource": failed.resource}),
        )?;
        report.failures.push(StepFailure {
            step: sp.id.clone(),
            target: sp.target.clone(),
            resource: failed.resource.clone(),
            refused: matches!(e, EngineError::Stale { .. }),
            stops_harm: step.action.spec().stops_harm,
            action: sp.action.clone(),
            message: e.to_string(),
            hint: e.hint(),
        });
        Ok(())
    }

    /// One step: re-observe, then settle each planned change. A change AWS
    /// refuses outright is journaled as failed and the step's other
    /// changes still go through (one statement that cannot be removed must
    /// not keep the others open, one secret that cannot be rotated must not
    /// keep the others valid). A stale change stops the step, and so does
    /// one whose outcome is unknown, unless the action's changes are
    /// independent (`Action::independent_changes`: a rotation Lambda that
    /// times out on one secret says nothing about the next secret): the
    /// intent then stays in doubt, the next run re-observes it, and the
    /// step's other changes go on.
    async fn apply_step(
        &self,
        sp: &StepPlan,
        step: &Step,
        reread: Reread,
        pass: Pass,
    ) -> Result<StepApplied, EngineError> {
        let planned_changes = pass.changes(step, sp);
        let first_pass = pass.settles_doubts(step);
        // Once: `apply_plan` retries the whole step, re-observing each time.
        // The compare-and-swap re-read, from AWS unless the plan's own
        // observation is just as recent (`Reread`).
        let plan_observation = match (&sp.target, &sp.observed) {
            (Some(target), Some(state)) => Some(Observation {
                target: target.clone(),
                state: state.clone(),
            }),
            _ => None,
        };
        // Another target's change to the same shared resource settles
        // before this one looks at it (`RunContext::exclusive`); held
        // before asking whose the resource is, which may depend on which
        // targets observed it so far (`Action::owns_observed`).
        let own_state = reread == Reread::SharedState && step.action.spec().own_state;
        let _changing = match &sp.target {
            Some(target) if !planned_changes.is_empty() && !own_state => {
                Some(self.run.exclusive(target).await)
            }
            _ => None,
        };
        // Whose state it is depends on the step's arguments and what it
        // observed, never on the journal: no copy of the journal here.
        let owned = plan_observation.as_ref().is_some_and(|o| {
            let cx = self.step_context(&sp.args, &[], &step.id);
            step.action.owns_observed(&cx, o)
        });
        let planned = plan_observation.filter(|_| reread == Reread::SharedState && owned);
        let shared = !owned;
        if shared
            && !planned_changes.is_empty()
            && planned_changes.iter().all(|c| self.run.is_settled(c))
            && (!first_pass || self.in_doubt_for(step, None).is_empty())
        {
            // Another target of this run made exactly these changes (a
            // shared role's deny): nothing to read or do. Verification
            // reads the resource for this target too.
            let mut outcomes = Vec::new();
            for change in &planned_changes {
                self.audit(
                    AuditEvent::AlreadySatisfied,
                    Some(&sp.id),
                    json!({"change": change, "detail": "made by this run for another target"}),
                )?;
                outcomes.push(ChangeOutcome {
                    step: sp.id.clone(),
                    outcome: Outcome::AlreadySatisfied,
                    change: change.clone(),
                });
            }
            return Ok(StepApplied {
                outcomes,
                failed: Vec::new(),
            });
        }
        let observed = match planned {
            Some(o) => o,
            None => self.observe_once(step, &sp.args, true, None).await?,
        };
        let now = self.plan_step(step, &sp.args, &observed, None)?;
        let in_doubt = if first_pass {
            self.in_doubt_for(step, Some(&observed))
        } else {
            Vec::new()
        };
        let mut outcomes = Vec::new();
        let mut failed = Vec::new();
        // Planned changes, plus in-doubt ones a fresh plan no longer lists.
        let mut todo: Vec<Change> = planned_changes;
        for r in &in_doubt {
            if !todo.iter().any(|c| c.same_intent(&r.change)) {
                todo.push(r.change.clone());
            }
        }
        for change in todo {
            let doubt = in_doubt.iter().any(|r| r.change.same_intent(&change));
            match now.changes.iter().find(|n| n.same_intent(&change)) {
                None => {
                    // Already at `after`.
                    let outcome = if doubt {
                        self.journal(step, JournalEvent::Applied, &change, true, None)?;
                        self.audit(AuditEvent::Confirmed, Some(&sp.id), json!({"change": change, "detail": "an interrupted earlier run made this change; re-observation confirms it"}))?;
                        Outcome::Confirmed
                    } else {
                        self.audit(
                            AuditEvent::AlreadySatisfied,
                            Some(&sp.id),
                            json!({"change": change}),
                        )?;
                        Outcome::AlreadySatisfied
                    };
                    // In effect, whoever's state it is: another step that
                    // plans the same change (a target's own throttle, and
                    // another target finding that function rogue) need not
                    // read it again before its own.
                    self.run.settle(&change);
                    outcomes.push(ChangeOutcome {
                        step: sp.id.clone(),
                        outcome,
                        change,
                    });
                }
                Some(n) if n.before != change.before && !doubt => {
                    return Err(EngineError::Stale {
                        details: vec![format!(
                            "step `{}`: {} {} was {} when planned and is {} now",
                            sp.id,
                            change.target,
                            change.attribute,
                            short(&change.before),
                            short(&n.before)
                        )],
                    });
                }
                Some(n) => {
                    // Record the state as it is right now: that is what
                    // recovery must put back.
                    let change = if doubt { n.clone() } else { change };
                    self.journal(step, JournalEvent::Intent, &change, false, None)?;
                    self.audit(
                        AuditEvent::Applying,
                        Some(&sp.id),
                        serde_json::to_value(&change).unwrap_or(Value::Null),
                    )?;
                    hooks::pause_point("before_apply", &sp.id);
                    let result = self.call_apply(step, &sp.args, &change).await;
                    if result.is_ok() {
                        let _ = self.first_change.set(super::Milestone::now(&self.aws));
                    }
                    hooks::pause_point("after_apply", &sp.id);
                    match result {
                        Ok(receipt) => {
                            // Before `Applied`: a crash in between leaves the
                            // change in doubt, and the re-run writes the
                            // receipt again rather than never.
                            if let Some(r) = receipt {
                                self.audit(r.event, Some(&sp.id), r.data)?;
                            }
                            self.journal(step, JournalEvent::Applied, &change, false, None)?;
                            self.run.settle(&change);
                            self.audit(
                                AuditEvent::Applied,
                                Some(&sp.id),
                                serde_json::to_value(&change).unwrap_or(Value::Null),
                            )?;
                            outcomes.push(ChangeOutcome {
                                step: sp.id.clone(),
                                outcome: Outcome::Applied,
                                change,
                            });
                        }
                        Err(e) if e.outcome_unknown() => {
                            // No outcome record: the intent stays in doubt,
                            // and the next run re-observes to settle it.
                            self.audit(
                                AuditEvent::OutcomeUnknown,
                                Some(&sp.id),
                                json!({"change": change, "message": e.to_string()}),
                            )?;
                            if !step.action.independent_changes() {
                                return Err(e);
                            }
                            failed.push(Failed {
                                resource: Some(change.target.clone()),
                                error: e,
                            });
                        }
                        Err(e) => {
                            self.journal(
                                step,
                                JournalEvent::Failed,
                                &change,
                                false,
                                Some(e.to_string()),
                            )?;
                            failed.push(Failed {
                                resource: Some(change.target.clone()),
                                error: e,
                            });
                        }
                    }
                }
            }
        }
        Ok(StepApplied { outcomes, failed })
    }

    async fn call_apply(
        &self,
        step: &Step,
        args: &Map<String, Value>,
        change: &Change,
    ) -> Result<Option<Receipt>, EngineError> {
        let history = self.incident().journal.snapshot();
        let cx = self.step_context(args, &history, &step.id);
        match tokio::time::timeout(step.timeout, step.action.apply_with_receipt(&cx, change)).await
        {
            Ok(r) => r.map_err(|e| Self::step_error(step, e)),
            Err(_) => Err(EngineError::Timeout {
                step: step.id.clone(),
                secs: step.timeout.as_secs(),
            }),
        }
    }

    fn journal(
        &self,
        step: &Step,
        event: JournalEvent,
        change: &Change,
        confirmed: bool,
        error: Option<String>,
    ) -> Result<(), EngineError> {
        // A second `incident()` inside the literal would re-lock the held mutex.
        let mut incident = self.incident();
        let run = incident.audit.run.clone();
        incident.journal.append(JournalRecord {
            seq: 0,
            time: crate::time::now_rfc3339(),
            run,
            event,
            step: step.id.clone(),
            action: step.action.spec().name.to_string(),
            change: change.clone(),
            confirmed_by_observation: confirmed,
            error,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::goes_with_harm;
    use crate::action::registry::find;

    fn with_harm(name: &str) -> bool {
        goes_with_harm(find(name).expect("a registered action").spec())
    }

    /// The deny and the throttle, and what stops harm a throttle does not,
    /// are served with them; closing the function's own doors after them.
    #[test]
    fn closing_the_functions_own_doors_waits_for_every_deny_and_throttle() {
        for name in [
            "iam.quarantine_role",
            "lambda.set_concurrency",
            "lambda.contain_rogue_functions",
            "iam.deactivate_access_keys",
        ] {
            assert!(with_harm(name), "{name}");
        }
        for name in [
            "lambda.remove_public_access",
            "lambda.disable_event_sources",
            "evidence.snapshot_indicators",
            "lambda.describe",
        ] {
            assert!(!with_harm(name), "{name}");
        }
    }
}
