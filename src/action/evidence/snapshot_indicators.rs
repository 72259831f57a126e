//! `evidence.snapshot_indicators`: the findings of identify
//! (`indicators/findings.json`) and one record per suspicious indicator
//! (`indicators/NN-KIND.json`: the statement, layer ARN, version ARN and
//! code hash, URL configuration, mapping UUID and queue, variable names
//! and endpoint, key id, rogue function and rule) written to the forensic
//! bucket, then listed in the manifest.
//!
//! It declares itself harm-stopping so that the runner's first pass, which
//! follows the playbook's order, writes these records *before* the contain
//! steps remove what they describe (issue 13: every attacker artifact is
//! in the bucket before anything is removed). Only the throttle and the
//! role's deny, which remove nothing, go ahead of it
//! (`planning::applies_early`). Like
//! every evidence step, a document already stored is never written again.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    forget, manifest_journaled, prefix, put_observed, recall, remember, store, write_manifest,
    Listed, StoreArgs, BUCKET_PARAM, BUCKET_ROLE_PARAM, MANIFEST_ATTRIBUTE, RETENTION_DAYS_PARAM,
    RETENTION_MODE_PARAM,
};
use crate::action::lambda::function;
use crate::action::lambda::indicators::{self, Assessment, IndicatorArgs, PARAMS};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, Receipt, StepContext};
use crate::evidence::store::sha256_parts;
use crate::plan::Change;

pub struct SnapshotIndicators;

#[derive(Debug, Deserialize)]
struct Args {
    #[serde(flatten)]
    indicators: IndicatorArgs,
    #[serde(flatten)]
    store: StoreArgs,
}

static ALL_PARAMS: [ParamDef; 11] = [
    PARAMS[0],
    PARAMS[1],
    PARAMS[2],
    PARAMS[3],
    PARAMS[4],
    PARAMS[5],
    PARAMS[6],
    BUCKET_PARAM,
    BUCKET_ROLE_PARAM,
    RETENTION_DAYS_PARAM,
    RETENTION_MODE_PARAM,
];

static SPEC: ActionSpec = ActionSpec {
    name: "evidence.snapshot_indicators",
    summary: "Preserve the indicators of compromise (findings.json) and every attacker artifact they name in the forensic bucket, before containment removes them.",
    mutating: true,
    stops_harm: true,
    harm_order: HarmOrder::Preserve,
    own_state: false,
    params: &ALL_PARAMS,
    outputs: &[
        OutputDef::new("bucket", ValueType::String, "the forensic bucket"),
        OutputDef::new("findings_key", ValueType::String, "the key of findings.json"),
        OutputDef::new("artifact_keys", ValueType::List, "the key of every document"),
    ],
    iam_actions: crate::action::lambda::indicators::indicator_iam_actions!(
        "s3:ListBucket",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetObject",
        "s3:PutObject",
        "s3:PutObjectRetention",
        "sts:AssumeRole",
    ),

};

const PREFIX: &str = "evidence:";

/// The documents of an assessment: (name under `indicators/`, bytes).
/// `findings` comes last: once it is stored, every record before it is.
pub fn documents(a: &Assessment) -> Vec<(String, Vec<u8>)> {
    let pretty = |v: &Value| serde_json::to_vec_pretty(v).unwrap_or_default();
    let mut out = Vec::new();
    for (n, i) in a.suspicious().enumerate() {
        out.push((
            format!("{:02}-{}", n + 1, i.kind.as_str()),
            pretty(&serde_json::to_value(i).unwrap_or(Value::Null)),
        ));
    }
    out.push((
        "findings".to_string(),
        pretty(&serde_json::to_value(a).unwrap_or(Value::Null)),
    ));
    out
}

fn key_of(prefix: &str, name: &str) -> String {
    format!("{prefix}/indicators/{name}.json")
}

