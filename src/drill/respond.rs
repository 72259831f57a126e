//! `respond`: firebreak answers the attack through its real path. `via:
//! alarm` writes this run's routes file (the allowlist is the run's
//! account, region, function and topic), loads it like `firebreak watch`
//! does and consumes the alarm queue in-process with the library's
//! `watch`; `via: direct` runs the playbook through the engine as
//! `firebreak run` does. Either way firebreak uses its own guarded clients.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::baseline::{Baselines, Recovery};
use super::model::{Drill, Via};
use super::names::Namespace;
use super::setup::World;
use super::DrillError;
use crate::aws::{Aws, AwsSettings, Caller};
use crate::engine::recover_baseline::BaselineRecoverReport;
use crate::engine::{RunRequest, Session, Targets};
use crate::respond::responder::Responder;
use crate::respond::watch::{watch, Handled, WatchOptions};
use crate::state::{IncidentId, StateStore};

/// What the response was, as the responder saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub incident: String,
    /// When the alarm reached the responder (RFC 3339); `None` for direct.
    pub received_at: Option<String>,
    pub status: String,
    pub finished_at: String,
}

/// The params the playbook gets: the scenario's, the drill's bucket, the
/// function, and the setup users by their physical names.
pub fn params(drill: &Drill, ns: &Namespace, w: &World) -> Map<String, Value> {
    let mut p = drill.respond.params.clone();
    if drill.respond.playbook.param("forensic_bucket").is_some() {
        p.insert("forensic_bucket".into(), json!(w.bucket));
    }
    // LocalStack community has no CloudTrail LookupEvents.
    if drill.respond.playbook.param("cloudtrail_api").is_some() && !p.contains_key("cloudtrail_api")
    {
        p.insert("cloudtrail_api".into(), json!(false));
    }
    if !drill.respond.users.is_empty() {
        let users: Vec<String> = drill
            .respond
            .users
            .iter()
            .map(|u| w.users.get(u).cloned().unwrap_or_else(|| ns.name(u)))
            .collect();
        p.insert("users".into(), json!(users));
    }
    p
}

#[allow(clippy::too_many_arguments)]
pub async fn respond(
    drill: &Drill,
    ns: &Namespace,
    w: &World,
    aws: &Aws,
    caller: &Caller,
    settings: &AwsSettings,
    store: Arc<dyn StateStore>,
    run_dir: &Path,
) -> Result<Response, DrillError> {
    let function = w
        .function(&drill.respond.function)
        .map(|f| f.name.clone())
        .unwrap_or_default();
    let mut params = params(drill, ns, w);
    match drill.respond.via {
        Via::Alarm => {
            let wiring = w
                .alarm
                .clone()
                .ok_or_else(|| DrillError::Respond("no alarm was wired".into()))?;
            let routes_path = run_dir.join("routes.yaml");
            let playbook = std::fs::canonicalize(&drill.respond.playbook_path)
                .unwrap_or(drill.respond.playbook_path.clone());
            let text = format!(
                "apiVersion: firebreak/v1\nkind: Routes\nallow:\n  accounts: [\"{account}\"]\n  regions: [{region}]\n  functions: [\"{function}\"]\n  sns_topics: [\"{topic}\"]\nroutes:\n  - name: drill-{name}\n    match: {{source: cloudwatch-alarm, alarm: \"{alarm}\"}}\n    playbook: {playbook}\n    target: {{function: \"${{alarm.dimensions.FunctionName}}\"}}\n    params: {params}\n",
                account = ns.account,
                region = ns.region,
                topic = wiring.topic_arn,
                name = drill.name,
                alarm = wiring.alarm,
                playbook = serde_json::to_string(&playbook.display().to_string()).unwrap_or_default(),
                params = Value::Object(params.clone()),
            );
            std::fs::write(&routes_path, text).map_err(|e| DrillError::Write {
                path: routes_path.display().to_string(),
                source: e,
            })?;
            let routes = crate::respond::routes::load(&routes_path)?;
            let responder = Arc::new(
                Responder::new(routes, store, settings.clone())
                    .with_connection(&ns.region, aws.clone(), caller.clone())
                    .await,
            );
            wait_for_message(aws, &wiring.queue_url).await?;
            let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
            let sink = seen.clone();
            let (_stop_tx, stop) = tokio::sync::watch::channel(false);
            let opts = WatchOptions {
                queue_url: wiring.queue_url.clone(),
                concurrency: 1,
                visibility: Duration::from_secs(60),
                wait: Duration::from_secs(1),
                until_idle: Some(Duration::from_secs(2)),
                grace: Duration::from_secs(30),
                retry_after: Duration::from_secs(5),
            };
            watch(
                responder,
                aws.sqs.clone(),
                opts,
                stop,
                move |h: &Handled| {
                    if let (Ok(v), Ok(mut s)) = (serde_json::to_value(h), sink.lock()) {
                        s.push(v);
                    }
                },
            )
            .await
            .map_err(|e| DrillError::Respond(format!("watching the alarm queue: {e}")))?;
            let finished_at = crate::time::now_rfc3339();
            let handled = seen.lock().map(|s| s.clone()).unwrap_or_default();
            let outcomes: Vec<&Value> = handled
                .iter()
                .flat_map(|h| h["outcomes"].as_array().into_iter().flatten())
                .collect();
            let Some(o) = outcomes.iter().find(|o| o["outcome"] == "responded") else {
                let why = outcomes
                    .first()
                    .map(|o| {
                        format!(
                            "{}: {}",
                            o["code"].as_str().unwrap_or("deferred"),
                            o["reason"].as_str().unwrap_or("")
                        )
                    })
                    .unwrap_or_else(|| {
                        "no alarm notification reached the queue within the wait".into()
                    });
                return Err(DrillError::Respond(why));
            };
            Ok(Response {
                incident: o["incident"].as_str().unwrap_or_default().to_string(),
                received_at: o["timing"]["received_at"].as_str().map(str::to_string),
                status: o["status"].as_str().unwrap_or("unknown").to_string(),
                finished_at,
            })
        }
        Via::Direct => {
            params.insert("function".into(), json!(function));
            let id = IncidentId::parse(&format!("DRILL-{}-{}", drill.name, ns.suffix))
                .map_err(DrillError::State)?;
            let details = json!({"drill": drill.name, "params": params, "playbook": {"name": drill.respond.playbook.name}});
            let session = Session::open_connected(
                store.as_ref(),
                &id,
                aws.clone(),
                caller.clone(),
                "firebreak drill",
                details,
            )?;
            let phases = [
                crate::playbook::Phase::Identify,
                crate::playbook::Phase::Contain,
            ];
            let request = RunRequest {
                playbook: &drill.respond.playbook,
                params: &params,
                phases: &phases,
                targets: Targets::AsGiven,
                concurrency: 1,
            };
            // Unattended, as the responder it rehearses (`plan_and_execute`).
            let (_, report) = session
                .plan_and_execute(&request, "firebreak drill")
                .await?;
            Ok(Response {
                incident: id.to_string(),
                received_at: None,
                status: serde_json::to_value(report.status())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                finished_at: crate::time::now_rfc3339(),
            })
        }
    }
}

