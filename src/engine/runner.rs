//! The one runner every entry point drives (CLI, queue worker, Lambda
//! handler, drill): plan N targets, apply them harm-first, verify, seal the
//! chain of custody, and return a typed report. One target is N = 1: the
//! same code path, the same report, the same semantics.
//!
//! Order across targets (contract 9): the harm-stopping steps of every
//! target go first, then every other step, then verification. A target
//! whose run aborts (a stale change, `on_error: abort`) stops its own later
//! steps only; the other targets go on. A step held for a decision or one
//! that could not be planned is skipped and reported; nothing else waits
//! for it (contract 14).

use crate::state::AuditEvent;
use std::time::Instant;

use std::collections::VecDeque;

use futures::stream::{self, FuturesUnordered, StreamExt};
use serde_json::{json, Map, Value};

use tokio::sync::Semaphore;

use super::apply::{Pass, Reread, TargetProgress};
use super::planning::Containing;
use super::progress::Stage;
use super::report::{self, BlastRadius, RunReport, StepFailure};
use super::{targets, EngineError, Session};
use crate::aws::call_path::for_target;
use crate::plan::{Plan, Summary};
use crate::playbook::{Phase, Playbook};

/// The next matches of a streamed selection; never ready without one.
async fn next_matches(
    listing: &mut Option<targets::Streamed>,
) -> Option<Result<Vec<String>, EngineError>> {
    match listing {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

/// A target's params: the run's, with `function` set to its function.
fn with_function(params: &Map<String, Value>, function: String) -> Map<String, Value> {
    let mut p = params.clone();
    p.insert("function".into(), Value::String(function));
    p
}

/// Which functions a run covers.
#[derive(Debug, Clone)]
pub enum Targets {
    /// The params name everything (one target, `--param function=...`).
    AsGiven,
    /// Functions chosen by selectors (names, ARNs, globs, `tag:K=V`); each
    /// becomes the `function` param of its own plan.
    Select { selectors: Vec<String>, max: u32 },
}

/// Everything a run needs besides the session.
pub struct RunRequest<'a> {
    pub playbook: &'a Playbook,
    /// Params shared by every target (without `function` for `Select`).
    pub params: &'a Map<String, Value>,
    pub phases: &'a [Phase],
    pub targets: Targets,
    /// How many targets are worked on at once.
    pub concurrency: usize,
}

/// The plans of one run, one per target, in target order.
#[derive(Debug, Clone)]
pub struct PlanSet {
    pub plans: Vec<Plan>,
    pub planned_ms: u64,
}

impl PlanSet {
    pub fn one(plan: Plan) -> Self {
        Self {
            plans: vec![plan],
            planned_ms: 0,
        }
    }

    pub fn summary(&self) -> Summary {
        Summary::of(&self.plans)
    }

    /// Held steps and steps that could not be planned, as a report.
    pub fn pending(&self) -> RunReport {
        report::from_plans(&self.plans)
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Session {
    /// The params of each target, in target order (the selectors
    /// expanded, the match recorded in the trail and checked against
    /// `max_targets`).
    async fn target_params(
        &self,
        req: &RunRequest<'_>,
    ) -> Result<Vec<Map<String, Value>>, EngineError> {
        Ok(match &req.targets {
            Targets::AsGiven => vec![req.params.clone()],
            Targets::Select { selectors, max } => {
                let functions = targets::expand(self, selectors).await?;
                self.audit(
                    AuditEvent::Targets,
                    None,
                    json!({"selectors": selectors, "matched": functions, "max_targets": max}),
                )?;
                targets::check_count(selectors, &functions, *max)?;
                self.run.set_targets(functions.len());
                functions
                    .into_iter()
                    .map(|f| with_function(req.params, f))
                    .collect()
            }
        })
    }

    /// Observes and plans every target. Only reads AWS.
    pub async fn plan_targets(&self, req: &RunRequest<'_>) -> Result<PlanSet, EngineError> {
        let started = Instant::now();
        let params = self.target_params(req).await?;
        // Observation only: several targets at once, the plans kept in
        // target order.
        // The futures are made by an iterator, not by `StreamExt::map`: a
        // stream's closure over borrowed data is not provably `Send` for
        // every lifetime, which a caller spawning this run (`watch`) needs.
        self.progress.stage(Stage::Planning, params.len());
        let futures: Vec<_> = params
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                for_target(i, async move {
                    let plan = self.build_plan(req.playbook, &p, req.phases).await;
                    self.progress.target_done();
                    plan
                })
            })
            .collect();
        let plans: Vec<Result<Plan, EngineError>> = stream::iter(futures)
            .buffered(req.concurrency.max(1))
            .collect()
            .await;
        Ok(PlanSet {
            plans: plans.into_iter().collect::<Result<_, _>>()?,
            planned_ms: millis(started),
        })
    }

    /// Plans and runs every target with no confirmation in between (`run
    /// --yes`): every target is started as soon as it is listed, and each
    /// harm-stopping step is applied as soon as its own reads are answered
    /// and it is planned (`planning::applies_early`: a throttle after its
    /// GetFunction, not after public access's reads; only the throttle
    /// and the role's deny when the plan preserves evidence first), the
    /// rest of the target's harm-stopping steps once its plan is made. With N targets
    /// every function is throttled after about N calls' worth of quota,
    /// not after all of its targets' reads (issue 15). Every other step
    /// and verification follow, as in `execute`.
    pub async fn plan_and_execute(
        &self,
        req: &RunRequest<'_>,
        command: &str,
    ) -> Result<(PlanSet, RunReport), EngineError> {
        let started = Instant::now();
        let mut listing = match &req.targets {
            Targets::Select { selectors, max } => targets::stream(self, selectors, *max).await?,
            Targets::AsGiven => None,
        };
        let mut queue: VecDeque<Map<String, Value>> = match &listing {
            Some(l) => {
                // An upper bound until the listing ends: what the run's
                // reads size their budgets by.
                self.run
                    .set_targets(usize::try_from(l.function_count).unwrap_or(usize::MAX));
                VecDeque::new()
            }
            None => self.target_params(req).await?.into(),
        };
        // No human reads these plans before they are applied: a role
        // quarantine whose scope was chosen does not wait for the
        // region's listing, which is named after containment instead.
        self.run.defer_listing();
        let hint = listing.as_ref().map_or(queue.len(), |l| {
            usize::try_from(l.function_count).unwrap_or(usize::MAX)
        });
        self.progress.stage(Stage::Containing, hint);
        // Every target is worked on at once: the call path paces the calls
        // and serves changes first, so each throttle goes as soon as its
        // own read is answered instead of after earlier targets' whole
        // plans; what does not stop harm is kept to `concurrency` targets.
        let gate = Semaphore::new(req.concurrency.max(1));
        let containing = Containing { gate: &gate };
        let mut running = FuturesUnordered::new();
        let mut done = Vec::new();
        let mut first_error = None;
        let mut next = 0usize;
        loop {
            while let Some(p) = queue.pop_front() {
                running.push(for_target(next, self.contain_target(req, p, &containing)));
                next += 1;
            }
            if running.is_empty() && queue.is_empty() && listing.is_none() {
                break;
            }
            tokio::select! {
                page = next_matches(&mut listing), if listing.is_some() => match page {
                    Some(Ok(names)) => queue.extend(names.into_iter().map(|f| with_function(req.params, f))),
                    Some(Err(e)) => {
                        // No further target starts; those running finish.
                        queue.clear();
                        first_error.get_or_insert(e);
                        if let Err(e) = self.finish_listing(&mut listing, req) {
                            first_error.get_or_insert(e);
                        }
                    }
                    None => {
                        if let Err(e) = self.finish_listing(&mut listing, req) {
                            queue.clear();
                            first_error.get_or_insert(e);
                        }
                    }
                },
                Some(d) = running.next(), if !running.is_empty() => done.push(d),
            }
        }
        let contained_ms = millis(started);
        let to_contained = self.since_origin();
        let deferred = self.run.contained();
        let mut ok = Vec::with_capacity(done.len());
        for d in done {
            match d {
                Ok(d) => ok.push(d),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // Target order is the functions' names (as a selection is sorted),
        // whatever order their pages and plans came in.
        ok.sort_by(|a, b| a.0.cmp(&b.0));
        let planned_ms = ok
            .iter()
            .map(|d| u64::try_from(d.2.duration_since(started).as_millis()).unwrap_or(u64::MAX))
            .max()
            .unwrap_or(0);
        let mut plans = Vec::with_capacity(ok.len());
        let mut progress = Vec::with_capacity(ok.len());
        let mut parts = Vec::with_capacity(ok.len());
        for (_, plan, _, p, part) in ok {
            plans.push(plan);
            progress.push(p);
            parts.push(part);
        }
        let set = PlanSet { plans, planned_ms };
        let (named, unnamed) = self.name_blast_radius(&set.plans, deferred).await?;
        if let Some(e) = first_error {
            // The targets already contained keep their trail in the bucket.
            let _ = self.seal(&set.plans).await;
            return Err(e);
        }
        let mut report = report::from_plans(&set.plans);
        for part in parts {
            report.merge(part);
        }
        report.failures.extend(unnamed);
        report.blast_radius = named;
        report.timings.contained_ms = contained_ms;
        report.timings.to_contained = to_contained;
        let applied = Instant::now();
        let report = self
            .apply_rest(
                req.playbook,
                &set.plans,
                &mut progress,
                report,
                req.concurrency,
                Reread::SharedState,
            )
            .await;
        let report = report.map(|mut r| {
            r.timings.apply_ms = contained_ms.saturating_sub(planned_ms)
                + millis(applied).saturating_sub(r.timings.verify_ms);
            r
        });
        let report = self.finish_run(&set, report, command).await?;
        Ok((set, report))
    }

    /// One target's plan and harm-stopping steps (`plan_and_execute`),
    /// with its function's name to put the targets back in order.
    async fn contain_target(
        &self,
        req: &RunRequest<'_>,
        p: Map<String, Value>,
        containing: &Containing<'_>,
    ) -> Result<(String, Plan, Instant, TargetProgress, RunReport), EngineError> {
        let name = p
            .get("function")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (plan, early) = self
            .build_plan_with(req.playbook, &p, req.phases, Some(containing))
            .await?;
        let planned = Instant::now();
        let mut progress = TargetProgress::default();
        let mut part = RunReport::default();
        for e in early {
            // A superseded reading's changes are reported; the plan's own
            // line for the step is still applied by the harm pass.
            if !e.superseded {
                progress.merge_early(&e.step, e.progress);
            }
            part.merge(e.report);
        }
        self.apply_steps(
            &plan,
            req.playbook,
            Reread::SharedState,
            Pass::Harm,
            &mut part,
            &mut progress,
        )
        .await?;
        self.progress.target_done();
        Ok((name, plan, planned, progress, part))
    }

    /// The streamed listing is over: its match goes in the trail, as
    /// `target_params` records it, and is checked. A selection that
    /// matched nothing started nothing and is refused as `expand`'s is.
    fn finish_listing(
        &self,
        listing: &mut Option<targets::Streamed>,
        req: &RunRequest<'_>,
    ) -> Result<(), EngineError> {
        let (Some(l), Targets::Select { selectors, max }) = (listing.take(), &req.targets) else {
            return Ok(());
        };
        let matched = l.matched();
        self.audit(
            AuditEvent::Targets,
            None,
            json!({
                "selectors": selectors,
                "matched": matched,
                "max_targets": max,
                "streamed": {"function_count": l.function_count},
            }),
        )?;
        self.progress.set_total(matched.len());
        if matched.is_empty() {
            targets::check_count(selectors, &matched, *max)?;
        }
        Ok(())
    }

    /// Names in the trail every function a role quarantine affected that
    /// went on before the region's functions were listed (`deferred`: step
    /// id and role ARN, `RunContext::contained`), now that harm is
    /// stopped (contract 13). A listing that fails is a failure of the
    /// step, not of containment: the run cannot say whom its deny stopped.
    async fn name_blast_radius(
        &self,
        plans: &[Plan],
        deferred: Vec<(String, String)>,
    ) -> Result<(Vec<BlastRadius>, Vec<StepFailure>), EngineError> {
        let mut named = Vec::new();
        let mut failures = Vec::new();
        if deferred.is_empty() {
            return Ok((named, failures));
        }
        let listed = self.run.functions(&self.aws).await;
        for (step, role) in deferred {
            match &listed {
                Ok(listed) => {
                    let functions = listed.using_role(&role);
                    self.audit(
                        AuditEvent::BlastRadius,
                        Some(&step),
                        json!({"role": role, "functions_using_role": functions}),
                    )?;
                    named.push(BlastRadius {
                        step,
                        role,
                        functions,
                    });
                }
                Err(e) => {
                    let message = format!("the functions using {role} could not be listed: {e}");
                    self.audit(
                        AuditEvent::Error,
                        Some(&step),
                        json!({"message": message, "hint": e.hint(), "resource": role}),
                    )?;
                    let action = plans
                        .iter()
                        .flat_map(|p| &p.steps)
                        .find(|sp| sp.id == step)
                        .map(|sp| sp.action.clone())
                        .unwrap_or_default();
                    // No `target`: verification matches failed steps by
                    // it, and the deny itself must still be verified.
                    failures.push(StepFailure {
                        step,
                        target: None,
                        resource: Some(role),
                        refused: false,
                        stops_harm: false,
                        action,
                        message,
                        hint: e.hint().to_string(),
                    });
                }
            }
        }
        Ok((named, failures))
    }

    /// Applies every plan: the harm-stopping steps of every target, then
    /// the rest, then verification; up to `concurrency` targets at a time.
    pub async fn apply_plans(
        &self,
        playbook: &Playbook,
        plans: &[Plan],
        concurrency: usize,
    ) -> Result<RunReport, EngineError> {
        let mut report = report::from_plans(plans);
        let mut progress: Vec<TargetProgress> =
            plans.iter().map(|_| TargetProgress::default()).collect();
        let started = Instant::now();
        let applying = super::Milestone::now(&self.aws);
        for part in self
            .apply_phase(
                playbook,
                plans,
                &mut progress,
                Pass::Harm,
                concurrency,
                Reread::Always,
            )
            .await
        {
            report.merge(part?);
        }
        report.timings.contained_ms = millis(started);
        // A human may have confirmed in between: measured from here.
        report.timings.to_contained =
            super::Split::between(&applying, &super::Milestone::now(&self.aws));
        let mut report = self
            .apply_rest(
                playbook,
                plans,
                &mut progress,
                report,
                concurrency,
                Reread::Always,
            )
            .await?;
        report.timings.apply_ms = millis(started).saturating_sub(report.timings.verify_ms);
        Ok(report)
    }

    /// One side of the harm split for every target, up to `concurrency`
    /// targets at a time.
    async fn apply_phase(
        &self,
        playbook: &Playbook,
        plans: &[Plan],
        progress: &mut [TargetProgress],
        pass: Pass,
        concurrency: usize,
        reread: Reread,
    ) -> Vec<Result<RunReport, EngineError>> {
        let stage = match pass {
            Pass::Harm => Stage::Containing,
            Pass::Rest => Stage::OtherSteps,
        };
        self.progress.stage(stage, plans.len());
        let futures: Vec<_> = plans
            .iter()
            .zip(progress.iter_mut())
            .enumerate()
            .map(|(i, (plan, progress))| {
                for_target(i, async move {
                    let mut part = RunReport::default();
                    let applied = self
                        .apply_steps(plan, playbook, reread, pass, &mut part, progress)
                        .await
                        .map(|()| part);
                    self.progress.target_done();
                    applied
                })
            })
            .collect();
        stream::iter(futures)
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await
    }

    /// After containment: every other step, and what the harm-stopping
    /// steps left for after it, then verification. `reread`: as for
    /// containment (`SharedState` only in `run --yes`, whose plans are
    /// this run's own).
    async fn apply_rest(
        &self,
        playbook: &Playbook,
        plans: &[Plan],
        progress: &mut [TargetProgress],
        mut report: RunReport,
        concurrency: usize,
        reread: Reread,
    ) -> Result<RunReport, EngineError> {
        for part in self
            .apply_phase(playbook, plans, progress, Pass::Rest, concurrency, reread)
            .await
        {
            report.merge(part?);
        }
        let started = Instant::now();
        let failures = &report.failures;
        self.progress.stage(Stage::Verifying, plans.len());
        let futures: Vec<_> = plans
            .iter()
            .zip(progress.iter())
            .enumerate()
            .map(|(i, (plan, progress))| {
                for_target(i, async move {
                    // Failed steps are not verified (matched by step and target).
                    let mut part = RunReport {
                        failures: failures.clone(),
                        ..RunReport::default()
                    };
                    let verified = self
                        .verify_plan(plan, playbook, &mut part, progress)
                        .await
                        .map(|()| RunReport {
                            checks: part.checks,
                            ..RunReport::default()
                        });
                    self.progress.target_done();
                    verified
                })
            })
            .collect();
        let checks: Vec<Result<RunReport, EngineError>> = stream::iter(futures)
            .buffered(concurrency.max(1))
            .collect()
            .await;
        for part in checks {
            report.merge(part?);
        }
        report.timings.verify_ms = millis(started);
        Ok(report)
    }

    /// A whole run after confirmation: apply, verify, record the end in the
    /// trail, seal the chain of custody (even when the run broke off, so its
    /// trail still reaches the bucket), count the API calls.
    pub async fn execute(
        &self,
        playbook: &Playbook,
        set: &PlanSet,
        concurrency: usize,
        command: &str,
    ) -> Result<RunReport, EngineError> {
        let report = self
            .apply_plans(playbook, &set.plans, concurrency)
            .await
            .map(|mut r| {
                r.timings.contained_ms += set.planned_ms;
                r
            });
        self.finish_run(set, report, command).await
    }

    async fn finish_run(
        &self,
        set: &PlanSet,
        report: Result<RunReport, EngineError>,
        command: &str,
    ) -> Result<RunReport, EngineError> {
        let mut report = match report {
            Ok(r) => r,
            Err(e) => {
                let _ = self.seal(&set.plans).await;
                return Err(e);
            }
        };
        report.timings.plan_ms = set.planned_ms;
        self.audit(
            AuditEvent::RunFinished,
            None,
            json!({
                "command": command,
                "targets": set.plans.len(),
                "status": report.status(),
                "summary": report.summary(set.summary()),
            }),
        )?;
        report.custody = self.seal(&set.plans).await?;
        report.api_calls = self.aws.api_calls();
        Ok(report)
    }

    /// The end of a dry run in the trail; the report of what is pending.
    pub fn finish_plan(&self, set: &PlanSet, command: &str) -> Result<RunReport, EngineError> {
        let mut report = set.pending();
        report.timings.plan_ms = set.planned_ms;
        report.api_calls = self.aws.api_calls();
        self.audit(
            AuditEvent::RunFinished,
            None,
            json!({
                "command": command,
                "targets": set.plans.len(),
                "summary": set.summary(),
                "decisions_pending": report.decisions.len(),
                "failed_steps": report.failures.len(),
                "mutating_requests_sent": report.api_calls.mutating,
            }),
        )?;
        Ok(report)
    }
}
