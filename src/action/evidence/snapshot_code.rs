//! `evidence.snapshot_code`: the code the function runs and could run.
//!
//! Every distinct package (`$LATEST`, each published version, each layer)
//! is downloaded from its presigned URL and stored once, named by the
//! `CodeSha256` Lambda reports (`code/packages/<hex>.zip`), so a version
//! that shares `$LATEST`'s code costs nothing more. `code/inventory.json`
//! maps versions, aliases (with traffic weights) and layers to those
//! packages. The manifest records Lambda's hash beside ours, and
//! `evidence verify` flags any package whose bytes differ from it.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::code_inventory::{self, Source};
use super::{
    evidence_err, forget, manifest_journaled, prefix, put_observed, recall, remember, store,
    write_manifest, Listed, StoreArgs, BUCKET_PARAM, BUCKET_ROLE_PARAM, MANIFEST_ATTRIBUTE,
    RETENTION_DAYS_PARAM, RETENTION_MODE_PARAM,
};
use crate::action::lambda::function::{self, FunctionRef};
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{Action, ActionError, Observation, Planned, Receipt, StepContext};
use crate::aws::{AwsError, AwsErrorKind};
use crate::evidence::download::{fetch_to_file, DownloadError, Fetched};
use crate::evidence::store::{sha256_parts, ForensicStore};
use crate::plan::Change;

pub struct SnapshotCode;

#[derive(Debug, Deserialize)]
struct SnapshotCodeArgs {
    function: function::FunctionArg,
    #[serde(flatten)]
    store: StoreArgs,
}

static SPEC: ActionSpec = ActionSpec {
    name: "evidence.snapshot_code",
    summary: "Preserve the code the function runs and could run: $LATEST, every published version, every layer (each package once, named by Lambda's CodeSha256 and checked against ours), with an inventory of versions, aliases and layers.",
    mutating: true,
    stops_harm: false,
    harm_order: HarmOrder::Access,
    own_state: false,
    params: &[
        ParamDef::new("function", ValueType::String, "the function's name or ARN")
            .check(function::check_literal).parts(function::check_part),
        BUCKET_PARAM,
        BUCKET_ROLE_PARAM,
        RETENTION_DAYS_PARAM,
        RETENTION_MODE_PARAM,
    ],
    outputs: &[
        OutputDef::new("bucket", ValueType::String, "the forensic bucket"),
        OutputDef::new(
            "manifest_key",
            ValueType::String,
            "the key of the target's first manifest",
        ),
        OutputDef::new(
            "inventory_key",
            ValueType::String,
            "the key of code/inventory.json",
        ),
        OutputDef::new(
            "package_keys",
            ValueType::List,
            "the key of every package (function versions and layers)",
        ),
        OutputDef::new(
            "code_sha256",
            ValueType::String,
            "$LATEST's CodeSha256 as Lambda reports it (hex); empty for a container image",
        ),
    ],
    iam_actions: &[
        "lambda:GetFunction",
        "lambda:ListVersionsByFunction",
        "lambda:ListAliases",
        "lambda:GetLayerVersion",
        "s3:ListBucket",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetObject",
        "s3:PutObject",
        "s3:PutObjectRetention",
        "sts:AssumeRole",
    ],
};

const PACKAGE: &str = "evidence:package:";
const INVENTORY: &str = "evidence:inventory";
const MANIFEST: &str = MANIFEST_ATTRIBUTE;
/// Presigned URLs live about ten minutes; a download that outlives one (or
/// a URL that expired between the call and the download) gets a new one.
const URL_ATTEMPTS: u32 = 3;

fn inventory_key(prefix: &str) -> String {
    format!("{prefix}/code/inventory.json")
}

fn package_key(prefix: &str, hex: &str) -> String {
    format!("{prefix}/code/packages/{hex}.zip")
}

/// Downloads through `next_url`, asking for a new URL whenever the last one
/// was refused as expired, at most `URL_ATTEMPTS` times.
pub async fn fetch_with_fresh_urls<F, Fut>(
    mut next_url: F,
    dest: &std::path::Path,
) -> Result<Fetched, ActionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, ActionError>>,
{
    let mut attempt = 1;
    loop {
        let url = next_url().await?;
        match fetch_to_file(&url, dest).await {
            Ok(f) => return Ok(f),
            Err(DownloadError::Expired { .. }) if attempt < URL_ATTEMPTS => attempt += 1,
            Err(e) => return Err(download_error(e, attempt)),
        }
    }
}

fn download_error(e: DownloadError, attempts: u32) -> ActionError {
    let (kind, hint) = match &e {
        DownloadError::Expired { .. } => (
            AwsErrorKind::AccessDenied,
            format!("{attempts} fresh URLs were refused: check the machine's clock (presigned URLs are time-bound) and that nothing between here and S3 rewrites requests, then re-run"),
        ),
        DownloadError::Status { .. } | DownloadError::Transport { .. } => (
            AwsErrorKind::EndpointUnreachable,
            "check network access to S3 from this machine (packages are downloaded from Lambda's S3 bucket), then re-run: stored packages are not fetched again".to_string(),
        ),
        DownloadError::TooLarge { .. } => (
            AwsErrorKind::InvalidRequest,
            "this is larger than any Lambda package: collect it by hand and investigate the URL's origin".to_string(),
        ),
        DownloadError::Io { .. } => (
            AwsErrorKind::Other,
            "set TMPDIR to a writable directory with room for the package, then re-run".to_string(),
        ),
    };
    AwsError::new(
        "GetFunction (code download)",
        "code package",
        kind,
        e.to_string(),
        hint,
    )
    .into()
}