/// Recovery as a responder does it after an attack: `firebreak recover
/// --incident ID --to-baseline`, through the engine. Plain `recover` only
/// undoes firebreak's containment and would leave the attacker's changes
/// (it refuses while indicators remain); recovery to the baseline taken
/// before the attack removes them (kept in the evidence first), restores
/// the known-good state and lifts the throttle and the quarantine last,
/// only once a fresh capture shows no drift.
///
/// Never an error: what went wrong is kept for the checks to explain
/// their failures, which read AWS back themselves.
pub async fn recover(
    store: &dyn StateStore,
    incident: &str,
    aws: &Aws,
    caller: &Caller,
    baselines: &Baselines,
    bucket: &str,
) -> Recovery {
    let mut functions = Vec::new();
    match to_baseline(
        store,
        incident,
        aws,
        caller,
        baselines,
        bucket,
        &mut functions,
    )
    .await
    {
        Ok(r) => Recovery::from_report(functions, &r),
        Err(e) => {
            tracing::warn!(error = %e, "drill recovery to the baseline failed");
            Recovery {
                functions,
                error: Some(format!("{e} (hint: {})", e.hint())),
                ..Default::default()
            }
        }
    }
}

async fn to_baseline(
    store: &dyn StateStore,
    incident: &str,
    aws: &Aws,
    caller: &Caller,
    baselines: &Baselines,
    bucket: &str,
    functions: &mut Vec<String>,
) -> Result<BaselineRecoverReport, DrillError> {
    let id = IncidentId::parse(incident).map_err(DrillError::State)?;
    let session = Session::open_connected(
        store,
        &id,
        aws.clone(),
        caller.clone(),
        "firebreak recover --to-baseline",
        json!({"to_baseline": true, "store": baselines.store.to_string(), "include_risky": false, "drill": true}),
    )?;
    // What the responder would recover: the functions the incident's
    // journal names. One the drill took no baseline of cannot be (the
    // engine would stop on it), so it is left out; the check on it says so.
    let baselined = baselines.functions();
    *functions = session
        .incident_functions()
        .into_iter()
        .filter(|f| baselined.contains(f))
        .collect();
    if functions.is_empty() {
        return Err(DrillError::Respond(format!(
            "the incident's journal names none of the baselined functions ({})",
            baselined.join(", ")
        )));
    }
    // Generated values are safe here: the lab's secrets are the drill's
    // own, and one containment already rotated is not rotated again (the
    // incident's rotation token).
    let plans = session
        .plan_recover_baseline(&baselines.store, functions, &baselines.key, true)
        .await?;
    Ok(session
        .execute_recover_baseline(
            &baselines.store,
            plans,
            &baselines.key,
            false,
            false,
            Some(bucket),
        )
        .await?)
}

/// Waits (bounded) until the alarm's notification is on the queue, so the
/// watcher's idle timeout starts counting only once there is work.
async fn wait_for_message(aws: &Aws, queue_url: &str) -> Result<(), DrillError> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = aws
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| {
                DrillError::Respond(format!(
                    "reading the alarm queue: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(e)
                ))
            })?;
        let n: u64 = out
            .attributes()
            .and_then(|m| m.get(&A::ApproximateNumberOfMessages))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if n > 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(DrillError::Respond("the alarm's notification did not reach the queue within 60 s (SetAlarmState → SNS → SQS)".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
