//! `logs.snapshot`: a log group over a time window, streamed page by page
//! into gzip JSON-lines parts in the forensic bucket, then a summary, then
//! the target's manifest.
//!
//! Two changes: `evidence:logs` (the parts and the summary; absent →
//! stored) and `evidence:manifest`. A snapshot whose summary is in the
//! bucket is complete and never collected again; one cut short (a failed
//! page, a crash) has no summary, is listed nowhere, and the next run
//! streams the same window again: parts already stored are no-ops
//! (identical bytes under the same key), the rest are written, then the
//! summary.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::stream::{self, Request, StreamError};
use super::summary::{Summary, MAX_SUMMARY_BYTES};
use super::window::{self, Window};
use crate::action::evidence::{
    evidence_err, manifest_journaled, prefix, store, StoreArgs, BUCKET_PARAM, BUCKET_ROLE_PARAM,
    MANIFEST_ATTRIBUTE, RETENTION_DAYS_PARAM, RETENTION_MODE_PARAM,
};
use crate::action::lambda::function::{self, FunctionRef};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, Receipt, StepContext};
use crate::aws::call_path::Family;
use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};
use crate::evidence::manifest::Manifest;
use crate::evidence::store::{artifact_key, ForensicStore, Stored};
use crate::plan::Change;
use crate::state::AuditEvent;

pub struct Snapshot;

#[derive(Debug, Deserialize)]
struct SnapshotArgs {
    function: function::FunctionArg,
    log_group: Option<String>,
    #[serde(flatten)]
    store: StoreArgs,
    start: Option<String>,
    end: Option<String>,
    hours_before: Option<i64>,
    filter: Option<String>,
    /// Superseded: read only to warn that it is ignored.
    requests_per_second: Option<i64>,
    part_size_mib: Option<i64>,
}

const DEFAULT_PART_MIB: i64 = 8;

static SPEC: ActionSpec = ActionSpec {
    name: "logs.snapshot",
    summary: "Preserve a CloudWatch Logs group over a time window (default: 24 h before the incident until now) in the forensic bucket: streamed page by page into gzip JSON-lines parts with bounded memory, paced to the FilterLogEvents quota, each part SHA-256 checked by S3 and written once, a summary written last, listed in the manifest.",
    mutating: true,
    stops_harm: false,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &[
        ParamDef::new("function", ValueType::String, "the function's name or ARN (evidence goes under its prefix)")
            .check(function::check_literal).parts(function::check_part),
        ParamDef::new("log_group", ValueType::String, "the log group (default /aws/lambda/<function name>)")
            .optional()
            .check(window::check_log_group).parts(window::check_log_group_part),
        BUCKET_PARAM,
        BUCKET_ROLE_PARAM,
        ParamDef::new("start", ValueType::String, "the window's start, RFC 3339 (default: `hours_before` the incident's start)")
            .optional()
            .check(window::check_time).parts(window::check_time_part),
        ParamDef::new("end", ValueType::String, "the window's end, RFC 3339 (default: now, fixed the first time the step runs in this incident)")
            .optional()
            .check(window::check_time).parts(window::check_time_part),
        ParamDef::new("hours_before", ValueType::Integer, "hours before the incident's start the window opens (default 24)")
            .optional()
            .range(1, 24 * 90),
        ParamDef::new("filter", ValueType::String, "keep only events whose message contains this text (checked by firebreak; also sent as a filter pattern)")
            .optional(),
        ParamDef::new("requests_per_second", ValueType::Integer, "superseded and ignored: FilterLogEvents is paced per account and region for the whole run (`--quotas`, family `logs_filter`, default 5/s)")
            .optional()
            .range(1, 50),
        ParamDef::new("part_size_mib", ValueType::Integer, "compressed size after which a part is closed (default 8)")
            .optional()
            .range(1, 32),
        RETENTION_DAYS_PARAM,
        RETENTION_MODE_PARAM,
    ],
    outputs: &[
        OutputDef::new("bucket", ValueType::String, "the forensic bucket"),
        OutputDef::new("manifest_key", ValueType::String, "the key of the target's first manifest"),
        OutputDef::new("summary_key", ValueType::String, "the key of the snapshot's summary (parts, hashes, event count, window)"),
        OutputDef::new("key_prefix", ValueType::String, "the key prefix the parts are written under"),
        OutputDef::new("log_group", ValueType::String, "the log group collected"),
        OutputDef::new("start", ValueType::String, "the window's start (RFC 3339)"),
        OutputDef::new("end", ValueType::String, "the window's end (RFC 3339)"),
    ],
    iam_actions: &[
        "logs:DescribeLogGroups",
        "logs:FilterLogEvents",
        "s3:ListBucket",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetObject",
        "s3:PutObject",
        "s3:PutObjectRetention",
        "sts:AssumeRole",
    ],
};