#[async_trait]
impl Action for SnapshotCode {
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
        let args: SnapshotCodeArgs = cx.args_as(&SPEC)?;
        let f = args.function.resolve(cx)?;
        let store = store(cx, &args.store).await?;
        let prefix = prefix(cx, &f)?;
        let inv = code_inventory::collect(cx, &f).await?;

        let mut doc = serde_json::to_vec_pretty(&inv.document).unwrap_or_default();
        doc.push(b'\n');
        let inv_key = inventory_key(&prefix);
        let (inv_sha, _) = sha256_parts(&doc);
        let inv_size = doc.len();
        let inv_stored = store.head(&inv_key).await?;
        remember(cx, &inv_key, doc);

        let mut packages = Vec::new();
        for p in inv.packages.values() {
            let key = package_key(&prefix, &p.reported_hex);
            let stored = store.head(&key).await?;
            packages.push(json!({
                "key": key,
                "reported_sha256": p.reported_hex,
                "size": p.size,
                "source": p.from.to_json(),
                "from": p.from.describe(),
                "stored": stored.is_some(),
            }));
        }
        let latest = inv.document["Versions"]
            .as_array()
            .and_then(|v| v.first())
            .and_then(|v| v["Package"].as_str())
            .and_then(|k| k.strip_prefix("code/packages/"))
            .and_then(|k| k.strip_suffix(".zip"))
            .unwrap_or_default()
            .to_string();
        Ok(Observation {
            target: f.arn,
            state: json!({
                "bucket": store.facts().bucket,
                "object_lock": store.facts().object_lock,
                "warning": store.facts().warning(),
                "writer": store.facts().writer,
                "manifest_key": format!("{prefix}/manifest.json"),
                "image_uri": inv.image_uri,
                "code_sha256": latest,
                "inventory": {
                    "key": inv_key,
                    "sha256": inv_sha,
                    "size": inv_size,
                    "stored": inv_stored.map(|h| json!({"sha256": h.sha256})),
                },
                "packages": packages,
            }),
        })
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let s = &observed.state;
        let packages = s["packages"].as_array().cloned().unwrap_or_default();
        let mut changes = Vec::new();
        let mut note = Vec::new();
        for p in &packages {
            if p["stored"].as_bool() == Some(true) {
                continue;
            }
            let hex = p["reported_sha256"].as_str().unwrap_or_default();
            changes.push(Change::new(
                &observed.target,
                format!("{PACKAGE}{hex}"),
                Value::Null,
                json!({"key": p["key"], "source": p["source"], "size": p["size"]}),
                format!(
                    "download and preserve the package from {} ({} bytes, Lambda's CodeSha256 {hex})",
                    p["from"].as_str().unwrap_or_default(),
                    p["size"]
                ),
            ));
        }
        let inv = &s["inventory"];
        match &inv["stored"] {
            Value::Null => changes.push(Change::new(
                &observed.target,
                INVENTORY,
                Value::Null,
                json!({"key": inv["key"]}),
                format!(
                    "preserve the inventory of versions, aliases and layers (lambda:ListVersionsByFunction, ListAliases, GetLayerVersion; {} bytes, sha256 {})",
                    inv["size"],
                    inv["sha256"].as_str().unwrap_or_default()
                ),
            )),
            stored if stored["sha256"] != inv["sha256"] => note.push(format!(
                "the bucket keeps the first code inventory (sha256 {}); versions, aliases or layers changed since (now sha256 {})",
                stored["sha256"].as_str().unwrap_or_default(),
                inv["sha256"].as_str().unwrap_or_default()
            )),
            _ => {}
        }
        let mut keys: Vec<Value> = packages.iter().map(|p| p["key"].clone()).collect();
        keys.push(inv["key"].clone());
        if !changes.is_empty() || !manifest_journaled(cx, SPEC.name, &observed.target, |_| true) {
            let reported: Map<String, Value> = packages
                .iter()
                .filter_map(|p| {
                    Some((p["key"].as_str()?.to_string(), p["reported_sha256"].clone()))
                })
                .collect();
            changes.push(Change::new(
                &observed.target,
                MANIFEST,
                Value::Null,
                json!({"bucket": s["bucket"], "artifacts": keys, "reported_sha256": reported}),
                "list every package and the inventory with size, SHA-256 (ours and Lambda's), source and collection time; the manifest's hash goes into the audit trail",
            ));
        }
        if let Some(uri) = s["image_uri"].as_str() {
            note.push(format!(
                "container image function: the image {uri} stays in ECR and is not copied; preserve it there (e.g. a tag or replication to a forensic registry)"
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
        outputs.insert("inventory_key".into(), inv["key"].clone());
        outputs.insert(
            "package_keys".into(),
            json!(packages
                .iter()
                .map(|p| p["key"].clone())
                .collect::<Vec<_>>()),
        );
        outputs.insert("code_sha256".into(), s["code_sha256"].clone());
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
        let args: SnapshotCodeArgs = cx.args_as(&SPEC)?;
        let store = store(cx, &args.store).await?;
        let f = function::from_arn(&change.target)?;
        if change.attribute == MANIFEST {
            return self.write_manifest(cx, &store, &f, change).await.map(Some);
        }
        let key = change.after["key"].as_str().unwrap_or_default();
        if change.attribute == INVENTORY {
            put_observed(&store, key, |k| recall(cx, k), self.observe(cx)).await?;
            forget(cx, key);
            return Ok(None);
        }
        self.store_package(cx, &store, &f, change, key).await?;
        Ok(None)
    }
}

impl SnapshotCode {
    async fn store_package(
        &self,
        cx: &StepContext<'_>,
        store: &ForensicStore,
        f: &FunctionRef,
        change: &Change,
        key: &str,
    ) -> Result<(), ActionError> {
        let source = Source::from_json(&change.after["source"]).ok_or_else(|| {
            ActionError::input(
                format!("the planned change for {key} names no source"),
                "the saved plan is damaged: plan again",
            )
        })?;
        let reported = change
            .attribute
            .strip_prefix(PACKAGE)
            .unwrap_or_default()
            .to_string();
        let tmp = tempfile::NamedTempFile::new().map_err(|e| {
            ActionError::input(
                format!("cannot create a temporary file for the package: {e}"),
                "set TMPDIR to a writable directory with room for the package, then re-run",
            )
        })?;
        let fetched = fetch_with_fresh_urls(
            || async {
                code_inventory::location(cx, f, &source)
                    .await
                    .map(|(u, _)| u)
            },
            tmp.path(),
        )
        .await?;
        if fetched.sha256_hex != reported {
            // Kept as evidence all the same, under the name Lambda gave it;
            // the manifest carries both hashes and `evidence verify` names
            // the difference.
            tracing::warn!(
                key,
                reported = %reported,
                downloaded = %fetched.sha256_hex,
                "the downloaded package does not match the CodeSha256 Lambda reports"
            );
        }
        store
            .put_file(
                key,
                tmp.path(),
                &fetched.sha256_hex,
                &fetched.sha256_b64,
                fetched.size,
            )
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
        let prefix = prefix(cx, f)?;
        let reported = &change.after["reported_sha256"];
        let listed: Vec<Listed> = change.after["artifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|key| {
                let name = key
                    .strip_prefix(&format!("{prefix}/"))
                    .unwrap_or(key)
                    .to_string();
                let source = if name.starts_with("code/packages/") {
                    "lambda:GetFunction|GetLayerVersion (presigned URL download)"
                } else {
                    "lambda:GetFunction+ListVersionsByFunction+ListAliases+GetLayerVersion"
                };
                Listed {
                    name,
                    key: key.to_string(),
                    source: source.to_string(),
                    reported_sha256: reported[key].as_str().map(str::to_string),
                }
            })
            .collect();
        write_manifest(cx, store, f, &listed).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Answers 403 ("Request has expired") to the first `expired` requests,
    /// then 200 with a body.
    async fn server(expired: u32) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let (status, body): (u16, &[u8]) = if n < expired {
                    (403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
                } else {
                    (200, b"PK-package")
                };
                n += 1;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body).await;
                let _ = sock.shutdown().await;
            }
        });
        format!("http://{addr}/pkg?X-Amz-Signature=s")
    }

    #[tokio::test]
    async fn an_expired_url_is_replaced_by_a_fresh_one() {
        let url = server(2).await;
        let asked = AtomicU32::new(0);
        let dir = tempfile::tempdir().unwrap();
        let got = fetch_with_fresh_urls(
            || {
                asked.fetch_add(1, Ordering::SeqCst);
                let u = url.clone();
                async move { Ok(u) }
            },
            &dir.path().join("p"),
        )
        .await
        .unwrap();
        assert_eq!(got.size, 10);
        assert_eq!(asked.load(Ordering::SeqCst), 3, "one fresh URL per refusal");
    }

    #[tokio::test]
    async fn urls_that_keep_expiring_give_a_clear_error() {
        let url = server(u32::MAX).await;
        let asked = AtomicU32::new(0);
        let dir = tempfile::tempdir().unwrap();
        let err = fetch_with_fresh_urls(
            || {
                asked.fetch_add(1, Ordering::SeqCst);
                let u = url.clone();
                async move { Ok(u) }
            },
            &dir.path().join("p"),
        )
        .await
        .unwrap_err();
        assert_eq!(asked.load(Ordering::SeqCst), URL_ATTEMPTS);
        let shown = format!("{err} / {}", err.hint());
        assert!(shown.contains("expired"), "{shown}");
        assert!(shown.contains("clock"), "{shown}");
        assert!(!shown.contains("X-Amz-Signature"), "{shown}");
    }
}