#[async_trait]
impl Action for SnapshotIndicators {
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
        let args: Args = cx.args_as(&SPEC)?;
        let f = args.indicators.function.resolve(cx)?;
        // Before the write, only whether each object is stored is read
        // afresh: the documents are what the plan saw.
        let a = indicators::assess_as_planned(cx, &args.indicators).await?;
        let store = store(cx, &args.store).await?;
        let prefix = prefix(cx, &f)?;
        let mut artifacts = Vec::new();
        for (name, bytes) in documents(&a) {
            let key = key_of(&prefix, &name);
            let (sha256, _) = sha256_parts(&bytes);
            let size = bytes.len();
            let stored = store.head(&key).await?;
            remember(cx, &key, bytes);
            artifacts.push(json!({
                "name": name,
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
                "warning": store.facts().warning(),
                "findings_key": key_of(&prefix, "findings"),
                "suspicious": a.suspicious().count(),
                "artifacts": artifacts,
            }),
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let s = &observed.state;
        let artifacts = s["artifacts"].as_array().cloned().unwrap_or_default();
        let mut changes = Vec::new();
        let mut note = Vec::new();
        // findings.json is written last: once it is stored, this
        // incident's first snapshot is complete. Later ones are the state
        // after containment and would say less; the bucket keeps the first.
        let first_kept = artifacts
            .iter()
            .any(|a| a["name"] == "findings" && !a["stored"].is_null());
        for a in &artifacts {
            let name = a["name"].as_str().unwrap_or_default();
            let key = a["key"].as_str().unwrap_or_default();
            if a["stored"].is_null() && !first_kept {
                changes.push(Change::new(
                    &observed.target,
                    format!("{PREFIX}indicators/{name}"),
                    Value::Null,
                    json!({"key": key}),
                    format!(
                        "preserve {} before containment removes it ({} bytes, sha256 {})",
                        if name == "findings" {
                            "the findings of identify".to_string()
                        } else {
                            format!("the attacker artifact {name}")
                        },
                        a["size"],
                        a["sha256"].as_str().unwrap_or_default()
                    ),
                ));
            }
        }
        if first_kept {
            note.push(
                "the bucket keeps this incident's first findings; later ones are in the trail"
                    .to_string(),
            );
        }
        let recorded = manifest_journaled(cx, SPEC.name, &observed.target, |_| true);
        if !changes.is_empty() || !recorded && !first_kept {
            let mut keys: Vec<&str> = artifacts.iter().filter_map(|a| a["key"].as_str()).collect();
            keys.sort_unstable();
            changes.push(Change::new(
                &observed.target,
                MANIFEST_ATTRIBUTE,
                Value::Null,
                json!({"bucket": s["bucket"], "artifacts": keys}),
                "list every record with its size, SHA-256 and collection time; the manifest's hash goes into the audit trail",
            ));
        }
        if let Some(w) = s["warning"].as_str() {
            note.push(w.to_string());
        }
        let mut outputs = Map::new();
        outputs.insert("bucket".into(), s["bucket"].clone());
        outputs.insert("findings_key".into(), s["findings_key"].clone());
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
        let args: Args = cx.args_as(&SPEC)?;
        let store = store(cx, &args.store).await?;
        let f = function::from_arn(&change.target)?;
        if change.attribute == MANIFEST_ATTRIBUTE {
            let prefix = prefix(cx, &f)?;
            let listed: Vec<Listed> = change.after["artifacts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|key| Listed {
                    name: key
                        .strip_prefix(&format!("{prefix}/"))
                        .unwrap_or(key)
                        .to_string(),
                    key: key.to_string(),
                    source: "firebreak indicators of compromise (lambda.indicators)".into(),
                    reported_sha256: None,
                })
                .collect();
            return write_manifest(cx, &store, &f, &listed).await.map(Some);
        }
        let key = change.after["key"].as_str().unwrap_or_default();
        put_observed(&store, key, |k| recall(cx, k), self.observe(cx)).await?;
        forget(cx, key);
        Ok(None)
    }
}