const LOGS: &str = "evidence:logs";
const MANIFEST: &str = MANIFEST_ATTRIBUTE;
const SOURCE: &str = "logs:FilterLogEvents";

/// Window ends fixed in this process, so that the re-observation right
/// before apply plans the same window as the plan did.
#[derive(Default)]
struct FixedEnds(Mutex<HashMap<String, i64>>);

/// The end this step fixed for `target` earlier: in this incident's journal
/// (an earlier run, perhaps killed midway), else earlier in this process.
fn fixed_end(cx: &StepContext<'_>, target: &str) -> Option<i64> {
    let journaled = cx.history.iter().find_map(|r| {
        (r.action == SPEC.name
            && r.step == cx.step_id
            && r.change.target == target
            && r.change.attribute == LOGS)
            .then(|| r.change.after["end"].as_str().and_then(window::parse_ms))
            .flatten()
    });
    journaled.or_else(|| {
        let ends = cx.run.slot::<FixedEnds>();
        let m = ends.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&memo_key(cx, target)).copied()
    })
}

fn memo_key(cx: &StepContext<'_>, target: &str) -> String {
    format!("{}\n{}\n{target}", cx.incident_id, cx.step_id)
}

fn window_for(
    cx: &StepContext<'_>,
    args: &SnapshotArgs,
    target: &str,
) -> Result<Window, ActionError> {
    let w = window::resolve(
        args.start.as_deref(),
        args.end.as_deref(),
        args.hours_before,
        cx.incident_started_at,
        fixed_end(cx, target),
        chrono::Utc::now().timestamp_millis(),
    )
    .map_err(|e| {
        ActionError::input(
            format!("step `{}`: {e}", cx.step_id),
            "fix `start`, `end` or `hours_before` in the step's `with:`",
        )
    })?;
    if args.end.is_none() {
        let ends = cx.run.slot::<FixedEnds>();
        let mut m = ends.0.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(memo_key(cx, target)).or_insert(w.end_ms);
    }
    Ok(w)
}

/// `<prefix>/logs/<group>/<start>_<end>[-filter-<hash>]`: a filtered
/// snapshot of the same window is different evidence and gets its own place.
fn dir_for(
    prefix: &str,
    group: &str,
    w: &Window,
    filter: Option<&str>,
) -> Result<String, ActionError> {
    let mut when = w.key_part();
    if let Some(f) = filter {
        let h = hex::encode(Sha256::digest(f.as_bytes()));
        when.push_str(&format!("-filter-{}", &h[..12]));
    }
    let tail = artifact_key(&[&window::group_key_part(group), &when]).map_err(evidence_err)?;
    Ok(format!("{prefix}/logs/{tail}"))
}

/// A missing log group is the commonest mistake (a function never invoked
/// has none): say so before anything is planned.
async fn ensure_group(cx: &StepContext<'_>, group: &str) -> Result<(), ActionError> {
    let mut token: Option<String> = None;
    // Names sharing the prefix come back too; 50 a page, a few pages at most.
    for _ in 0..20 {
        let out = cx
            .aws
            .logs
            .describe_log_groups()
            .log_group_name_prefix(group)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                classify(
                    "DescribeLogGroups",
                    "logs:DescribeLogGroups",
                    format!("log group {group}"),
                    e,
                )
            })?;
        if out
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(group))
        {
            return Ok(());
        }
        match out.next_token() {
            Some(t) if token.as_deref() != Some(t) => token = Some(t.to_string()),
            _ => break,
        }
    }
    Err(AwsError::new(
        "DescribeLogGroups",
        format!("log group {group}"),
        AwsErrorKind::NotFound,
        format!("log group {group} does not exist in account {} region {}", cx.caller.account, cx.aws.region),
        "a function that never ran has no log group; check `log_group` (default /aws/lambda/<function name>) and --region; list groups with `aws logs describe-log-groups --log-group-name-prefix /aws/lambda/`",
    )
    .into())
}

