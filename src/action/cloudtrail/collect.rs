//! `cloudtrail.collect`: the management events about the function and its
//! execution role over a window, preserved in the forensic bucket.
//!
//! Two sources, each its own artifact so the manifest says where every
//! record came from: LookupEvents (`lookup-events.jsonl.gz`, the API's
//! events with the raw record verbatim) and, when `trail_bucket` is given,
//! the trail's own log files (`trail-records.jsonl.gz`, the matching
//! records as the trail wrote them). `collection.json` says what was asked
//! and which log files were read. All go under
//! `<incident>/<account>/<region>/<function>/cloudtrail/<window>/`, so a
//! different window is a different artifact, never a conflicting one.
//!
//! Everything is read before anything is written: a source that fails
//! midway fails the step with nothing stored, and the manifest lists only
//! what S3 confirmed. Artifacts are deterministic (records deduplicated,
//! sorted, gzip'd without a time stamp) and the window's end is fixed by
//! the first run (see `window`), so a re-run writes nothing new.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::sources::{self, bytes_for, forget, role_of, LOOKUP, TRAIL};
use super::window;
use crate::action::evidence::{
    self, check_bucket, manifest_journaled, prefix, put_observed, store, Listed, StoreArgs,
    BUCKET_PARAM, BUCKET_ROLE_PARAM, MANIFEST_ATTRIBUTE, RETENTION_DAYS_PARAM,
    RETENTION_MODE_PARAM,
};
use crate::action::lambda::function::{self, FunctionRef};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, Receipt, StepContext};
use crate::evidence::store::{sha256_parts, ForensicStore};
use crate::plan::Change;

pub struct Collect;

/// The step's arguments; `sources` and `window` read their own parts.
#[derive(Debug, Deserialize)]
pub struct CollectArgs {
    pub function: function::FunctionArg,
    #[serde(flatten)]
    pub store: StoreArgs,
    pub role: Option<crate::action::iam::role::RoleArg>,
    pub start: Option<String>,
    pub end: Option<String>,
    #[serde(default = "yes")]
    pub lookup_api: bool,
    pub trail_bucket: Option<String>,
    #[serde(default)]
    pub trail_prefix: String,
}

fn yes() -> bool {
    true
}

static SPEC: ActionSpec = ActionSpec {
    name: "cloudtrail.collect",
    summary: "Preserve the CloudTrail management events about the function and its execution role over a window (LookupEvents, and the trail's log files when a trail bucket is given) in the forensic bucket: SHA-256 checked by S3, written once, listed in the manifest.",
    mutating: true,
    stops_harm: false,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &[
        ParamDef::new("function", ValueType::String, "the function's name or ARN")
            .check(function::check_literal).parts(function::check_part),
        BUCKET_PARAM,
        BUCKET_ROLE_PARAM,
        ParamDef::new(
            "role",
            ValueType::String,
            "the role whose events to collect (name or ARN); default: the function's execution role (GetFunctionConfiguration). Give it when the function was deleted",
        )
        .optional()
        .check(crate::action::iam::role::check_literal)
        .parts(crate::action::iam::role::check_part),
        ParamDef::new(
            "start",
            ValueType::String,
            "window start, RFC 3339 (default: 24 h before the incident started)",
        )
        .optional()
        .check(window::check_time).parts(crate::action::logs::window::check_time_part),
        ParamDef::new(
            "end",
            ValueType::String,
            "window end, RFC 3339 (default: the time of the first collection, kept by re-runs)",
        )
        .optional()
        .check(window::check_time).parts(crate::action::logs::window::check_time_part),
        ParamDef::new(
            "lookup_api",
            ValueType::Boolean,
            "query the LookupEvents API (default true; the last 90 days only)",
        )
        .optional(),
        ParamDef::new(
            "trail_bucket",
            ValueType::String,
            "the S3 bucket a trail delivers to: its log files for the window are read too",
        )
        .optional()
        .check(check_bucket).parts(evidence::check_bucket_part),
        ParamDef::new(
            "trail_prefix",
            ValueType::String,
            "the trail's S3 key prefix, the part before `AWSLogs/` (default: none)",
        )
        .optional(),
        RETENTION_DAYS_PARAM,
        RETENTION_MODE_PARAM,
    ],
    outputs: &[
        OutputDef::new("bucket", ValueType::String, "the forensic bucket"),
        OutputDef::new(
            "manifest_key",
            ValueType::String,
            "the key of the manifest listing these artifacts",
        ),
        OutputDef::new(
            "artifact_keys",
            ValueType::List,
            "the key of every artifact (events, trail records, collection record)",
        ),
        OutputDef::new("window_start", ValueType::String, "the window's start (RFC 3339)"),
        OutputDef::new("window_end", ValueType::String, "the window's end (RFC 3339)"),
    ],
    iam_actions: &[
        "lambda:GetFunctionConfiguration",
        "cloudtrail:LookupEvents",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:GetBucketObjectLockConfiguration",
        "s3:PutObject",
        "s3:PutObjectRetention",
        "sts:AssumeRole",
    ],
};

