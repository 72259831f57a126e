//! One drill run end to end: a fresh namespace, setup, attack, the
//! response, the checks after containment, recovery and the checks after
//! it, the scorecard, then cleanup (unless `keep`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::attack;
use super::baseline;
use super::checks::{self, Inputs};
use super::cleanup;
use super::lab::{local_endpoint, Lab};
use super::model::Drill;
use super::names::Namespace;
use super::respond;
use super::score::{self, Clock, ScoreInput, Scorecard};
use super::setup;
use super::DrillError;
use crate::aws::{Aws, AwsSettings};
use crate::state::{IncidentId, StateStore};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Must be local (LocalStack); anything else is refused.
    pub endpoint: Option<String>,
    pub region: String,
    /// Leave what the drill created in place (for inspection).
    pub keep: bool,
    /// Where the run's files go (routes file, scorecards).
    pub out_dir: PathBuf,
    pub quotas: Option<PathBuf>,
}

fn ms(clock: Instant) -> u64 {
    u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs `drill`; incident state goes to `store` (so `firebreak report`
/// and `audit verify` work on the drill's incident afterwards).
pub async fn run(
    drill: &Drill,
    store: Arc<dyn StateStore>,
    opts: &RunOptions,
) -> Result<(Scorecard, PathBuf), DrillError> {
    let endpoint = local_endpoint(opts.endpoint.as_deref())?;
    let ns = Namespace::new(&opts.region);
    let lab = Lab::connect(&endpoint, &ns.region, &ns.account).await?;
    let attacker = Lab::connect(&endpoint, &ns.region, &ns.attacker_account).await?;
    let run_dir = opts.out_dir.join(format!("{}-{}", drill.name, ns.suffix));
    std::fs::create_dir_all(&run_dir).map_err(|e| DrillError::Write {
        path: run_dir.display().to_string(),
        source: e,
    })?;
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let mut world = match setup::setup(&lab, &ns, drill).await {
        Ok(w) => w,
        Err(e) => {
            // What was made before the failure is in this account only;
            // nothing to remove by name, so report the error as it is.
            return Err(e);
        }
    };
    tracing::info!(ms = ms(clock), "drill setup done");
    let result = scored(
        drill, &ns, &lab, &attacker, &mut world, store, opts, &endpoint, &run_dir, started, clock,
    )
    .await;
    let cleaned = if opts.keep {
        false
    } else {
        cleanup::cleanup(&lab, &attacker, &world).await
    };
    result.map(|mut s| {
        s.cleaned_up = cleaned;
        (s, run_dir)
    })
}

#[allow(clippy::too_many_arguments)]
async fn scored(
    drill: &Drill,
    ns: &Namespace,
    lab: &Lab,
    attacker: &Lab,
    world: &mut setup::World,
    store: Arc<dyn StateStore>,
    opts: &RunOptions,
    endpoint: &str,
    run_dir: &std::path::Path,
    started: chrono::DateTime<chrono::Utc>,
    clock: Instant,
) -> Result<Scorecard, DrillError> {
    // The known-good state, before the attack: what recovery restores
    // and `recovered_to_baseline` compares with.
    let baselines = baseline::take(lab, ns, world, run_dir).await?;
    tracing::info!(ms = ms(clock), "drill baselines taken");
    let attack = attack::run(lab, attacker, ns, world, &drill.attack, clock).await?;
    tracing::info!(ms = ms(clock), "drill attack done");

    // firebreak's own clients: the same account, through its guard.
    let settings = AwsSettings {
        region: Some(ns.region.clone()),
        profile: None,
        endpoint_url: Some(endpoint.to_string()),
        dry_run: false,
        quotas: opts.quotas.clone(),
    };
    let aws = Aws::from_sdk_config(&lab.sdk, ns.region.clone(), &settings);
    let caller = aws
        .caller()
        .await
        .map_err(|e| DrillError::Respond(format!("firebreak could not learn its caller: {e}")))?;
    let response = respond::respond(
        drill,
        ns,
        world,
        &aws,
        &caller,
        &settings,
        store.clone(),
        run_dir,
    )
    .await?;
    tracing::info!(ms = ms(clock), incident = %response.incident, "drill response done");
    let mut clock_marks = Clock {
        alarm_set: attack.alarm_set_ms,
        alarm_received: response
            .received_at
            .as_deref()
            .and_then(|t| score::ms_since(started, t)),
        ..Default::default()
    };

    let id = IncidentId::parse(&response.incident).map_err(DrillError::State)?;
    let trail = store.read_trail(&id)?;
    let audit_verified = match crate::state::audit::verify(&trail, true) {
        Ok(v) => match v.broken {
            None => Ok(format!(
                "{} record(s) chain by SHA-256; head checked",
                v.records
            )),
            Some(b) => Err(format!("line {}: {}", b.line, b.problem)),
        },
        Err(e) => Err(e.to_string()),
    };
    let evidence_verified = match crate::evidence::store::ForensicStore::open(
        lab.s3.clone(),
        &world.bucket,
        None,
    )
    .await
    {
        Err(e) => Err(e.to_string()),
        Ok(fs) => match crate::evidence::verify::verify(&fs, &trail).await {
            Err(e) => Err(e.to_string()),
            Ok(v) if v.mismatches.is_empty() => Ok(format!(
                "{} manifest(s), {} artifact(s) match their SHA-256",
                v.manifests, v.artifacts
            )),
            Ok(v) => Err(v
                .mismatches
                .iter()
                .map(|m| format!("{}: {}", m.key, m.problem))
                .collect::<Vec<_>>()
                .join("; ")),
        },
    };
    let evidence = checks::evidence_objects(lab, &world.bucket).await;
    let inputs = Inputs {
        drill,
        world,
        artifacts: &attack.artifacts,
        attack: &drill.attack,
        evidence: &evidence,
        evidence_verified,
        audit_verified,
        ns,
        baselines: &baselines,
        recovery: None,
    };
    tracing::info!(ms = ms(clock), "drill evidence read");
    let mut results = checks::run(lab, &ns.account, "contained", &drill.contained, &inputs).await;
    tracing::info!(ms = ms(clock), "drill containment checked");

    if !drill.recovered.is_empty() {
        clock_marks.recover_started = Some(ms(clock));
        let recovery = respond::recover(
            store.as_ref(),
            &response.incident,
            &aws,
            &caller,
            &baselines,
            &world.bucket,
        )
        .await;
        clock_marks.recover_finished = Some(ms(clock));
        tracing::info!(ms = ms(clock), "drill recovered");
        let inputs = Inputs {
            recovery: Some(&recovery),
            ..inputs
        };
        results.extend(checks::run(lab, &ns.account, "recovered", &drill.recovered, &inputs).await);
    }

    let report =
        crate::report::build(store.as_ref(), &id, &crate::time::now_rfc3339_seconds()).ok();
    Ok(score::build(ScoreInput {
        drill,
        incident: &response.incident,
        account: &ns.account,
        suffix: &ns.suffix,
        started,
        attack: &attack.steps,
        artifacts: &attack.artifacts,
        checks: results,
        report: report.as_ref(),
        clock: clock_marks,
    }))
}