#[async_trait]
impl Action for Snapshot {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn undoable(&self) -> bool {
        false
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let args: SnapshotArgs = cx.args_as(&SPEC)?;
        let f = args.function.resolve(cx)?;
        let group = args
            .log_group
            .clone()
            .unwrap_or_else(|| format!("/aws/lambda/{}", f.name));
        let store = store(cx, &args.store).await?;
        ensure_group(cx, &group).await?;
        let w = window_for(cx, &args, &f.arn)?;
        let filter = args.filter.as_deref().filter(|s| !s.is_empty());
        let prefix = prefix(cx, &f)?;
        let dir = dir_for(&prefix, &group, &w, filter)?;
        let summary_key = format!("{dir}/summary.json");
        let summary = store.head(&summary_key).await?;
        Ok(Observation {
            target: f.arn,
            state: json!({
                "bucket": store.facts().bucket,
                "object_lock": store.facts().object_lock,
                "warning": store.facts().warning(),
                "writer": store.facts().writer,
                "log_group": group,
                "start": w.start(),
                "end": w.end(),
                "filter": filter,
                "key_prefix": dir,
                "summary_key": summary_key,
                "summary": summary.map(|h| json!({"sha256": h.sha256, "size": h.size})),
                "manifest_key": format!("{prefix}/manifest.json"),
            }),
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let s = &observed.state;
        let mut changes = Vec::new();
        let mut notes = Vec::new();
        if s["summary"].is_null() {
            // One rate for the whole run and account, whatever the step says.
            let rps = cx.aws.call_path.quotas().get(Family::LogsFilter).rate;
            let filter = match s["filter"].as_str() {
                Some(f) => format!(", only events containing {f:?}"),
                None => String::new(),
            };
            changes.push(Change::new(
                &observed.target,
                LOGS,
                Value::Null,
                json!({
                    "log_group": s["log_group"],
                    "start": s["start"],
                    "end": s["end"],
                    "filter": s["filter"],
                    "key_prefix": s["key_prefix"],
                    "summary_key": s["summary_key"],
                }),
                format!(
                    "preserve log group {} from {} to {}{filter} (logs:FilterLogEvents at most {rps} requests/s) as gzip JSON-lines parts under s3://{}/{}/, then summary.json",
                    s["log_group"].as_str().unwrap_or_default(),
                    s["start"].as_str().unwrap_or_default(),
                    s["end"].as_str().unwrap_or_default(),
                    s["bucket"].as_str().unwrap_or_default(),
                    s["key_prefix"].as_str().unwrap_or_default(),
                ),
            ));
        }
        let manifest_after = json!({"bucket": s["bucket"], "summary_key": s["summary_key"]});
        if !changes.is_empty()
            || !manifest_journaled(cx, SPEC.name, &observed.target, |a| *a == manifest_after)
        {
            changes.push(Change::new(
                &observed.target,
                MANIFEST,
                Value::Null,
                manifest_after,
                "list every part and the summary with size, SHA-256 (confirmed by S3), source and collection time; the manifest's hash goes into the audit trail",
            ));
        }
        if let Some(w) = s["warning"].as_str() {
            notes.push(w.to_string());
        }
        if let Some(w) = s["writer"].as_str() {
            notes.push(format!("evidence is written as {w}"));
        }
        let mut outputs = Map::new();
        for name in [
            "bucket",
            "manifest_key",
            "summary_key",
            "key_prefix",
            "log_group",
            "start",
            "end",
        ] {
            outputs.insert(name.into(), s[name].clone());
        }
        Ok(Planned {
            changes,
            outputs,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        self.apply_with_receipt(cx, change).await.map(|_| ())
    }

    async fn apply_with_receipt(
        &self,
        cx: &StepContext<'_>,
        change: &Change,
    ) -> Result<Option<Receipt>, ActionError> {
        let args: SnapshotArgs = cx.args_as(&SPEC)?;
        let store = store(cx, &args.store).await?;
        let f = function::from_arn(&change.target)?;
        match change.attribute.as_str() {
            LOGS => self.collect(cx, &args, &store, change).await.map(|()| None),
            MANIFEST => self.write_manifest(cx, &store, &f, change).await.map(Some),
            other => Err(ActionError::input(
                format!("logs.snapshot cannot apply `{other}`"),
                "the journal or saved plan was edited; plan again",
            )),
        }
    }
}

fn after_str<'a>(change: &'a Change, name: &str) -> Result<&'a str, ActionError> {
    change.after[name].as_str().ok_or_else(|| {
        ActionError::input(
            format!("the planned change has no `{name}`"),
            "the journal or saved plan was edited; plan again",
        )
    })
}

impl Snapshot {
    async fn collect(
        &self,
        cx: &StepContext<'_>,
        args: &SnapshotArgs,
        store: &ForensicStore,
        change: &Change,
    ) -> Result<(), ActionError> {
        // Everything from the planned change, so what is written is what the
        // plan showed (a saved plan applied later included).
        let group = after_str(change, "log_group")?;
        let dir = after_str(change, "key_prefix")?;
        let summary_key = after_str(change, "summary_key")?;
        let bad_time = |n: &str| {
            ActionError::input(
                format!("the planned change's `{n}` is not an RFC 3339 time"),
                "the journal or saved plan was edited; plan again",
            )
        };
        let window = Window {
            start_ms: window::parse_ms(after_str(change, "start")?)
                .ok_or_else(|| bad_time("start"))?,
            end_ms: window::parse_ms(after_str(change, "end")?).ok_or_else(|| bad_time("end"))?,
        };
        let filter = change.after["filter"].as_str();
        if args.requests_per_second.is_some() {
            tracing::warn!(
                step = cx.step_id,
                "logs.snapshot: requests_per_second is ignored; FilterLogEvents is paced by the run's quotas (--quotas, family logs_filter)"
            );
        }
        let part_mib = args.part_size_mib.unwrap_or(DEFAULT_PART_MIB);
        let req = Request {
            log_group: group,
            window,
            filter,
            part_limit: usize::try_from(part_mib).unwrap_or(8) << 20,
            dir,
            step_id: cx.step_id,
        };
        let streamed = stream::stream(&cx.aws.logs, store, &req)
            .await
            .map_err(|e| match e {
                StreamError::Aws(a) => a.into(),
                StreamError::Evidence(ev) => evidence_err(ev),
                StreamError::Encode(io) => ActionError::input(
                    format!("compressing log events of {group} failed: {io}"),
                    "re-run: the snapshot resumes, parts already stored are kept",
                ),
            })?;
        tracing::info!(
            log_group = group,
            events = streamed.events,
            parts = streamed.parts.len(),
            pages = streamed.pages,
            already_stored = streamed.already_stored,
            "log snapshot streamed"
        );
        let summary = Summary::new(
            &cx.caller.account,
            &cx.aws.region,
            group,
            window,
            filter,
            &streamed,
        );
        store
            .put(summary_key, summary.to_bytes())
            .await
            .map_err(evidence_err)?;
        Ok(())
    }