const PREFIX: &str = "evidence:";
const MANIFEST: &str = MANIFEST_ATTRIBUTE;

fn source_of(cx: &StepContext<'_>, file: &str) -> String {
    match file {
        LOOKUP => "cloudtrail:LookupEvents".into(),
        TRAIL => {
            let bucket = cx
                .args
                .get("trail_bucket")
                .and_then(Value::as_str)
                .unwrap_or("?");
            match cx
                .args
                .get("trail_prefix")
                .and_then(Value::as_str)
                .map(|p| p.trim_matches('/'))
            {
                Some(p) if !p.is_empty() => format!("s3:GetObject s3://{bucket}/{p}/AWSLogs/"),
                _ => format!("s3:GetObject s3://{bucket}/AWSLogs/"),
            }
        }
        _ => "firebreak:cloudtrail.collect (the query and the log files read)".into(),
    }
}

fn note_for(s: &Value) -> String {
    let mut parts = vec![format!(
        "window {} → {}; role {}",
        s["window"]["start"].as_str().unwrap_or("?"),
        s["window"]["end"].as_str().unwrap_or("?"),
        s["role"].as_str().unwrap_or("?")
    )];
    let l = &s["sources"]["lookup_api"];
    if !l.is_null() {
        let queries: Vec<&str> = l["queries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(format!(
            "LookupEvents {}: {} event(s)",
            queries.join(", "),
            l["events"]
        ));
    }
    let t = &s["sources"]["trail"];
    if !t.is_null() {
        parts.push(format!(
            "trail {}: {} file(s), {} of {} record(s) match",
            t["location"].as_str().unwrap_or("?"),
            t["files"],
            t["matched"],
            t["records_read"]
        ));
    }
    parts.join("; ")
}

