//! `evidence.snapshot_config`: the function's configuration and everything
//! around it, preserved before anything is changed (contract 9).
//!
//! Each document is one change (`evidence:NAME`, absent → stored), then the
//! manifest (`evidence:manifest`). A document already in the bucket is not
//! collected again: the first snapshot of an incident is the one that
//! matters, and a re-run after a crash only fills the gaps. The manifest
//! lists what S3 confirmed, with S3's write time as the collection time, so
//! writing it again yields the same bytes (a no-op). Its hash reaches the
//! audit trail as an `evidence.manifest` receipt.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::config_documents::{self, Document};
use super::{
    forget, manifest_journaled, prefix, put_observed, recall, remember, store, write_manifest,
    Listed, StoreArgs, BUCKET_PARAM, BUCKET_ROLE_PARAM, MANIFEST_ATTRIBUTE, RETENTION_DAYS_PARAM,
    RETENTION_MODE_PARAM,
};
use crate::action::lambda::function::{self, FunctionRef};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, Receipt, StepContext};
use crate::evidence::store::{sha256_parts, ForensicStore};
use crate::plan::Change;

pub struct SnapshotConfig;

#[derive(Debug, Deserialize)]
struct SnapshotConfigArgs {
    function: function::FunctionArg,
    #[serde(default)]
    include_env_values: bool,
    #[serde(flatten)]
    store: StoreArgs,
}

static SPEC: ActionSpec = ActionSpec {
    name: "evidence.snapshot_config",
    summary: "Preserve the function's configuration, resource policy, URL, event source mappings, concurrency, tags and execution role (trust policy and every policy document) in the forensic bucket: SHA-256 checked by S3, written once, listed in a manifest.",
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
            "include_env_values",
            ValueType::Boolean,
            "store environment variable values too (default false: names only). Values go to the bucket only, never to output, journal or audit",
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
        OutputDef::new("artifact_keys", ValueType::List, "the key of every document"),
    ],
    iam_actions: &[
        "lambda:GetFunctionConfiguration",
        "lambda:GetPolicy",
        "lambda:GetFunctionUrlConfig",
        "lambda:ListEventSourceMappings",
        "lambda:GetFunction",
        "lambda:GetFunctionConcurrency",
        "lambda:ListTags",
        "iam:GetRole",
        "iam:ListAttachedRolePolicies",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
        "s3:ListBucket",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetObject",
        "s3:PutObject",
        "s3:PutObjectRetention",
        "sts:AssumeRole",
    ],
};

const PREFIX: &str = "evidence:";
const MANIFEST: &str = MANIFEST_ATTRIBUTE;

fn source_of(name: &str) -> &'static str {
    match name {
        "function" => "lambda:GetFunctionConfiguration",
        "resource-policy" => "lambda:GetPolicy",
        "function-url" => "lambda:GetFunctionUrlConfig",
        "event-source-mappings" => "lambda:ListEventSourceMappings",
        "concurrency" => "lambda:GetFunction+GetFunctionConcurrency",
        "tags" => "lambda:ListTags",
        "execution-role" => {
            "iam:GetRole+ListAttachedRolePolicies+GetPolicyVersion+ListRolePolicies+GetRolePolicy"
        }
        _ => "unknown",
    }
}

fn key_of(prefix: &str, name: &str) -> String {
    format!("{prefix}/config/{name}.json")
}

#[async_trait]
impl Action for SnapshotConfig {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn owns_observed(&self, _cx: &StepContext<'_>, _observed: &Observation) -> bool {
        super::PLAN_READING_STANDS
    }

    fn undoable(&self) -> bool {
        false
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let args: SnapshotConfigArgs = cx.args_as(&SPEC)?;
        let f = args.function.resolve(cx)?;
        let store = store(cx, &args.store).await?;
        let prefix = prefix(cx, &f)?;
        let env_values = args.include_env_values;
        let docs: Vec<Document> = config_documents::collect(cx, &f, env_values).await?;
        let mut artifacts = Vec::new();
        for d in docs {
            let key = key_of(&prefix, d.name);
            let bytes = d.bytes();
            let (sha256, _) = sha256_parts(&bytes);
            let size = bytes.len();
            let stored = store.head(&key).await?;
            remember(cx, &key, bytes);
            // Only hashes and sizes: the observation is audited.
            artifacts.push(json!({
                "name": d.name,
                "key": key,
                "sha256": sha256,
                "size": size,
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
                                "artifacts": artifacts,
            }),
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let s = &observed.state;
        let artifacts = s["artifacts"].as_array().cloned().unwrap_or_default();
        let mut changes = Vec::new();
        let mut note = Vec::new();
        for a in &artifacts {
            let name = a["name"].as_str().unwrap_or_default();
            let key = a["key"].as_str().unwrap_or_default();
            match &a["stored"] {
                Value::Null => changes.push(Change::new(
                    &observed.target,
                    format!("{PREFIX}{name}"),
                    Value::Null,
                    json!({"key": key}),
                    format!(
                        "preserve {} as evidence ({} bytes, sha256 {})",
                        source_of(name),
                        a["size"],
                        a["sha256"].as_str().unwrap_or_default()
                    ),
                )),
                stored if stored["sha256"] != a["sha256"] => note.push(format!(
                    "{name}: the bucket keeps the first snapshot (sha256 {}); the state now differs (sha256 {})",
                    stored["sha256"].as_str().unwrap_or_default(),
                    a["sha256"].as_str().unwrap_or_default()
                )),
                _ => {}
            }
        }
        let recorded = manifest_journaled(cx, SPEC.name, &observed.target, |_| true);
        if !changes.is_empty() || !recorded {
            let mut keys: Vec<&str> = artifacts.iter().filter_map(|a| a["key"].as_str()).collect();
            keys.sort_unstable();
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
        outputs.insert(
            "artifact_keys".into(),
            json!(artifacts
                .iter()
                .map(|a| a["key"].clone())
                .collect::<Vec<_>>()),
        );
        Ok(Planned {
            changes,
            outputs,
            note: (!note.is_empty()).then(|| note.join("; ")),
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
        let args: SnapshotConfigArgs = cx.args_as(&SPEC)?;
        let store = store(cx, &args.store).await?;
        let f = function::from_arn(&change.target)?;
        if change.attribute == MANIFEST {
            return self.write_manifest(cx, &store, &f, change).await.map(Some);
        }
        let key = change.after["key"].as_str().unwrap_or_default();
        put_observed(&store, key, |k| recall(cx, k), self.observe(cx)).await?;
        // Written for good: the run need not hold it (it may hold
        // environment variable values).
        forget(cx, key);
        Ok(None)
    }
}

impl SnapshotConfig {
    async fn write_manifest(
        &self,
        cx: &StepContext<'_>,
        store: &ForensicStore,
        f: &FunctionRef,
        change: &Change,
    ) -> Result<Receipt, ActionError> {
        let prefix = prefix(cx, f)?;
        let listed: Vec<Listed> = change.after["artifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|key| {
                let name = key
                    .strip_prefix(&format!("{prefix}/config/"))
                    .and_then(|n| n.strip_suffix(".json"))
                    .unwrap_or(key);
                Listed {
                    name: format!("config/{name}.json"),
                    key: key.to_string(),
                    source: source_of(name).to_string(),
                    reported_sha256: None,
                }
            })
            .collect();
        write_manifest(cx, store, f, &listed).await
    }
}