    async fn write_manifest(
        &self,
        cx: &StepContext<'_>,
        store: &ForensicStore,
        f: &FunctionRef,
        change: &Change,
    ) -> Result<Receipt, ActionError> {
        let summary_key = after_str(change, "summary_key")?;
        let bucket = &store.facts().bucket;
        let incomplete = |why: String| {
            ActionError::input(
                format!("log snapshot s3://{bucket}/{summary_key} {why}"),
                "re-run: the snapshot is streamed again and completed; only complete snapshots are listed",
            )
        };
        let summary_head = store
            .head(summary_key)
            .await?
            .ok_or_else(|| incomplete("is incomplete (no summary)".into()))?;
        let bytes = store.get_small(summary_key, MAX_SUMMARY_BYTES).await?;
        let summary = Summary::parse(&bytes)
            .map_err(|e| incomplete(format!("is not a valid summary: {e}")))?;
        let mut m = Manifest::latest_or_new(
            store,
            cx.incident_id,
            &cx.caller.account,
            &cx.aws.region,
            &f.name,
        )
        .await
        .map_err(evidence_err)?;
        let prefix = prefix(cx, f)?;
        let name_of = |key: &str| {
            key.strip_prefix(&format!("{prefix}/"))
                .unwrap_or(key)
                .to_string()
        };
        for part in &summary.parts {
            let head = store
                .head(&part.key)
                .await?
                .ok_or_else(|| incomplete(format!("lists {} which is missing", part.key)))?;
            if head.sha256 != part.sha256 || head.size != part.size {
                return Err(incomplete(format!(
                    "lists {} with sha256 {} ({} bytes) but S3 holds sha256 {} ({} bytes)",
                    part.key, part.sha256, part.size, head.sha256, head.size
                )));
            }
            let stored = Stored {
                key: part.key.clone(),
                size: head.size,
                sha256: head.sha256,
                written: false,
            };
            m.add(
                &name_of(&part.key),
                &stored,
                SOURCE,
                &head.written_at,
                &cx.caller.arn,
            );
        }
        let stored = Stored {
            key: summary_key.to_string(),
            size: summary_head.size,
            sha256: summary_head.sha256,
            written: false,
        };
        m.add(
            &name_of(summary_key),
            &stored,
            "firebreak:logs.snapshot (summary of logs:FilterLogEvents)",
            &summary_head.written_at,
            &cx.caller.arn,
        );
        let record = m.write(store).await.map_err(evidence_err)?;
        Ok(Receipt {
            event: AuditEvent::EvidenceManifest,
            data: serde_json::to_value(&record).unwrap_or(Value::Null),
        })
    }
}