#[async_trait]
impl Action for Collect {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn undoable(&self) -> bool {
        false
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let args: CollectArgs = cx.args_as(&SPEC)?;
        let f = args.function.resolve(cx)?;
        let store = store(cx, &args.store).await?;
        let role = role_of(cx, &args, &f).await?;
        let window = window::resolve(cx, &args, SPEC.name, &f.arn)?;
        let prefix = prefix(cx, &f)?;
        let dir = format!("{prefix}/cloudtrail/{}", window.stamp());
        let collected = sources::collect(cx, &args, &f, &role, &window, &dir).await?;
        let mut artifacts = Vec::new();
        for (name, key, bytes) in &collected.artifacts {
            let (sha256, _) = sha256_parts(bytes);
            let stored = store.head(key).await?;
            artifacts.push(json!({
                "name": name,
                "key": key,
                "sha256": sha256,
                "size": bytes.len(),
                "stored": stored.map(|h| json!({"sha256": h.sha256, "size": h.size})),
            }));
        }
        Ok(Observation {
            target: f.arn,
            state: json!({
                "bucket": store.facts().bucket,
                "object_lock": store.facts().object_lock,
                "warning": store.facts().warning(),
                "writer": store.facts().writer,
                "manifest_key": format!("{prefix}/manifest.json"),
                "role": role.arn,
                "window": window.to_json(),
                "sources": collected.sources,
                "artifacts": artifacts,
            }),
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let s = &observed.state;
        let artifacts = s["artifacts"].as_array().cloned().unwrap_or_default();
        let mut changes = Vec::new();
        let mut note = vec![note_for(s)];
        for a in &artifacts {
            let name = a["name"].as_str().unwrap_or_default();
            let key = a["key"].as_str().unwrap_or_default();
            match &a["stored"] {
                Value::Null => changes.push(Change::new(
                    &observed.target,
                    format!("{PREFIX}{name}"),
                    Value::Null,
                    json!({"key": key, "window": s["window"]}),
                    format!(
                        "preserve {} as evidence ({} bytes, sha256 {})",
                        source_of(cx, name),
                        a["size"],
                        a["sha256"].as_str().unwrap_or_default()
                    ),
                )),
                stored if stored["sha256"] != a["sha256"] => note.push(format!(
                    "{name}: the bucket keeps the first collection (sha256 {}); the sources now give sha256 {} (late-delivered events)",
                    stored["sha256"].as_str().unwrap_or_default(),
                    a["sha256"].as_str().unwrap_or_default()
                )),
                _ => {}
            }
        }
        let mut keys: Vec<&str> = artifacts.iter().filter_map(|a| a["key"].as_str()).collect();
        keys.sort_unstable();
        let keys = json!(keys);
        if !changes.is_empty()
            || !manifest_journaled(cx, SPEC.name, &observed.target, |a| a["artifacts"] == keys)
        {
            changes.push(Change::new(
                &observed.target,
                MANIFEST,
                Value::Null,
                json!({"bucket": s["bucket"], "artifacts": keys}),
                "list every artifact with its size, SHA-256, source and collection time; the manifest's hash goes into the audit trail",
            ));
        }
        if let Some(w) = s["warning"].as_str() {
            note.push(w.to_string());
        }
        if let Some(w) = s["writer"].as_str() {
            note.push(format!("evidence is written as {w}"));
        }
        let mut outputs = Map::new();
        outputs.insert("bucket".into(), s["bucket"].clone());
        outputs.insert("manifest_key".into(), s["manifest_key"].clone());
        outputs.insert("artifact_keys".into(), keys);
        outputs.insert("window_start".into(), s["window"]["start"].clone());
        outputs.insert("window_end".into(), s["window"]["end"].clone());
        Ok(Planned {
            changes,
            outputs,
            note: Some(note.join("; ")),
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
        let args: CollectArgs = cx.args_as(&SPEC)?;
        let store = store(cx, &args.store).await?;
        let f = function::from_arn(&change.target)?;
        if change.attribute == MANIFEST {
            return write_manifest(cx, &store, &f, change).await.map(Some);
        }
        let key = change.after["key"].as_str().unwrap_or_default();
        // A saved plan applied by a new process collects again (the
        // journal's intent fixes the same window).
        put_observed(&store, key, |k| bytes_for(cx, k), self.observe(cx)).await?;
        Ok(None)
    }
}

async fn write_manifest(
    cx: &StepContext<'_>,
    store: &ForensicStore,
    f: &FunctionRef,
    change: &Change,
) -> Result<Receipt, ActionError> {
    let prefix = prefix(cx, f)?;
    let keys: Vec<&str> = change.after["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let listed: Vec<Listed> = keys
        .iter()
        .map(|key| Listed {
            name: key
                .strip_prefix(&format!("{prefix}/"))
                .unwrap_or(key)
                .to_string(),
            key: (*key).to_string(),
            source: source_of(cx, key.rsplit('/').next().unwrap_or_default()),
            reported_sha256: None,
        })
        .collect();
    let receipt = evidence::write_manifest(cx, store, f, &listed).await?;
    forget(cx, &keys);
    Ok(receipt)
}
